"""Worker processes change how fast an import and a posting run go, never what they store:
the same rows, in the same order, with one process or several."""

from __future__ import annotations

import datetime as dt
import gzip
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.importing import land_hotel_bookings
from ledger_pipeline.storage import store as store_module
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore, start_workers

DATA = Path(__file__).resolve().parents[1] / "data" / "hotel_bookings.csv.gz"
# Enough rows for both stages to hand their work to the workers: 2 events a booking.
ROWS = 3000
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# Columns stamped with the moment of the run, which differ between any two runs.
MOMENTS = {"landed_at", "posted_at", "rejected_at", "created_at", "next_attempt_at"}


@pytest.fixture(scope="module")
def bookings(tmp_path_factory) -> Path:
    with gzip.open(DATA, "rt", encoding="utf-8") as source:
        lines = [next(source) for _ in range(ROWS + 1)]
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
        landing = land_hotel_bookings(store, bookings).landing
        posting = store.post()
        counts = (
            landing.accepted,
            landing.quarantined,
            posting.events,
            posting.entries,
            posting.deliveries,
            dict(posting.debit_per_currency),
        )
        return stored_rows(store), counts


def test_two_workers_store_what_one_process_stores(tmp_path, bookings):
    alone, alone_counts = run(f"sqlite:///{tmp_path / 'alone.db'}", bookings, workers=1)
    shared, shared_counts = run(f"sqlite:///{tmp_path / 'shared.db'}", bookings, workers=2)

    assert shared_counts == alone_counts
    # 2 events a booking, none quarantined in these rows, and a delivery for each event with
    # entries, to the one registry that takes everything.
    assert alone_counts[:3] == (2 * ROWS, 0, 2 * ROWS)
    events_with_entries = {row[1] for row in alone["ledger_entries"]}
    assert alone_counts[4] == len(alone["deliveries"]) == len(events_with_entries) > ROWS
    for table, rows in alone.items():
        assert shared[table] == rows, table


def test_workers_started_before_a_thread_serve_the_runs_made_beside_it(tmp_path, bookings):
    """A command with a progress display starts the workers first, then its thread."""
    start_workers(2)
    stop = threading.Event()
    beside = threading.Thread(target=stop.wait)
    beside.start()
    try:
        assert threading.active_count() > 1
        shared, _ = run(f"sqlite:///{tmp_path / 'shared.db'}", bookings, workers=2)
        assert store_module._POOL is not None and store_module._POOL[0] == 2
    finally:
        stop.set()
        beside.join()
    alone, _ = run(f"sqlite:///{tmp_path / 'alone.db'}", bookings, workers=1)

    assert shared == alone
