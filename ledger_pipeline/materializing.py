"""Runs the ledger's daily assets through Dagster for a range of accounting dates, from the
command line, on the same Dagster instance the UI shows."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ledger_pipeline.defs.ledger.assets import build_ledger_assets
from ledger_pipeline.defs.ledger.jobs import POSTING_TAG
from ledger_pipeline.defs.ledger.partitions import ledger_partitions
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.ledger.sensors import RANGE_END_TAG, RANGE_START_TAG
from ledger_pipeline.errors import LedgerError
from ledger_pipeline.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_DAGSTER_HOME = Path(".ledger/dagster")
DEFAULT_DAYS_PER_RUN = 400
# The command shows its own progress; Dagster's per-step console log is in the UI instead.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class RunOutcome:
    date_from: dt.date
    date_to: dt.date
    run_id: str
    success: bool
    entries: int


def dagster_home() -> Path:
    """`DAGSTER_HOME` if set, else `./.ledger/dagster` (created), as an absolute path."""
    configured = os.environ.get("DAGSTER_HOME", "").strip()
    home = Path(configured) if configured else DEFAULT_DAGSTER_HOME
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def dagster_instance() -> dg.DagsterInstance:
    """The persistent Dagster instance of `dagster_home()`, so runs show in the UI."""
    return dg.DagsterInstance.from_config(str(dagster_home()))


def run_ranges(
    date_from: dt.date, date_to: dt.date, days_per_run: int
) -> Iterator[tuple[dt.date, dt.date]]:
    """Consecutive ranges of at most `days_per_run` dates covering `date_from`..`date_to`."""
    if date_from > date_to:
        raise LedgerError(f"--from {date_from} is after --to {date_to}")
    if days_per_run < 1:
        raise LedgerError("--days-per-run must be at least 1")
    start = date_from
    while start <= date_to:
        end = min(date_to, start + dt.timedelta(days=days_per_run - 1))
        yield start, end
        start = end + dt.timedelta(days=1)


def materialize_range(
    settings: Settings,
    date_from: dt.date,
    date_to: dt.date,
    *,
    days_per_run: int = DEFAULT_DAYS_PER_RUN,
    instance: dg.DagsterInstance | None = None,
    on_run: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Materializes order_events, ledger_entries and daily_ledger_totals for the dates, one
    Dagster run per `days_per_run` dates (a single-run backfill each), stopping at the first
    failed run."""
    partitions_def = ledger_partitions(date_from, settings.timezone.key)
    assets = build_ledger_assets(partitions_def)
    resources = {
        "ledger": LedgerResource(database_url=settings.database_url, timezone=settings.timezone.key)
    }
    instance = instance or dagster_instance()

    outcomes = []
    for start, end in run_ranges(date_from, date_to, days_per_run):
        result = dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            run_config=QUIET_RUN_CONFIG,
            tags={
                RANGE_START_TAG: start.isoformat(),
                RANGE_END_TAG: end.isoformat(),
                POSTING_TAG: "true",
            },
            raise_on_error=False,
        )
        outcome = RunOutcome(start, end, result.run_id, result.success, _entries(result))
        logger.info(
            "run %s for %s..%s: %s, %d entries",
            outcome.run_id,
            start,
            end,
            "succeeded" if outcome.success else "failed",
            outcome.entries,
        )
        outcomes.append(outcome)
        if on_run:
            on_run(outcome)
        if not outcome.success:
            break
    return outcomes


def _entries(result: dg.ExecuteInProcessResult) -> int:
    materializations = result.asset_materializations_for_node("ledger_entries")
    if not materializations:
        return 0
    return int(materializations[0].metadata["entries"].value)
