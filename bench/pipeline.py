"""Benchmark: the whole hotel history through the CLI, on a real DAGSTER_HOME.

    .venv/bin/python bench/pipeline.py [--dagster-storage postgres|sqlite] [--keep DIR]

Runs, each as its own `ledger-pipeline` process on a fresh SQLite ledger (Europe/Lisbon):
1. `import-hotel-bookings data/hotel_bookings.csv.gz` (landing),
2. `post` (posting and storing the entries): with 1, the core work;
3. `materialize` over every accounting date (the Dagster backfill: runs of many daily
   partitions, checks and the daily totals, on an instance whose storage is PostgreSQL when
   a local server answers, else SQLite files),
and, in the same run, a plain vectorised pandas pass over the same CSV (bench/hotel_baseline.py)
as the baseline. Prints wall time and peak memory per step and the ratio of each to the pandas
pass, and asserts that the ledger's debit and credit totals per currency equal the pandas
figures exactly. A step's peak memory is the larger of its process's maximum resident set size
and the peak, sampled every 200 ms, of the proportional set size summed over that process and
its worker processes (bench/core.py's sampler): import and post use a worker per CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from core import TREE_SAMPLER  # noqa: E402
from hotel_baseline import expected_totals  # noqa: E402

from ledger_pipeline.storage.store import LedgerStore  # noqa: E402

HOTEL_FILE = REPO / "data" / "hotel_bookings.csv.gz"
CLI = REPO / ".venv" / "bin" / "ledger-pipeline"
TARGETS = {"core": (20.0, 1024.0), "backfill": (300.0, None)}


def run_step(arguments: list[str], environment: dict[str, str]) -> tuple[float, float]:
    """Runs one CLI command; returns (wall seconds, peak memory in MiB) of that process and its
    workers."""
    started = time.monotonic()
    process = subprocess.Popen(
        [str(CLI), *arguments], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    sampler = subprocess.Popen(
        [sys.executable, "-c", TREE_SAMPLER, str(process.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    tree_kib, _ = sampler.communicate("stop\n")
    output = process.stdout.read().decode()
    errors = process.stderr.read().decode()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{output}\n{errors[-2000:]}")
    print(f"  {' '.join(arguments)}: {output.strip().splitlines()[-1]}", flush=True)
    return seconds, max(usage.ru_maxrss, int(tree_kib or 0)) / 1024


def pandas_step() -> tuple[float, float, dict[str, int]]:
    started = time.monotonic()
    totals = expected_totals(HOTEL_FILE)
    seconds = time.monotonic() - started
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, totals


POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin(statement: str) -> None:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


def dagster_home(folder: Path, storage: str, environment: dict[str, str]) -> None:
    """A DAGSTER_HOME from the repo's instance examples, on PostgreSQL or SQLite files."""
    home = folder / "dagster"
    home.mkdir()
    environment["DAGSTER_HOME"] = str(home)
    if storage == "sqlite":
        (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
        return
    database = f"bench_dagster_{uuid.uuid4().hex[:8]}"
    postgres_admin(f'create database "{database}"')
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.postgres.yaml").read_text())
    environment.update(
        DAGSTER_PG_HOST="127.0.0.1",
        DAGSTER_PG_PORT="5432",
        DAGSTER_PG_DB=database,
        DAGSTER_PG_USERNAME="postgres",
        DAGSTER_PG_PASSWORD="",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dagster-storage", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--keep", type=Path, help="Run in this folder and keep it.")
    options = parser.parse_args()

    folder = options.keep or Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    ledger_url = f"sqlite:///{folder / 'ledger.db'}"
    environment = {
        **os.environ,
        "LEDGER_DATABASE_URL": ledger_url,
        "LEDGER_TIMEZONE": "Europe/Lisbon",
    }
    dagster_home(folder, options.dagster_storage, environment)
    print(f"bench in {folder} (Dagster storage: {options.dagster_storage})", flush=True)

    steps = {}
    try:
        steps["landing"] = run_step(["import-hotel-bookings", str(HOTEL_FILE)], environment)
        steps["posting"] = run_step(["post"], environment)
        steps["backfill"] = run_step(["materialize"], environment)
    finally:
        if "DAGSTER_PG_DB" in environment and not options.keep:
            postgres_admin(f'drop database if exists "{environment["DAGSTER_PG_DB"]}"')
    pandas_seconds, pandas_memory, expected = pandas_step()

    with LedgerStore(ledger_url) as store:
        balances = store.query_model("rpt_balance_by_currency")
    debits = {row.currency: int(row.debit) for row in balances.itertuples()}
    credits = {row.currency: int(row.credit) for row in balances.itertuples()}
    assert debits == expected, f"ledger debits {debits} != pandas {expected}"
    assert credits == expected, f"ledger credits {credits} != pandas {expected}"

    core = (
        steps["landing"][0] + steps["posting"][0],
        max(steps["landing"][1], steps["posting"][1]),
    )
    rows = [
        ("landing", *steps["landing"]),
        ("posting", *steps["posting"]),
        ("core = landing + posting", *core),
        ("Dagster backfill (materialize)", *steps["backfill"]),
        ("pandas pass (baseline)", pandas_seconds, pandas_memory),
    ]
    print()
    print(f"{'step':<32} {'wall s':>8} {'peak MiB':>9} {'x pandas':>9}")
    for name, seconds, memory in rows:
        print(f"{name:<32} {seconds:>8.1f} {memory:>9.0f} {seconds / pandas_seconds:>9.1f}")
    print()
    print(f"totals equal: debit = credit = {expected} (minor units)")
    print(
        f"targets: core <= {TARGETS['core'][0]:.0f} s and <= {TARGETS['core'][1]:.0f} MiB "
        f"({'met' if core[0] <= 20 and core[1] <= 1024 else 'NOT met'}); "
        f"backfill <= {TARGETS['backfill'][0]:.0f} s "
        f"({'met' if steps['backfill'][0] <= 300 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
