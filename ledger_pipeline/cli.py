"""The `ledger-pipeline` command: import order events, post them, manage ledger-code rules and
registries, print a registry's summaries and reports.

The ledger is the one named by `LEDGER_DATABASE_URL` (and `LEDGER_TIMEZONE`), see
`ledger_pipeline.settings`. A user-facing error prints one line on stderr and exits with 1;
its detail goes to the log (`--log-level debug` shows it).
"""

import datetime as dt
import json
import logging
import shutil
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import dagster as dg
import typer
import yaml

from ledger_pipeline import cli_api, cli_delivery, cli_main_job
from ledger_pipeline.cli_support import (
    FromOption,
    RegistryOption,
    ToOption,
    counted,
    date_option,
    date_range,
    moment_text,
    money_text,
    open_store,
    print_ledger_status,
    progress_display,
    user_errors,
)
from ledger_pipeline.core.payloads import (
    ledger_summaries,
    report_columns,
    report_csv,
)
from ledger_pipeline.core.registry import Registry, parse_since
from ledger_pipeline.errors import LedgerError, RegistryError
from ledger_pipeline.importing import land_file, land_hotel_bookings, land_octo_booking
from ledger_pipeline.materializing import (
    DEFAULT_DAYS_PER_RUN,
    dagster_home,
    materialize_range,
    materialize_registry_range,
    run_ranges,
)
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.registries import CREATED, UNCHANGED, RegistryStore
from ledger_pipeline.storage.registry_totals import RegistryTotalsStore
from ledger_pipeline.storage.store import CodeRule, LandingReport, PostingReport, start_workers

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
registry_app = typer.Typer(
    help="Registries: which ledger entries an accounting system receives, grouped how, where.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")
cli_delivery.register(app)
cli_api.register(app)
cli_main_job.register(app)


# Commands that run until stopped log what they do (who changed what, what arrived) by default.
SERVERS = frozenset({"serve", "receive"})


@app.callback()
def main(
    context: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning or error (default: warning; info for serve and receive).",
        ),
    ] = None,
) -> None:
    """Post order events as balanced double-entry ledger entries.

    The ledger is named by LEDGER_DATABASE_URL (default sqlite:///./.ledger/ledger.db) and its
    time zone by LEDGER_TIMEZONE (default UTC, fixed when the ledger is created).
    """
    if log_level is None:
        log_level = "info" if context.invoked_subcommand in SERVERS else "warning"
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"{log_level!r} is not a log level", param_hint="--log-level")
    # Dagster's notes on its beta parameters (the backfill policy) are for developers.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    # Leaves logging alone when the host (a test runner, Dagster) already set it up.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class InputFormat(StrEnum):
    JSONL = "jsonl"
    HOTEL_BOOKINGS = "hotel-bookings"
    OCTO = "octo"


