"""`ledger-pipeline main-job`: the bundled hotel bookings through every part of the product."""

import datetime as dt
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from ledger_pipeline.cli_support import (
    date_option,
    open_store,
    print_ledger_status,
    progress_display,
    user_errors,
)
from ledger_pipeline.main_job import (
    DEFAULT_RECEIVER_PORTS,
    HOTEL_GO_LIVE,
    MainJobReport,
    run_main_job,
)
from ledger_pipeline.materializing import dagster_home
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.deliveries import PENDING, DeliveryStore
from ledger_pipeline.storage.store import start_workers


def register(app: typer.Typer) -> None:
    """Adds `main-job` to the `ledger-pipeline` command."""
    app.command("main-job")(main_job)


def main_job(
    data: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="The hotel bookings CSV (gzip or plain)."),
    ] = Path("data/hotel_bookings.csv.gz"),
    out: Annotated[
        Path, typer.Option(help="Where received payloads, beancount files and reports go.")
    ] = Path(".ledger/hotel-demo"),
    go_live: Annotated[
        dt.datetime | None,
        date_option("--go-live", f"First date the registries receive (default {HOTEL_GO_LIVE})."),
    ] = None,
    receiver_ports: Annotated[
        tuple[int, int],
        typer.Option(help="The loopback ports of the two registries' receivers."),
    ] = DEFAULT_RECEIVER_PORTS,
    days_per_run: Annotated[int, typer.Option(min=1, help="Dates per Dagster run.")] = 400,
) -> None:
    """Run the main job on the hotel bookings: import, post and roll up through Dagster, create
    two registries, deliver their signed summaries to local receivers, write their reports.

    Safe to run again: the second run does every step and changes nothing in the ledger.
    """
    with user_errors():
        settings = Settings.from_environment()
        start_workers()  # before the progress display's thread: see `start_workers`
        with progress_display() as progress:
            tasks: dict[str, int] = {}
            # Without a terminal the bars do not show: a line per step and per run instead.
            plain = not progress.console.is_terminal

            def tell(step: str, done: int, total: int | None) -> None:
                if step not in tasks:
                    for task in progress.tasks:
                        # The step before is over: its bar stops where it got to.
                        progress.update(task.id, total=task.completed)
                    tasks[step] = progress.add_task(step, total=total, unit=_units(step))
                progress.update(tasks[step], completed=done, total=total)
                if plain and (done == 0 or total is not None):
                    of = f" of {total}" if total is not None else ""
                    typer.echo(f"{step}: {done}{of} {_units(step)}", err=True)

            report = run_main_job(
                settings,
                data,
                out,
                go_live=go_live.date() if go_live else HOTEL_GO_LIVE,
                receiver_ports=receiver_ports,
                days_per_run=days_per_run,
                progress=tell,
            )
        _print(report)
        with open_store() as store:
            typer.echo("")
            print_ledger_status(store)
            deliveries = DeliveryStore(store)
            typer.echo("deliveries per registry:")
            pending = 0
            for registry, statuses in sorted(deliveries.counts().items()):
                counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
                typer.echo(f"  {registry}: {counts}")
                pending += statuses.get(PENDING, 0)
            if pending:
                # The receivers listen only while the job runs: what failed waits for a run.
                typer.echo(
                    f"{pending} deliveries still pending, the next due at "
                    f"{deliveries.next_due_at():%Y-%m-%d %H:%M:%S} UTC: run main-job again "
                    "after that to deliver them"
                )
    _print_files(report, settings)


def _units(step: str) -> str:
    return {"import bookings": "bookings", "deliver": "deliveries"}.get(step, "runs")


def _print(report: MainJobReport) -> None:
    landing = report.landing
    assert landing is not None
    typer.echo(
        f"bookings: {landing.bookings} read; events {landing.landing.accepted} accepted, "
        f"{landing.landing.duplicate} already landed, {landing.landing.stale} stale, "
        f"{landing.landing.quarantined} quarantined"
    )
    typer.echo(f"accounting dates: {report.first_date}..{report.last_date}")
    # The runs from the go-live date hold the ledger's runs and, after each, one of the
    # registries' aggregates of the same dates.
    live = [run for run in report.live_runs if not run.registries]
    aggregates = [run for run in report.live_runs if run.registries] + report.registry_runs
    runs = len(report.history_runs) + len(live) + len(aggregates)
    typer.echo(
        f"Dagster runs: {runs} (ledger: {len(report.history_runs)} history, {len(live)} from "
        f"the go-live date; {len(aggregates)} of registry aggregates)"
    )
    for change in report.registry_changes:
        what = change.action if not change.fields else f"updated {', '.join(change.fields)}"
        typer.echo(f"registry {change.name}: {what}")
    totals = [delivery_pass.totals for delivery_pass in report.delivery_passes]
    outcomes = {
        what: sum(getattr(counts, name) for counts in totals)
        for name, what in (
            ("sent", "sent"),
            ("succeeded", "succeeded"),
            ("retried", "failed and to be retried"),
            ("gone", "refused with 410 (registry disabled)"),
            ("dead", "dead-lettered"),
            ("lost", "taken over by another worker"),
        )
    }
    told = [f"{n} {what}" for what, n in outcomes.items() if n or what in ("sent", "succeeded")]
    typer.echo(f"deliveries this run: {', '.join(told)}")
    timings = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in report.seconds.items())
    typer.echo(f"time: {timings}")
    changed = report.changed_tables
    if not changed:
        typer.echo("this run changed nothing in the ledger database (every table as it was)")
    else:
        typer.echo(f"this run changed these ledger tables: {', '.join(changed)}")


def _print_files(report: MainJobReport, settings: Settings) -> None:
    typer.echo("")
    for name, path in report.received.items():
        typer.echo(f"received by {name}: {path} (beancount: {report.beancount[name]})")
    for name, path in report.reports.items():
        typer.echo(f"report of {name} ({report.first_date}..{report.last_date}): {path}")
    database_url = sa.make_url(settings.database_url).render_as_string(hide_password=True)
    typer.echo(
        f"the CLI on this ledger: LEDGER_DATABASE_URL={database_url} "
        f"LEDGER_TIMEZONE={settings.timezone.key} .venv/bin/ledger-pipeline status"
    )
    typer.echo(
        f"Dagster UI on the same instance: DAGSTER_HOME={dagster_home()} bash scripts/ui "
        "(then http://127.0.0.1:3000)"
    )
