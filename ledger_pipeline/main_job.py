"""The main job: the bundled hotel bookings through every part of the product, end to end.

1. Land the bookings as order events (`import-hotel-bookings`).
2. Materialize the ledger's daily assets through Dagster for the history before the go-live
   date (the last month of the data): the ledger a supplier already has when they subscribe.
3. Create the registries of `REGISTRIES` (idempotent: `registry apply`), pointed at receivers
   started for the job on this machine.
4. Materialize the dates from the go-live date on: posting queues a signed `ledger_summary`
   delivery per event and matching registry, in the posting's own transaction.
5. Materialize every registry's aggregates over the whole history.
6. Deliver every due summary to the receivers, which verify each signature with the
   `standardwebhooks` package and book each summary in a beancount file.
7. Write each registry's `ledger_report` of the whole history from its aggregates.

Run twice, the second run does every step again and changes nothing in the ledger database:
`database_fingerprint` is taken before and after and compared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

from ledger_pipeline.core.payloads import report_columns
from ledger_pipeline.core.posting import TOTALS
from ledger_pipeline.delivery.worker import DeliveryPassReport, deliver_pass
from ledger_pipeline.errors import ConfigurationError, LedgerError
from ledger_pipeline.importing import HotelLandingReport, land_hotel_bookings
from ledger_pipeline.materializing import (
    RunOutcome,
    materialize_range,
    materialize_registry_range,
)
from ledger_pipeline.receiver import Receiver, serve
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.deliveries import PENDING, DeliveryStore
from ledger_pipeline.storage.registries import RegistryChange, RegistryStore
from ledger_pipeline.storage.registry_totals import RegistryTotalsStore, report_from_totals
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger(__name__)

# The last month of the hotel data: its bookings, stays and cancellations from this date on
# are what the registries receive; the history before it is the ledger they start from.
HOTEL_GO_LIVE = dt.date(2017, 8, 1)
DEFAULT_RECEIVER_PORTS = (8787, 8788)

# The two registries: a per-order webhook for one hotel grouped by product and currency, and
# one grouped by order channel and date with every total.
REGISTRIES = (
    {
        "name": "city-hotel",
        "destinations": ["City Hotel"],
        "group_by": ["product", "currency"],
    },
    {
        "name": "channels",
        "group_by": ["order_channel", "date"],
        "totals": list(TOTALS),
    },
)


@dataclass
class MainJobReport:
    """What the main job did and where its results are."""

    landing: HotelLandingReport | None = None
    history_runs: list[RunOutcome] = field(default_factory=list)
    live_runs: list[RunOutcome] = field(default_factory=list)
    registry_runs: list[RunOutcome] = field(default_factory=list)
    registry_changes: list[RegistryChange] = field(default_factory=list)
    delivery_passes: list[DeliveryPassReport] = field(default_factory=list)
    received: dict[str, Path] = field(default_factory=dict)
    beancount: dict[str, Path] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    fingerprint_before: dict[str, str] = field(default_factory=dict)
    fingerprint_after: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed_tables(self) -> list[str]:
        """The ledger tables whose rows differ between the start and the end of the job."""
        names = sorted(set(self.fingerprint_before) | set(self.fingerprint_after))
        return [
            name
            for name in names
            if self.fingerprint_before.get(name) != self.fingerprint_after.get(name)
        ]


@dataclass(frozen=True)
class Step:
    """A step of the main job, as the progress display shows it."""

    name: str
    total: int | None = None


ProgressHook = Callable[[str, int, int | None], None]
"""Told (step name, units done, units in all or None) as the job goes."""


def run_main_job(
    settings: Settings,
    data: Path,
    out: Path,
    *,
    go_live: dt.date = HOTEL_GO_LIVE,
    receiver_ports: tuple[int, int] = DEFAULT_RECEIVER_PORTS,
    days_per_run: int = 400,
    progress: ProgressHook | None = None,
) -> MainJobReport:
    """Runs the main job on the hotel bookings CSV `data`, writing its files under `out`.

    Args:
        settings: the ledger (database and time zone) and, through DAGSTER_HOME, the Dagster
            instance the runs are recorded in.
        data: the hotel bookings CSV (gzip or plain).
        out: where received payloads, beancount files and reports go.
        go_live: the first date whose events the registries receive.
        receiver_ports: the loopback ports of the two registries' receivers; fixed, so that
            a second run finds the registries unchanged.
        days_per_run: dates per Dagster run.
        progress: told how each step goes.
    """
    report = MainJobReport()
    tell = progress or (lambda step, done, total: None)
    received_dir, reports_dir = out / "received", out / "reports"
    received_dir.mkdir(parents=True, exist_ok=True)
    reports_dir.mkdir(parents=True, exist_ok=True)

    with LedgerStore.from_settings(settings) as store:
        _refuse_other_registries(store)
        report.fingerprint_before = database_fingerprint(store)

        with _timed(report, "import"):
            tell("import bookings", 0, None)
            report.landing = land_hotel_bookings(
                store, data, on_progress=lambda done: tell("import bookings", done, None)
            )
            bookings = report.landing.bookings
            tell("import bookings", bookings, bookings)
        first, last = _landed_range(store)
        report.first_date, report.last_date = first, last
        history_end = min(go_live - dt.timedelta(days=1), last)

        with _timed(report, "materialize history"):
            if first <= history_end:
                # The registries' aggregates of these dates are materialized below, once.
                report.history_runs = _materialize(
                    settings,
                    first,
                    history_end,
                    days_per_run,
                    tell,
                    "materialize history",
                    registries=False,
                )

        registries = RegistryStore(store)
        urls = {
            definition["name"]: f"http://127.0.0.1:{port}/{definition['name']}"
            for definition, port in zip(REGISTRIES, receiver_ports, strict=True)
        }
        document = {
            "registries": [
                {**definition, "url": urls[definition["name"]]} for definition in REGISTRIES
            ]
        }
        report.registry_changes = registries.apply(document)

        with ExitStack() as receivers:
            for definition, port in zip(REGISTRIES, receiver_ports, strict=True):
                name = definition["name"]
                registry = registries.get(name)
                report.received[name] = received_dir / f"{name}.jsonl"
                report.beancount[name] = received_dir / f"{name}.beancount"
                receiver = Receiver(
                    registry.signing_secrets(),
                    report.received[name],
                    beancount=report.beancount[name],
                    timezone=settings.timezone,
                )
                receivers.enter_context(_serving(receiver, port))

            with _timed(report, "materialize live"):
                if go_live <= last:
                    report.live_runs = _materialize(
                        settings,
                        max(go_live, first),
                        last,
                        days_per_run,
                        tell,
                        "materialize live",
                        registries=True,
                    )
            with _timed(report, "materialize registries"):
                if first <= history_end:
                    runs = len(REGISTRIES) * _runs(first, history_end, days_per_run)
                    done: list[RunOutcome] = []

                    def on_run(outcome: RunOutcome) -> None:
                        done.append(outcome)
                        tell("materialize registries", len(done), runs)

                    tell("materialize registries", 0, runs)
                    for definition in REGISTRIES:
                        report.registry_runs += materialize_registry_range(
                            settings,
                            definition["name"],
                            first,
                            history_end,
                            days_per_run=days_per_run,
                            on_run=on_run,
                        )
            with _timed(report, "deliver"):
                report.delivery_passes = _deliver_all(store, tell)

        with _timed(report, "reports"):
            for definition in REGISTRIES:
                name = definition["name"]
                report.reports[name] = _write_report(store, name, first, last, reports_dir)

        report.fingerprint_after = database_fingerprint(store)
    return report


def database_fingerprint(store: LedgerStore) -> dict[str, str]:
    """Per ledger table, its row count and a SHA-256 of its rows in primary-key order."""
    fingerprint = {}
    with store.engine.connect() as connection:
        for table in tables.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            digest = hashlib.sha256()
            rows = 0
            result = connection.execution_options(yield_per=10_000).execute(
                sa.select(table).order_by(*order)
            )
            for row in result:
                digest.update(repr(tuple(row)).encode("utf-8"))
                rows += 1
            fingerprint[table.name] = f"{rows} rows, {digest.hexdigest()[:16]}"
    return fingerprint


# Steps


def _refuse_other_registries(store: LedgerStore) -> None:
    """Refuses a ledger with registries other than the job's: the job delivers every due
    delivery of its ledger to loopback receivers, and would flush a real registry's backlog."""
    own = {definition["name"] for definition in REGISTRIES}
    others = sorted(
        registry.name for registry in RegistryStore(store).list() if registry.name not in own
    )
    if others:
        raise ConfigurationError(
            f"the ledger {store.engine.url.render_as_string(hide_password=True)} holds "
            f"registries of its own ({', '.join(others)}): run the main job on a ledger of its "
            "own, e.g. LEDGER_DATABASE_URL=sqlite:///.ledger/hotel-demo.db (scripts/demo does)"
        )