@app.command("import")
def import_events(
    path: Annotated[Path, typer.Argument(help="The file to import.")],
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            help="jsonl: one order event per line. hotel-bookings: the hotel bookings CSV "
            "(gzipped or not), see docs/hotel_bookings.md. octo: one OCTO booking, or a JSON "
            "list of one booking's snapshots oldest first (needs --destination).",
        ),
    ] = InputFormat.JSONL,
    destination: Annotated[
        str | None,
        typer.Option(help="The destination of an OCTO booking (OCTO has none)."),
    ] = None,
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
    with user_errors():
        if input_format == InputFormat.OCTO:
            if not destination:
                raise LedgerError("--format octo needs --destination")
            with open_store() as store:
                report = land_octo_booking(store, path, destination)
        else:
            with open_store() as store:
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
    start_workers()  # before the progress display's thread: see `start_workers`
    with user_errors(), open_store() as store, progress_display() as progress:
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
        date_option("--from", "First accounting date; default the earliest landed event's."),
    ] = None,
    date_to: Annotated[
        dt.datetime | None,
        date_option("--to", "Last accounting date; default the latest landed event's."),
    ] = None,
    days_per_run: Annotated[
        int,
        typer.Option(min=1, help="Dates per Dagster run: long ranges take few runs."),
    ] = DEFAULT_DAYS_PER_RUN,
    registry_name: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="NAME",
            help="Materialize only this registry's aggregates (after changing its filters or "
            "group-by columns), nothing else.",
        ),
    ] = None,
) -> None:
    """Materialize the ledger's daily assets through Dagster for a range of accounting dates.

    Runs order_events, ledger_entries (with its blocking checks) and daily_ledger_totals, then
    every registry's aggregates (registry_totals) of the same dates, on the Dagster instance in
    DAGSTER_HOME (default ./.ledger/dagster), so the runs show in the UI (dagster dev -w
    workspace.yaml with the same DAGSTER_HOME). With --registry, only that registry's
    aggregates are materialized, the other registries' stay as they are. Exits with 1 if a run
    fails.
    """
    with user_errors():
        settings = Settings.from_environment()
        with open_store() as store:
            [landed] = store.query_model("rpt_event_dates").itertuples()
            registries = RegistryStore(store).list()
        earliest, latest = _as_date(landed.first_date), _as_date(landed.last_date)
        first = date_from.date() if date_from else earliest
        last = date_to.date() if date_to else latest
        if first is None or last is None:
            raise LedgerError("no landed events: import some first, or give --from and --to")

        ranges = list(run_ranges(first, last, days_per_run))
        # Without --registry, each range takes a ledger run and, with registries, one more.
        runs = len(ranges) * (2 if registries else 1)
        # The runs execute in this process: their posting takes the workers started here,
        # before the progress display's thread (see `start_workers`).
        start_workers()
        with progress_display() as progress:
            if registry_name is not None:
                task = progress.add_task(
                    f"materializing registry {registry_name} {first}..{last}",
                    total=len(ranges),
                    unit="runs",
                )
                outcomes = materialize_registry_range(
                    settings,
                    registry_name,
                    first,
                    last,
                    days_per_run=days_per_run,
                    on_run=lambda outcome: progress.advance(task),
                )
            else:
                task = progress.add_task(f"materializing {first}..{last}", total=runs, unit="runs")
                outcomes = materialize_range(
                    settings,
                    first,
                    last,
                    days_per_run=days_per_run,
                    on_run=lambda outcome: progress.advance(task),
                )

    for outcome in outcomes:
        state = "succeeded" if outcome.success else "FAILED"
        if outcome.registries:
            typer.echo(
                f"registry totals run {outcome.run_id} {outcome.date_from}..{outcome.date_to} "
                f"({', '.join(outcome.registries)}): {state}, {outcome.rows} rows"
            )
        else:
            typer.echo(
                f"run {outcome.run_id} {outcome.date_from}..{outcome.date_to}: {state}, "
                f"{outcome.entries} entries"
            )
    typer.echo(
        f"open the Dagster UI: DAGSTER_HOME={dagster_home()} {_dagster_command()} dev "
        "-w workspace.yaml"
    )
    if not all(outcome.success for outcome in outcomes):
        typer.echo("error: a run failed; its checks and logs are in the Dagster UI", err=True)
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show what the ledger holds: events by type, rejections by reason, balance per currency."""
    with user_errors(), open_store() as store:
        print_ledger_status(store)


@app.command()
def post(
    date_from: Annotated[
        dt.datetime | None,
        date_option("--from", "First accounting date to post."),
    ] = None,
    date_to: Annotated[
        dt.datetime | None,
        date_option("--to", "Last accounting date to post."),
    ] = None,
) -> None:
    """Post the landed events that are not posted yet, by default of every accounting date.

    Accounting dates are local dates in the ledger's time zone. Posting again adds nothing.
    """
    with user_errors():
        first = date_from.date() if date_from else None
        last = date_to.date() if date_to else None
        if first and last and first > last:
            raise LedgerError(f"--from {first} is after --to {last}")

        with open_store() as store:
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
    with user_errors(), open_store() as store:
        rule = store.add_code_rule(code, position=position, **match)
        typer.echo(f"added rule {rule.id} at position {rule.position}: {_described(rule)}")


@codes_app.command("list")
def codes_list() -> None:
    """List the ledger-code rules, first match first."""
    with user_errors(), open_store() as store:
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
    with user_errors(), open_store() as store:
        rule = store.remove_code_rule(rule_id)
        typer.echo(f"removed rule {rule.id}: {_described(rule)}")


# Registries

DestinationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--destination",
        metavar="D",
        help="Take orders of this destination (repeat for more); none given: every one.",
    ),
]
EntryTypeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--entry-type",
        metavar="ACCOUNT",
        help="Take entries of this account, e.g. cash or deferred_revenue (repeat for more); "
        "none given: every account.",
    ),
]
GroupByOption = Annotated[
    list[str] | None,
    typer.Option(
        "--group-by",
        metavar="COLUMN",
        help="Group payloads by this column, e.g. product (repeat for more, in order).",
    ),
]
TotalOption = Annotated[
    list[str] | None,
    typer.Option(
        "--total",
        metavar="TOTAL",
        help="Sum this total in reports, e.g. quantity (repeat for more); none given: debit "
        "and credit.",
    ),
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="YYYY-MM-DD|ISO",
        help="Deliver events posted from this moment (a date is its midnight in the ledger's "
        "time zone); default: the registry's creation.",
    ),
]
SecretOption = Annotated[
    str | None,
    typer.Option(
        "--secret",
        help="The signing secret (whsec_ and base64 of at least 24 bytes); default: generated.",
    ),
]
RegistryName = Annotated[str, typer.Argument(metavar="NAME", help="The registry's name.")]


class ListField(StrEnum):
    DESTINATIONS = "destinations"
    ENTRY_TYPES = "entry-types"
    GROUP_BY = "group-by"
    TOTALS = "totals"


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@registry_app.command("create")
def registry_create(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Unique, URL-safe: a-z, 0-9, _ and -, up to 63 characters."
        ),
    ],
    url: Annotated[str, typer.Option("--url", help="The http(s) URL payloads are sent to.")],
    destinations: DestinationOption = None,
    entry_types: EntryTypeOption = None,
    group_by: GroupByOption = None,
    totals: TotalOption = None,
    include_test: Annotated[
        bool, typer.Option("--include-test", help="Take entries of test orders too.")
    ] = False,
    since: SinceOption = None,
    secret: SecretOption = None,
) -> None:
    """Create a registry. Its secret is printed once, here: keep it."""
    with user_errors(), open_store() as store:
        registries = RegistryStore(store)
        registry = registries.create(
            Registry(
                name=name,
                url=url,
                destinations=tuple(destinations or ()),
                entry_types=tuple(entry_types or ()),
                group_by=tuple(group_by or ()),
                totals=tuple(totals or ()),
                include_test=include_test,
                since=parse_since(since, store.timezone) if since is not None else None,
                secret=secret,
            )
        )
    typer.echo(f"created registry {registry.name}")
    _print_queued(registries.queued, registry)
    if secret is None:
        typer.echo(f"secret: {registry.secret}")
        typer.echo("(shown once: keep it where the receiver can verify signatures)")
    else:
        typer.echo("secret: the one given")


@registry_app.command("list")
def registry_list() -> None:
    """List the registries: name, state, URL, entry types and group-by columns."""
    with user_errors(), open_store() as store:
        registries = RegistryStore(store).list()
    if not registries:
        typer.echo("no registries")
        return
    for registry in registries:
        state = "enabled" if registry.enabled else "disabled"
        typer.echo(
            f"{registry.name}: {state}, {registry.url}, "
            f"entry types {_names(registry.entry_types, 'all')}, "
            f"group by {_names(registry.group_by, 'nothing')}"
        )


@registry_app.command("show")
def registry_show(name: RegistryName) -> None:
    """Show a registry's fields (never its secret)."""
    with user_errors(), open_store() as store:
        registry = RegistryStore(store).get(name)
    for line in _registry_lines(registry):
        typer.echo(line)


