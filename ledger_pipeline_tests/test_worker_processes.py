"""Worker processes change how fast an import and a posting run go, never what they store:
the same rows, in the same order, with one process or several."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.importing import land_hotel_bookings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "hotel_bookings.csv.gz"
# Enough rows for both stages to hand their work to the workers: 2 events a booking.
ROWS = 3000
# A row cut short, which the workers read as no booking, among the others.
UNREADABLE_ROW = 1501
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# Columns stamped with the moment of the run, which differ between any two runs.
MOMENTS = {"landed_at", "posted_at", "rejected_at", "created_at", "next_attempt_at"}


@pytest.fixture(scope="module")
def bookings(tmp_path_factory) -> Path:
    with gzip.open(DATA, "rt", encoding="utf-8") as source:
        lines = [next(source) for _ in range(ROWS + 1)]
    lines.insert(UNREADABLE_ROW, "City Hotel,0,10\n")
    path = tmp_path_factory.mktemp("bookings") / "first-rows.csv.gz"
    path.write_bytes(gzip.compress("".join(lines).encode()))
    return path


def stored_rows(store: LedgerStore) -> dict[str, list[tuple]]:
    """Every row of the tables an import and a posting run write, in insertion order, less
    the columns that hold the moment of the run."""
    rows = {}
    with store.engine.connect() as connection:
        for table in (
            tables.order_events,
            tables.rejected_events,
            tables.ledger_entries,
            tables.deliveries,
        ):
            columns = [column for column in table.c if column.name not in MOMENTS]
            query = sa.select(*columns).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in connection.execute(query)]
    return rows


def run(database_url: str, bookings: Path, workers: int) -> tuple[dict, tuple]:
    with LedgerStore(database_url, ZoneInfo("Europe/Lisbon"), workers=workers) as store:
        RegistryStore(store).create(
            Registry("books", url="https://books.example/hooks", since=LONG_AGO)
        )
        hotel_landing = land_hotel_bookings(store, bookings)
        landing = hotel_landing.landing
        posting = store.post()
        counts = (
            hotel_landing.bookings,
            [(rejection.row, rejection.reason) for rejection in hotel_landing.unreadable_rows],
            landing.accepted,
            landing.quarantined,
            posting.events,
            posting.entries,
            posting.deliveries,
            dict(posting.debit_per_currency),
        )
        return stored_rows(store), counts


def shared_run(database_url: str, bookings: Path, *, thread: bool) -> dict:
    """`run` with 2 workers in a new process, as a command runs it (this one may run threads
    of earlier tests, which keep workers from being forked); with `thread`, beside a thread
    started after the workers, as a command with a progress display does."""
    completed = subprocess.run(
        [sys.executable, "-c", SHARED_RUN, database_url, str(bookings), str(thread)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


SHARED_RUN = """
import json, sys, threading
from pathlib import Path
import ledger_pipeline.storage.store as store_module
from ledger_pipeline.storage.store import start_workers
from ledger_pipeline_tests.test_worker_processes import run

database_url, bookings, thread = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "True"
beside = threading.Thread(target=threading.Event().wait, name="beside", daemon=True)
if thread:
    start_workers(2)
    beside.start()
_, counts = run(database_url, bookings, workers=2)
pool = store_module._POOL
workers = pool and pool[0]
print(json.dumps({"counts": counts, "workers": workers, "beside": beside.is_alive()}))
"""


def rows_of(database_url: str) -> dict[str, list[tuple]]:
    with LedgerStore(database_url, workers=1) as store:
        return stored_rows(store)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_databases(request, tmp_path) -> tuple[str, str]:
    """URLs of two empty ledger databases of one kind. PostgreSQL posts in smaller chunks than
    SQLite, each cut into the workers' batches."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alone.db'}", f"sqlite:///{tmp_path / 'shared.db'}"
    make = request.getfixturevalue("postgres_schemas")
    return make(), make()


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "beside-a-thread"])
def test_two_workers_store_what_one_process_stores(two_databases, bookings, thread):
    alone_url, shared_url = two_databases
    alone, alone_counts = run(alone_url, bookings, workers=1)
    shared_run_report = shared_run(shared_url, bookings, thread=thread)

    # The workers did the work, in a process that also ran a thread when asked to.
    assert shared_run_report["workers"] == 2
    assert shared_run_report["beside"] is thread
    assert shared_run_report["counts"] == json.loads(json.dumps(alone_counts))
    # Every row but the one cut short is a booking; 2 events a booking, none quarantined in
    # these rows, and a delivery for each event with entries, to the one registry that takes
    # everything.
    unreadable = [(UNREADABLE_ROW, "has 3 fields where the header has 32")]
    assert alone_counts[:5] == (ROWS, unreadable, 2 * ROWS, 0, 2 * ROWS)
    events_with_entries = {row[1] for row in alone["ledger_entries"]}
    assert alone_counts[6] == len(alone["deliveries"]) == len(events_with_entries) > ROWS
    shared = rows_of(shared_url)
    for table, rows in alone.items():
        assert shared[table] == rows, table