def _landed_range(store: LedgerStore) -> tuple[dt.date, dt.date]:
    [landed] = store.query_model("rpt_event_dates").itertuples()
    if landed.first_date is None:
        raise LedgerError("no order events landed: the data file holds no booking")
    return _as_date(landed.first_date), _as_date(landed.last_date)


def _materialize(
    settings: Settings,
    first: dt.date,
    last: dt.date,
    days_per_run: int,
    tell: ProgressHook,
    step: str,
    *,
    registries: bool,
) -> list[RunOutcome]:
    # A run of the ledger per range of dates and, with `registries` (the main job has them by
    # then), one run of every registry's aggregates after each.
    runs = _runs(first, last, days_per_run) * (2 if registries else 1)
    done: list[RunOutcome] = []
    tell(step, 0, runs)

    def on_run(outcome: RunOutcome) -> None:
        done.append(outcome)
        tell(step, len(done), runs)

    outcomes = materialize_range(
        settings, first, last, days_per_run=days_per_run, on_run=on_run, registries=registries
    )
    failed = [outcome for outcome in outcomes if not outcome.success]
    if failed:
        raise LedgerError(
            f"Dagster run {failed[0].run_id} for {failed[0].date_from}..{failed[0].date_to} "
            "failed: open the Dagster UI to see which step and why"
        )
    return outcomes