@registry_app.command("update")
def registry_update(
    name: RegistryName,
    url: Annotated[
        str | None, typer.Option("--url", help="The http(s) URL payloads are sent to.")
    ] = None,
    destinations: DestinationOption = None,
    entry_types: EntryTypeOption = None,
    group_by: GroupByOption = None,
    totals: TotalOption = None,
    include_test: Annotated[
        bool | None,
        typer.Option("--include-test/--exclude-test", help="Take entries of test orders or not."),
    ] = None,
    since: SinceOption = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="A new signing secret; the old one stays valid for 24 hours (see rotate-secret).",
        ),
    ] = None,
    clear: Annotated[
        list[ListField] | None,
        typer.Option(
            "--clear",
            metavar="LIST",
            help="Reset a list to its default (destinations, entry types: all; group-by: "
            "nothing; totals: debit and credit). Repeat for more.",
        ),
    ] = None,
) -> None:
    """Change a registry. A list given replaces the stored one; fields not given stay."""
    with user_errors(), open_store() as store:
        changes: dict[str, object] = {field.value.replace("-", "_"): () for field in (clear or ())}
        given = {
            "url": url,
            "destinations": tuple(destinations) if destinations else None,
            "entry_types": tuple(entry_types) if entry_types else None,
            "group_by": tuple(group_by) if group_by else None,
            "totals": tuple(totals) if totals else None,
            "include_test": include_test,
            "since": parse_since(since, store.timezone) if since is not None else None,
            "secret": secret,
        }
        for field_name, value in given.items():
            if value is None:
                continue
            if field_name in changes:
                option = field_name.replace("_", "-")
                raise RegistryError(f"--clear {option} and a new value for it: give one")
            changes[field_name] = value
        if not changes:
            raise RegistryError("nothing to update: give a field to change (see --help)")

        registries = RegistryStore(store)
        before = registries.get(name)
        after = registries.update(name, **changes)
    changed = [
        field_name
        for field_name in changes
        if getattr(before, field_name) != getattr(after, field_name)
    ]
    if changed:
        typer.echo(f"updated registry {name}: {', '.join(changed)}")
        _print_queued(registries.queued, after)
    else:
        typer.echo(f"registry {name} unchanged")


