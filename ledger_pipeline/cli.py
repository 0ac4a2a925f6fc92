"""The `ledger-pipeline` command: import order events, post them, manage ledger-code rules.

The ledger is the one named by `LEDGER_DATABASE_URL` (and `LEDGER_TIMEZONE`), see
`ledger_pipeline.settings`. A user-facing error prints one line on stderr and exits with 1;
its detail goes to the log (`--log-level debug` shows it).
"""

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ledger_pipeline.core.money import currency_precision, format_minor
from ledger_pipeline.errors import LedgerError, UnknownCurrency
from ledger_pipeline.importing import land_file, land_hotel_bookings
from ledger_pipeline.materializing import (
    DEFAULT_DAYS_PER_RUN,
    dagster_home,
    materialize_range,
    run_ranges,
)
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.store import CodeRule, LandingReport, LedgerStore, PostingReport

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="Post order events as balanced double-entry ledger entries.",
    no_args_is_help=True,
    add_completion=False,
)
codes_app = typer.Typer(
    help="Ledger-code rules: the first rule (by position) that matches a new entry gives its code.",
    no_args_is_help=True,
)
app.add_typer(codes_app, name="codes")


@app.callback()
def main(
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "warning",
) -> None:
    """Post order events as balanced double-entry ledger entries.

    The ledger is named by LEDGER_DATABASE_URL (default sqlite:///./.ledger/ledger.db) and its
    time zone by LEDGER_TIMEZONE (default UTC, fixed when the ledger is created).
    """
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"{log_level!r} is not a log level", param_hint="--log-level")
    # Leaves logging alone when the host (a test runner, Dagster) already set it up.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class InputFormat(StrEnum):
    JSONL = "jsonl"
    HOTEL_BOOKINGS = "hotel-bookings"


@app.command("import")
def import_events(
    path: Annotated[Path, typer.Argument(help="The file to import.")],
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            help="jsonl: one order event per line. hotel-bookings: the hotel bookings CSV "
            "(gzipped or not), see docs/hotel_bookings.md.",
        ),
    ] = InputFormat.JSONL,
) -> None:
    """Land the order events of a file.

    Each event is accepted, a duplicate (landed before), stale (not above the order's highest
    version) or quarantined (malformed or breaking a landing rule); the last two are kept for
    inspection with their reason. Blank lines are skipped. Importing a file again changes
    nothing. Exits with 0 even when lines were quarantined.
    """
    if input_format == InputFormat.HOTEL_BOOKINGS:
        _import_hotel_bookings(path)
        return
    with _user_errors(), _store() as store:
        report = land_file(store, path)
    _print_landing(path, report)


@app.command("import-hotel-bookings")
def import_hotel_bookings(
    path: Annotated[Path, typer.Argument(help="The hotel bookings CSV, gzipped or not.")],
) -> None:
    """Land the hotel bookings CSV as order events (the same as import --format hotel-bookings).

    Every row is its own booking: confirmed at noon on the booking date, then redeemed,
    marked no-show or cancelled. Set LEDGER_TIMEZONE=Europe/Lisbon for this data.
    """
    _import_hotel_bookings(path)


def _import_hotel_bookings(path: Path) -> None:
    with _user_errors(), _store() as store, _progress() as progress:
        task = progress.add_task(f"landing {path.name}", total=None, unit="bookings")
        report = land_hotel_bookings(
            store, path, on_progress=lambda done: progress.update(task, completed=done)
        )
    typer.echo(f"{path.name}: {report.bookings} bookings")
    _print_landing(path, report.landing, line_word="row")
    for rejection in report.unreadable_rows:
        typer.echo(f"  row {rejection.row}: unreadable: {rejection.reason}")