def _runs(first: dt.date, last: dt.date, days_per_run: int) -> int:
    """The number of Dagster runs `materialize_range` takes for the dates."""
    return -(-((last - first).days + 1) // days_per_run)


def _deliver_all(store: LedgerStore, tell: ProgressHook) -> list[DeliveryPassReport]:
    """Delivery passes until nothing is due now (a retry scheduled later stays queued).

    Progress is told as deliveries settled (succeeded or dead-lettered) of those pending at
    the start: the later versions of an order are not due until the earlier ones succeed, so
    the count due at the start would be too small."""
    deliveries = DeliveryStore(store)
    total = sum(statuses.get(PENDING, 0) for statuses in deliveries.counts().values())
    passes = []
    settled = 0
    tell("deliver", 0, total)
    while deliveries.due_count():
        # The receivers listen on this machine's loopback address, which delivery refuses
        # unless told otherwise (a webhook URL of a real registry must be public).
        # A pass delivers every due delivery of the ledger, private addresses allowed: safe
        # because `_refuse_other_registries` made sure the ledger holds the job's alone.
        delivery_pass = deliver_pass(store, allow_private=True, time_budget=dt.timedelta(seconds=5))
        passes.append(delivery_pass)
        settled += delivery_pass.totals.succeeded + delivery_pass.totals.dead
        tell("deliver", settled, total)
        if delivery_pass.sent == 0:
            break
    return passes


def _write_report(
    store: LedgerStore, name: str, first: dt.date, last: dt.date, folder: Path
) -> Path:
    """The registry's ledger_report of the whole history, from its stored aggregates."""
    registry = RegistryStore(store).get(name)
    rows = report_from_totals(registry, RegistryTotalsStore(store).read(name, first, last))
    path = folder / f"{name}.json"
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info(
        "wrote the report of registry %s: %d rows grouped by %s",
        name,
        len(rows),
        ", ".join(report_columns(registry)),
    )
    return path


# Plumbing


@contextmanager
def _serving(receiver: Receiver, port: int) -> Iterator[ThreadingHTTPServer]:
    try:
        server = serve(receiver, "127.0.0.1", port)
    except OSError as error:
        raise ConfigurationError(
            f"cannot start a receiver on 127.0.0.1:{port}: {error.strerror or error} "
            "(another program uses the port? give other ports with --receiver-ports)"
        ) from error
    thread = threading.Thread(target=server.serve_forever, name=f"receiver-{port}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def _timed(report: MainJobReport, step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.seconds[step] = time.monotonic() - started
        logger.info("main job: %s took %.1f s", step, report.seconds[step])


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