@registry_app.command("enable")
def registry_enable(name: RegistryName) -> None:
    """Enable a registry: its waiting deliveries go out again, in order."""
    with user_errors(), open_store() as store:
        RegistryStore(store).enable(name)
    typer.echo(f"enabled registry {name}")


@registry_app.command("disable")
def registry_disable(name: RegistryName) -> None:
    """Disable a registry: its deliveries are still queued, and wait until it is enabled."""
    with user_errors(), open_store() as store:
        RegistryStore(store).disable(name)
    typer.echo(f"disabled registry {name}")


@registry_app.command("delete")
def registry_delete(name: RegistryName) -> None:
    """Delete a registry."""
    with user_errors(), open_store() as store:
        registries = RegistryStore(store)
        registries.delete(name)
    deleted = registries.deleted
    went = counted(sum(deleted.values()), "delivery", "deliveries")
    typer.echo(f"deleted registry {name} and its {went} ({deleted.get('pending', 0)} pending)")


@registry_app.command("rotate-secret")
def registry_rotate_secret(name: RegistryName) -> None:
    """Give a registry a new secret, printed once; the old one stays valid for 24 hours."""
    with user_errors(), open_store() as store:
        registry = RegistryStore(store).rotate_secret(name)
    expires = registry.previous_secret_expires_at
    assert expires is not None
    typer.echo(f"rotated the secret of registry {name}")
    typer.echo(f"secret: {registry.secret}")
    typer.echo(f"(shown once; the previous secret stays valid until {moment_text(expires)})")


@registry_app.command("apply")
def registry_apply(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="YAML: a list of registries (or registries: [...]), each a mapping of fields.",
        ),
    ],
) -> None:
    """Create or update the registries of a YAML file so that they equal it, all or none.

    Fields: name and url (required), destinations, entry_types, group_by, totals (lists),
    include_test, since (a date or an ISO date and time), enabled, secret. A field left out
    takes its default, except enabled and secret, which stay as they are. Registries not in the
    file are left alone. Prints, per registry: created, updated (with the fields) or unchanged.
    """
    with user_errors():
        document = _read_yaml(path)
        with open_store() as store:
            changes = RegistryStore(store).apply(document)
    if not changes:
        typer.echo(f"no registries in {path}: nothing to apply")
    for change in changes:
        if change.action == CREATED:
            typer.echo(f"{change.name}: created")
            if change.secret_generated and change.registry is not None:
                typer.echo(f"  secret: {change.registry.secret} (shown once: keep it)")
        elif change.action == UNCHANGED:
            typer.echo(f"{change.name}: unchanged")
        else:
            typer.echo(f"{change.name}: updated {', '.join(change.fields)}")
        if change.registry is not None:
            _print_queued(change.queued, change.registry, indent="  ")