@app.command()
def materialize(
    date_from: Annotated[
        dt.datetime | None,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="First accounting date; default the earliest landed event's.",
        ),
    ] = None,
    date_to: Annotated[
        dt.datetime | None,
        typer.Option(
            "--to",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="Last accounting date; default the latest landed event's.",
        ),
    ] = None,
    days_per_run: Annotated[
        int,
        typer.Option(min=1, help="Dates per Dagster run: long ranges take few runs."),
    ] = DEFAULT_DAYS_PER_RUN,
) -> None:
    """Materialize the ledger's daily assets through Dagster for a range of accounting dates.

    Runs order_events, ledger_entries (with its blocking checks) and daily_ledger_totals on
    the Dagster instance in DAGSTER_HOME (default ./.ledger/dagster), so the runs show in the
    UI (dagster dev -w workspace.yaml with the same DAGSTER_HOME). Exits with 1 if a run fails.
    """
    with _user_errors():
        settings = Settings.from_environment()
        with _store() as store:
            [landed] = store.query_model("rpt_event_dates").itertuples()
        earliest, latest = _as_date(landed.first_date), _as_date(landed.last_date)
        first = date_from.date() if date_from else earliest
        last = date_to.date() if date_to else latest
        if first is None or last is None:
            raise LedgerError("no landed events: import some first, or give --from and --to")

        ranges = list(run_ranges(first, last, days_per_run))
        with _progress() as progress:
            task = progress.add_task(
                f"materializing {first}..{last}", total=len(ranges), unit="runs"
            )
            outcomes = materialize_range(
                settings,
                first,
                last,
                days_per_run=days_per_run,
                on_run=lambda outcome: progress.advance(task),
            )

    for outcome in outcomes:
        state = "succeeded" if outcome.success else "FAILED"
        typer.echo(
            f"run {outcome.run_id} {outcome.date_from}..{outcome.date_to}: {state}, "
            f"{outcome.entries} entries"
        )
    typer.echo(f"open the Dagster UI: DAGSTER_HOME={dagster_home()} dagster dev -w workspace.yaml")
    if not all(outcome.success for outcome in outcomes):
        typer.echo("error: a run failed; its checks and logs are in the Dagster UI", err=True)
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show what the ledger holds: events by type, rejections by reason, balance per currency."""
    with _user_errors(), _store() as store:
        events = store.query_model("rpt_events_by_type")
        rejections = store.query_model("rpt_rejections_by_reason")
        balances = store.query_model("rpt_balance_by_currency")

    typer.echo(f"ledger time zone: {store.timezone.key}")
    typer.echo(
        f"order events: {int(events['events'].sum())} landed, {int(events['posted'].sum())} posted"
    )
    for row in events.itertuples():
        typer.echo(f"  {row.type}: {row.events} landed, {row.posted} posted")
    typer.echo(f"rejected lines: {int(rejections['lines'].sum())}")
    for row in rejections.itertuples():
        typer.echo(f"  {row.outcome}: {row.lines} x {row.reason}")
    typer.echo("ledger entries per currency:")
    for row in balances.itertuples():
        balanced = "balanced" if row.debit == row.credit else "NOT BALANCED"
        typer.echo(
            f"  {row.currency}: {row.entries} entries, "
            f"debit {format_minor(int(row.debit), int(row.currency_precision))}, "
            f"credit {format_minor(int(row.credit), int(row.currency_precision))}: {balanced}"
        )


@app.command()
def post(
    date_from: Annotated[
        dt.datetime | None,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="First accounting date to post.",
        ),
    ] = None,
    date_to: Annotated[
        dt.datetime | None,
        typer.Option(
            "--to",
            formats=["%Y-%m-%d"],
            metavar="YYYY-MM-DD",
            help="Last accounting date to post.",
        ),
    ] = None,
) -> None:
    """Post the landed events that are not posted yet, by default of every accounting date.

    Accounting dates are local dates in the ledger's time zone. Posting again adds nothing.
    """
    with _user_errors():
        first = date_from.date() if date_from else None
        last = date_to.date() if date_to else None
        if first and last and first > last:
            raise LedgerError(f"--from {first} is after --to {last}")

        with _store() as store:
            dates = None
            if first or last:
                dates = [
                    date
                    for date in store.unposted_dates()
                    if (first is None or date >= first) and (last is None or date <= last)
                ]
            report = store.post(dates)
        _print_posting(report)


@codes_app.command("add")
def codes_add(
    code: Annotated[str, typer.Argument(help="The ledger code matching entries get.")],
    account: Annotated[str | None, typer.Option(help="Match this account.")] = None,
    product: Annotated[str | None, typer.Option(help="Match this product.")] = None,
    option: Annotated[str | None, typer.Option(help="Match this product option.")] = None,
    unit: Annotated[str | None, typer.Option(help="Match this unit.")] = None,
    order_channel: Annotated[str | None, typer.Option(help="Match this order channel.")] = None,
    order_source: Annotated[str | None, typer.Option(help="Match this order source.")] = None,
    destination: Annotated[str | None, typer.Option(help="Match this destination.")] = None,
    reseller: Annotated[str | None, typer.Option(help="Match this reseller's name.")] = None,
    sale_type: Annotated[str | None, typer.Option(help="Match this sale type.")] = None,
    currency: Annotated[str | None, typer.Option(help="Match this currency.")] = None,
    position: Annotated[
        int | None,
        typer.Option(min=1, help="Place the rule here (1 is first); default: after the last."),
    ] = None,
) -> None:
    """Add a ledger-code rule. A field left out matches anything.

    Rules apply to entries posted from now on; entries already posted keep their codes, and a
    reversal keeps the code of the entry it reverses.
    """
    match = {
        "account": account,
        "product": product,
        "option": option,
        "unit": unit,
        "order_channel": order_channel,
        "order_source": order_source,
        "destination": destination,
        "reseller": reseller,
        "sale_type": sale_type,
        "currency": currency,
    }
    with _user_errors(), _store() as store:
        rule = store.add_code_rule(code, position=position, **match)
        typer.echo(f"added rule {rule.id} at position {rule.position}: {_described(rule)}")


@codes_app.command("list")
def codes_list() -> None:
    """List the ledger-code rules, first match first."""
    with _user_errors(), _store() as store:
        rules = store.list_code_rules()
    if not rules:
        typer.echo("no ledger-code rules")
        return
    for rule in rules:
        typer.echo(f"{rule.position:>3}. rule {rule.id}: {_described(rule)}")


@codes_app.command("remove")
def codes_remove(
    rule_id: Annotated[int, typer.Argument(metavar="ID", help="The rule's id (see codes list).")],
) -> None:
    """Remove a ledger-code rule. Entries already posted keep their codes."""
    with _user_errors(), _store() as store:
        rule = store.remove_code_rule(rule_id)
        typer.echo(f"removed rule {rule.id}: {_described(rule)}")


# Helpers


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turns a failure a person can act on into one line on stderr and exit code 1."""
    try:
        yield
    except LedgerError as error:
        logger.debug("the command failed", exc_info=True)
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except sa.exc.SQLAlchemyError as error:
        logger.debug("the database failed", exc_info=True)
        typer.echo(f"error: the ledger database failed: {_first_line(error)}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _store() -> Iterator[LedgerStore]:
    store = LedgerStore.from_settings(Settings.from_environment())
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress() -> Iterator[Progress]:
    """A progress display on stderr, so that stdout keeps only the command's result."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress


def _as_date(value: object) -> dt.date | None:
    """A date read from a SQL model (SQLite gives ISO text for an aggregate)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _print_landing(path: Path, report: LandingReport, line_word: str = "line") -> None:
    typer.echo(
        f"{path.name}: {report.accepted} accepted, {report.duplicate} duplicate, "
        f"{report.stale} stale, {report.quarantined} quarantined"
    )
    for rejection in report.rejections:
        event_id = rejection.event_id or "-"
        typer.echo(
            f"  {line_word} {rejection.line_number}: {rejection.outcome} (event {event_id}): "
            f"{rejection.reason}"
        )


def _print_posting(report: PostingReport) -> None:
    typer.echo(f"posted {report.events} events: {report.entries} entries")
    for account, count in sorted(report.entries_per_account.items()):
        typer.echo(f"  entries on {account}: {count}")
    for currency in sorted(report.debit_per_currency):
        debit = _money(report.debit_per_currency[currency], currency)
        credit = _money(report.credit_per_currency[currency], currency)
        typer.echo(f"  {currency}: debit {debit}, credit {credit}")


def _money(amount: int, currency: str) -> str:
    try:
        return format_minor(amount, currency_precision(currency))
    except UnknownCurrency:
        return f"{amount} (minor units)"


def _described(rule: CodeRule) -> str:
    matches = ", ".join(f"{name}={value}" for name, value in rule.match.items())
    return f"code {rule.code} for " + (matches or "every entry")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
