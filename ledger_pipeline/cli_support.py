"""What every `ledger-pipeline` command module shares: the date and registry options, turning a
user-facing failure into one line on stderr, opening the ledger, a progress display, and how
money and moments are printed."""

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
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
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger("ledger_pipeline.cli")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_option(flag: str, help_text: str) -> typer.models.OptionInfo:
    """A `--from` or `--to` option taking a date as YYYY-MM-DD (given as midnight)."""
    return typer.Option(flag, parser=parse_date_option, metavar="YYYY-MM-DD", help=help_text)


def parse_date_option(value: str | dt.datetime) -> dt.datetime:
    """A YYYY-MM-DD date, exactly, as its midnight; says what is wrong with anything else."""
    if isinstance(value, dt.datetime):
        return value
    if not _ISO_DATE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a date written YYYY-MM-DD")
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not a date: {error}") from None


RegistryOption = Annotated[
    str, typer.Option("--registry", metavar="NAME", help="The registry whose payloads to build.")
]
FromOption = Annotated[
    dt.datetime,
    date_option("--from", "First accounting date (local to the ledger's time zone)."),
]
ToOption = Annotated[
    dt.datetime,
    date_option("--to", "Last accounting date, included."),
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns a failure a person can act on into one line on stderr and exit code 1."""
    try:
        yield
    except LedgerError as error:
        logger.debug("the command failed", exc_info=True)
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except sa.exc.SQLAlchemyError as error:
        logger.debug("the database failed", exc_info=True)
        typer.echo(f"error: the ledger database failed: {first_line(error)}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def open_store() -> Iterator[LedgerStore]:
    """The ledger the environment names, closed when the block ends."""
    store = LedgerStore.from_settings(Settings.from_environment())
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_display() -> Iterator[Progress]:
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


def money_text(amount: int, currency: str) -> str:
    """Minor units as a decimal string of the currency's precision."""
    try:
        return format_minor(amount, currency_precision(currency))
    except UnknownCurrency:
        return f"{amount} (minor units)"


def first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def counted(number: int, one: str, many: str) -> str:
    """A count with its noun: "1 delivery", "2 deliveries"."""
    return f"{number} {one if number == 1 else many}"


def moment_text(moment: dt.datetime | None) -> str:
    """A moment as ISO text in UTC to the second, `-` for none."""
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def date_range(date_from: dt.datetime, date_to: dt.datetime) -> tuple[dt.date, dt.date]:
    """The dates of `--from` and `--to`, refused when `--from` is after `--to`."""
    first, last = date_from.date(), date_to.date()
    if first > last:
        raise LedgerError(f"--from {first} is after --to {last}")
    return first, last


def print_ledger_status(store: LedgerStore) -> None:
    """What the ledger holds: events by type, rejections by reason, balance per currency."""
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