# Payloads


@app.command()
def summary(registry_name: RegistryOption, date_from: FromOption, date_to: ToOption) -> None:
    """Print a registry's ledger summaries of the order events of a range of accounting dates.

    A JSON array, one object per order event whose entries pass the registry's filters, in
    the order the events occurred. The registry's since date and state do not apply here.
    """
    with user_errors():
        first, last = date_range(date_from, date_to)
        with open_store() as store:
            registry = RegistryStore(store).get(registry_name)
            summaries = ledger_summaries(registry, store.entries(first, last))
    logger.info("built %d summaries of registry %s", len(summaries), registry_name)
    typer.echo(json.dumps(summaries, indent=2, ensure_ascii=False))


@app.command()
def report(
    registry_name: RegistryOption,
    date_from: FromOption,
    date_to: ToOption,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="json: an array of rows; csv: with a header.")
    ] = ReportFormat.JSON,
) -> None:
    """Print a registry's ledger report of a range of accounting dates.

    One row per group of the registry's group-by columns and currency, with its totals. A tag
    column gives one row per tag and one with no tag, so an entry with two tags is in two rows.
    """
    with user_errors():
        first, last = date_range(date_from, date_to)
        with open_store() as store:
            registry = RegistryStore(store).get(registry_name)
            rows = RegistryTotalsStore(store).report(registry, first, last)
    logger.info("built a report of %d rows of registry %s", len(rows), registry_name)
    if output_format == ReportFormat.CSV:
        header = [*report_columns(registry), *registry.totals]
        typer.echo(report_csv(header, rows), nl=False)
    else:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))


# Helpers


def _print_queued(queued: int, registry: Registry, indent: str = "") -> None:
    """Says how many deliveries of earlier events a registry change queued: a `since` in the
    past takes that history, which may be far more than meant."""
    if queued:
        typer.echo(
            f"{indent}queued {counted(queued, 'delivery', 'deliveries')} of events posted since "
            f"{moment_text(registry.since)}: `ledger-pipeline deliver` sends them"
        )


def _dagster_command() -> str:
    """`dagster` as the user's shell can run it: by name when it is on the PATH, else the one
    installed beside this Python (a virtual environment that is not activated)."""
    beside = Path(sys.executable).with_name("dagster")
    if shutil.which("dagster") or not beside.exists():
        return "dagster"
    return str(beside)


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
        debit = money_text(report.debit_per_currency[currency], currency)
        credit = money_text(report.credit_per_currency[currency], currency)
        typer.echo(f"  {currency}: debit {debit}, credit {credit}")


def _described(rule: CodeRule) -> str:
    matches = ", ".join(f"{name}={value}" for name, value in rule.match.items())
    return f"code {rule.code} for " + (matches or "every entry")


def _registry_lines(registry: Registry) -> list[str]:
    """What `registry show` prints: every field but the secret, of which only its state."""
    rotated = registry.secret_rotated_at
    rotation = "set, never rotated"
    if rotated is not None:
        assert registry.previous_secret_expires_at is not None
        rotation = (
            f"set, rotated {moment_text(rotated)} "
            f"(the previous one is valid until {moment_text(registry.previous_secret_expires_at)})"
        )
    return [
        f"name: {registry.name}",
        f"url: {registry.url}",
        f"enabled: {'yes' if registry.enabled else 'no'}",
        f"destinations: {_names(registry.destinations, 'all')}",
        f"entry types: {_names(registry.entry_types, 'all')}",
        f"group by: {_names(registry.group_by, 'nothing')}",
        f"totals: {_names(registry.totals, 'debit, credit')}",
        f"include test orders: {'yes' if registry.include_test else 'no'}",
        f"since: {moment_text(registry.since)}",
        f"secret: {rotation}",
        f"created: {moment_text(registry.created_at)}",
        f"updated: {moment_text(registry.updated_at)}",
    ]


def _names(names: tuple[str, ...], empty: str) -> str:
    return ", ".join(names) if names else empty


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise RegistryError(
            f"{path} is not UTF-8 text (byte {error.start}): a registry file is YAML in UTF-8"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise RegistryError(f"{path} is not valid YAML{where}: {problem}") from None
