"""Runs the ledger's daily assets, and the registry aggregates, through Dagster for a range of
accounting dates, from the command line, on the same Dagster instance the UI shows."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ledger_pipeline.defs.ledger.assets import build_ledger_assets
from ledger_pipeline.defs.ledger.jobs import POSTING_TAG
from ledger_pipeline.defs.ledger.partitions import ledger_partitions
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.ledger.sensors import RANGE_END_TAG, RANGE_START_TAG
from ledger_pipeline.defs.registries.assets import REGISTRY_TOTALS, build_registry_assets
from ledger_pipeline.defs.registries.partitions import (
    REGISTRY_PARTITIONS,
    partition_changes,
    partition_key,
)
from ledger_pipeline.errors import LedgerError
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger(__name__)

DEFAULT_DAGSTER_HOME = Path(".ledger/dagster")
DEFAULT_DAYS_PER_RUN = 400
# The connections a Dagster storage may open beyond the one it keeps (threads of a run write
# at once), and the age at which a kept connection is replaced, as dagster-webserver's defaults.
POOL_MAX_OVERFLOW = 20
POOL_RECYCLE_SECONDS = 3600
# The command shows its own progress; Dagster's per-step console log is in the UI instead.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class RunOutcome:
    """One Dagster run: of the ledger's assets (`entries` in the range), or of the registry
    aggregates of `registries` (`rows` written)."""

    date_from: dt.date
    date_to: dt.date
    run_id: str
    success: bool
    entries: int = 0
    registries: tuple[str, ...] = ()
    rows: int = 0


def dagster_home() -> Path:
    """`DAGSTER_HOME` if set, else `./.ledger/dagster` (created), as an absolute path."""
    configured = os.environ.get("DAGSTER_HOME", "").strip()
    home = Path(configured) if configured else DEFAULT_DAGSTER_HOME
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def dagster_instance() -> dg.DagsterInstance:
    """The persistent Dagster instance of `dagster_home()`, so runs show in the UI.

    Its storages keep their database connections open, as dagster-webserver's do: by default
    dagster-postgres opens a new connection for every event it writes, which took a quarter of
    a long backfill's time. SQLite storages are left as they are.
    """
    instance = dg.DagsterInstance.from_config(str(dagster_home()))
    instance.optimize_for_webserver(
        statement_timeout=0,  # none: a run's queries take what they take
        pool_recycle=POOL_RECYCLE_SECONDS,
        max_overflow=POOL_MAX_OVERFLOW,
    )
    return instance


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
    registries: bool = True,
) -> list[RunOutcome]:
    """Materializes order_events, ledger_entries and daily_ledger_totals for the dates, one
    Dagster run per `days_per_run` dates (a single-run backfill each), each followed, when
    `registries` is true and the ledger has registries, by one run of every registry's
    aggregates of those dates; stops at the first failed run."""
    partitions_def = ledger_partitions(date_from, settings.timezone.key)
    assets = build_ledger_assets(partitions_def)
    resources = _resources(settings)
    instance = instance or dagster_instance()
    names = sync_registry_partitions(settings, instance) if registries else []

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
        if names:
            outcome = _materialize_registry_totals(
                partitions_def, resources, instance, start, end, names
            )
            outcomes.append(outcome)
            if on_run:
                on_run(outcome)
            if not outcome.success:
                break
    return outcomes


def materialize_registry_range(
    settings: Settings,
    registry_name: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    days_per_run: int = DEFAULT_DAYS_PER_RUN,
    instance: dg.DagsterInstance | None = None,
    on_run: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Materializes one registry's aggregates for the dates, and nothing else: one Dagster run
    per `days_per_run` dates, stopping at the first failed run. The registry's partition is
    added first if the instance lacks it.

    Raises:
        UnknownRegistry: the ledger has no registry of that name.
    """
    with LedgerStore.from_settings(settings) as store:
        RegistryStore(store).get(registry_name)
    instance = instance or dagster_instance()
    if not instance.has_dynamic_partition(REGISTRY_PARTITIONS, registry_name):
        instance.add_dynamic_partitions(REGISTRY_PARTITIONS, [registry_name])
        logger.info("added the partition of registry %s", registry_name)

    partitions_def = ledger_partitions(date_from, settings.timezone.key)
    resources = _resources(settings)
    outcomes = []
    for start, end in run_ranges(date_from, date_to, days_per_run):
        outcome = _materialize_registry_totals(
            partitions_def, resources, instance, start, end, [registry_name]
        )
        outcomes.append(outcome)
        if on_run:
            on_run(outcome)
        if not outcome.success:
            break
    return outcomes


def sync_registry_partitions(settings: Settings, instance: dg.DagsterInstance) -> list[str]:
    """Makes the instance's registry partitions equal the ledger's registries (as the sync
    sensor does); returns the registries' names in the order of their partitions."""
    with LedgerStore.from_settings(settings) as store:
        names = [registry.name for registry in RegistryStore(store).list()]
    added, deleted = partition_changes(instance.get_dynamic_partitions(REGISTRY_PARTITIONS), names)
    if added:
        instance.add_dynamic_partitions(REGISTRY_PARTITIONS, added)
    for name in deleted:
        instance.delete_dynamic_partition(REGISTRY_PARTITIONS, name)
    if added or deleted:
        logger.info("registry partitions: added %s, deleted %s", added, deleted)
    return list(instance.get_dynamic_partitions(REGISTRY_PARTITIONS))


def _materialize_registry_totals(
    partitions_def: dg.DailyPartitionsDefinition,
    resources: dict[str, LedgerResource],
    instance: dg.DagsterInstance,
    date_from: dt.date,
    date_to: dt.date,
    registries: Sequence[str],
) -> RunOutcome:
    """One run of the aggregates of the dates x the registries, which are consecutive in the
    order of their partitions (a range of keys in both dimensions)."""
    [asset] = build_registry_assets(partitions_def)
    result = dg.materialize(
        [asset],
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN_CONFIG,
        tags={
            RANGE_START_TAG: partition_key(date_from, registries[0]),
            RANGE_END_TAG: partition_key(date_to, registries[-1]),
        },
        raise_on_error=False,
    )
    outcome = RunOutcome(
        date_from,
        date_to,
        result.run_id,
        result.success,
        registries=tuple(registries),
        rows=_metadata_int(result, REGISTRY_TOTALS, "rows"),
    )
    logger.info(
        "run %s of registry totals of %s for %s..%s: %s, %d rows",
        outcome.run_id,
        ", ".join(registries),
        date_from,
        date_to,
        "succeeded" if outcome.success else "failed",
        outcome.rows,
    )
    return outcome


def _resources(settings: Settings) -> dict[str, LedgerResource]:
    return {
        "ledger": LedgerResource(database_url=settings.database_url, timezone=settings.timezone.key)
    }


def _entries(result: dg.ExecuteInProcessResult) -> int:
    return _metadata_int(result, "ledger_entries", "entries")


def _metadata_int(result: dg.ExecuteInProcessResult, node: str, name: str) -> int:
    """A number of the run's first materialization of the node (every partition of a run gets
    the same metadata)."""
    materializations = result.asset_materializations_for_node(node)
    if not materializations:
        return 0
    return int(materializations[0].metadata[name].value)
