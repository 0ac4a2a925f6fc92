"""Benchmark: the core work, landing and posting the hotel bookings, in this process.

    .venv/bin/python bench/core.py [--rows N] [--database-url URL] [--workers N]

Lands the hotel bookings CSV (only its first N data rows with --rows) through
`ledger_pipeline.importing.land_hotel_bookings`, the function the CLI's import uses, into a new
ledger in Europe/Lisbon (a temporary SQLite file unless --database-url names an empty ledger
database), then posts every landed event with `LedgerStore.post`. In the same run, a plain
vectorised pandas pass over the same CSV (bench/hotel_baseline.py) works out the debit and
credit totals the ledger must hold, and the ledger's totals per currency are asserted equal to
them, exactly.

Posting uses worker processes (`LedgerStore`'s `workers`, the number of CPUs unless --workers
says otherwise).

On SQLite the run also times the floor of storing: the same order events and ledger entries,
read back, inserted with nothing but the sqlite3 driver's `executemany` into a new database of
the same schema and settings (WAL, foreign keys, the store's page cache), in one transaction per
chunk of the store's size. No landing decision, parsing or posting: what storing the rows alone
costs on this machine, which the core work cannot beat.

Prints per step the wall time, the CPU time of this process and of its worker processes (their
sum over the wall time says how busy the machine's cores were), and the peak memory: the larger
of this process's peak resident set size while the step ran (Linux's VmHWM, reset before each
step through /proc/self/clear_refs, or else the process's maximum resident set size so far) and
the peak, sampled every 200 ms by a separate process, of the proportional set size (PSS: a page
shared by n processes counts 1/n in each) summed over this process and all its worker
processes. Both include SQLite's page cache.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hotel_baseline import expected_totals

from ledger_pipeline.importing import land_hotel_bookings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.store import (
    SQLITE_CACHE_KIB,
    SQLITE_LANDING_CHUNK_LINES,
    LedgerStore,
)

REPO = Path(__file__).resolve().parents[1]
HOTEL_FILE = REPO / "data" / "hotel_bookings.csv.gz"
TIMEZONE = ZoneInfo("Europe/Lisbon")
TARGET_SECONDS = 20.0
TARGET_MIB = 1024.0

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="Land only the first ROWS bookings of the file.")
    parser.add_argument(
        "--database-url", help="An empty ledger database to use instead of a temporary SQLite one."
    )
    parser.add_argument(
        "--workers", type=int, help="Worker processes for posting (default: the number of CPUs)."
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ledger-bench-core-") as folder:
        bookings = HOTEL_FILE if options.rows is None else first_rows(options.rows, Path(folder))
        database_url = options.database_url or f"sqlite:///{Path(folder) / 'ledger.db'}"
        with LedgerStore(database_url, TIMEZONE, workers=options.workers) as store:
            if store.earliest_event_date() is not None:
                raise SystemExit(f"{database_url} already holds order events: give an empty one")
            run(store, bookings, whole_file=options.rows is None)


def run(store: LedgerStore, bookings: Path, *, whole_file: bool) -> None:
    """Lands, posts and checks the bookings against the pandas pass; prints the figures."""
    print(f"ledger: {store.engine.url.render_as_string(hide_password=True)}", flush=True)
    print(f"posting workers: {store.workers} ({os.cpu_count()} CPUs)", flush=True)

    landing, landing_step = measured(lambda: land_hotel_bookings(store, bookings))
    counts = landing.landing
    print(
        f"landed {landing.bookings} bookings ({len(landing.unreadable_rows)} unreadable rows): "
        f"{counts.accepted} events accepted, {counts.duplicate} duplicate, {counts.stale} stale, "
        f"{counts.quarantined} quarantined",
        flush=True,
    )
    posting, posting_step = measured(store.post)
    print(f"posted {posting.events} events: {posting.entries} entries", flush=True)
    expected, pandas_step = measured(lambda: expected_totals(bookings))

    debits, credits = ledger_totals(store)
    assert not landing.unreadable_rows, "the pandas pass reads every row; the ledger did not"
    assert debits == expected, f"ledger debits {debits} != pandas {expected}"
    assert credits == expected, f"ledger credits {credits} != pandas {expected}"
    assert dict(posting.debit_per_currency) == expected, "the posting report's debits differ"
    assert dict(posting.credit_per_currency) == expected, "the posting report's credits differ"

    core = landing_step + posting_step
    rows = [
        ("landing", landing_step),
        ("posting (and storing)", posting_step),
        ("core = landing + posting", core),
        ("pandas pass", pandas_step),
    ]
    if store.engine.dialect.name == "sqlite":
        # Its memory is left out: it holds every row at once, which the store never does.
        floor_seconds = storing_floor(Path(store.engine.url.database or ""))
        rows.append(("storing floor (sqlite3)", Step(floor_seconds, None, None, None)))
    print()
    print(
        f"{'step':<26} {'wall s':>8} {'CPU s: this + workers':>22} {'peak MiB':>9} {'x pandas':>9}"
    )
    for name, step in rows:
        memory = "-" if step.mib is None else f"{step.mib:.0f}"
        cpu = "-" if step.cpu is None else f"{step.cpu:.2f} + {step.workers_cpu:.2f}"
        ratio = step.seconds / pandas_step.seconds
        print(f"{name:<26} {step.seconds:>8.2f} {cpu:>22} {memory:>9} {ratio:>9.1f}")
    print()
    print(f"totals equal: debit = credit = {expected} (minor units)")
    if whole_file:
        core_seconds, core_mib = core.seconds, core.mib or 0.0
        met = core_seconds <= TARGET_SECONDS and core_mib <= TARGET_MIB
        print(
            f"target for the whole file: core <= {TARGET_SECONDS:.0f} s and "
            f"<= {TARGET_MIB:.0f} MiB ({'met' if met else 'NOT met'})"
        )


def storing_floor(ledger: Path) -> float:
    """Wall seconds of inserting the ledger's order events and entries again with
    the bare sqlite3 driver, into a new database beside it with the same tables and indexes."""
    target = ledger.with_name("floor.db")
    source = sqlite3.connect(ledger)
    schema = [
        sql
        for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        )
    ]
    stored = {
        table: source.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        for table in ("order_events", "ledger_entries")
    }
    source.close()

    database = sqlite3.connect(target, isolation_level=None)
    for pragma in ("journal_mode = WAL", "foreign_keys = ON", f"cache_size = -{SQLITE_CACHE_KIB}"):
        database.execute(f"PRAGMA {pragma}")
    for statement in schema:
        database.execute(statement)

    def insert() -> None:
        for table, rows in stored.items():
            statement = f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})"
            for start in range(0, len(rows), SQLITE_LANDING_CHUNK_LINES):
                database.execute("BEGIN IMMEDIATE")
                database.executemany(statement, rows[start : start + SQLITE_LANDING_CHUNK_LINES])
                database.execute("COMMIT")

    started = time.perf_counter()
    insert()
    seconds = time.perf_counter() - started
    database.close()
    return seconds


def first_rows(count: int, folder: Path) -> Path:
    """A CSV of the header and the first `count` data rows of the hotel file, values as written."""
    path = folder / "hotel_bookings.csv"
    with (
        gzip.open(HOTEL_FILE, "rt", encoding="utf-8", newline="") as source,
        path.open("w", encoding="utf-8", newline="") as target,
    ):
        csv.writer(target).writerows(itertools.islice(csv.reader(source), count + 1))
    return path


def ledger_totals(store: LedgerStore) -> tuple[dict[str, int], dict[str, int]]:
    """The debit and credit totals of every stored entry, per currency, read back from the
    database."""
    entries = tables.ledger_entries
    query = sa.select(
        entries.c.currency, sa.func.sum(entries.c.debit), sa.func.sum(entries.c.credit)
    ).group_by(entries.c.currency)
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    return (
        {currency: int(debit) for currency, debit, _ in rows},
        {currency: int(credit) for currency, _, credit in rows},
    )


class Step(NamedTuple):
    """What a step took: wall seconds, peak MiB, and the CPU seconds (user + system) of this
    process and of its worker processes."""

    seconds: float
    mib: float | None
    cpu: float | None
    workers_cpu: float | None

    def __add__(self, other: object) -> Step:
        """The two steps one after the other: times add up, the peak is the larger."""
        assert isinstance(other, Step)
        return Step(
            self.seconds + other.seconds,
            max(self.mib or 0.0, other.mib or 0.0),
            (self.cpu or 0.0) + (other.cpu or 0.0),
            (self.workers_cpu or 0.0) + (other.workers_cpu or 0.0),
        )


def measured(step: Callable[[], T]) -> tuple[T, Step]:
    """The step's result and what it took (see the module's docstring)."""
    resettable = reset_peak_memory()
    # A process, not a thread: the store forks its workers only while this process runs no
    # other thread.
    sampler = subprocess.Popen(
        [sys.executable, "-c", TREE_SAMPLER, str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sampler.stdout is not None
    sampler.stdout.readline()  # it has read the workers' CPU time so far
    cpu_before = sum(os.times()[:2])
    started = time.perf_counter()
    try:
        result = step()
    finally:
        seconds = time.perf_counter() - started
        # A line, not the end of input: the workers hold a copy of the pipe, so it never ends.
        cpu = sum(os.times()[:2]) - cpu_before
        tree_kib, workers_cpu = sampler.communicate("stop\n")[0].split()
    mib = max(peak_memory_mib(resettable), int(tree_kib) / 1024)
    return result, Step(seconds, mib, cpu, float(workers_cpu))


# Prints "ready" once it has read the CPU time of the descendants of process argv[1] (its
# workers; less the sampler itself), then, when a line comes on its standard input, the peak in
# KiB of the summed PSS of argv[1] and its descendants, sampled every 200 ms, and the CPU
# seconds (user + system) its descendants used since "ready". 0 where Linux's /proc does not
# tell.
TREE_SAMPLER = """
import os, select, sys
root, me, peak = int(sys.argv[1]), os.getpid(), 0
ticks = os.sysconf("SC_CLK_TCK")
def tree(pid):
    pids = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                pids += [p for kid in children.read().split() for p in tree(int(kid))]
        except OSError:
            pass
    return pids
def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
def cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The fields after the command's name: utime and stime are the 12th and 13th.
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / ticks
def workers_cpu():
    return {pid: cpu(pid) for pid in tree(root) if pid not in (root, me)}
before = workers_cpu()
print("ready", flush=True)
while True:
    peak = max(peak, sum(pss(pid) for pid in tree(root) if pid != me))
    if select.select([sys.stdin], [], [], 0.2)[0]:
        break
after = workers_cpu()
print(peak, sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items()))
"""


def reset_peak_memory() -> bool:
    """Resets Linux's peak resident set size of this process; False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory_mib(resettable: bool) -> float:
    if resettable:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
