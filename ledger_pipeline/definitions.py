"""The Dagster code location: assembles the ledger's assets, jobs, sensors and schedule."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ledger_pipeline.defs.deliveries.jobs import deliver_job, replay_deliveries_job
from ledger_pipeline.defs.deliveries.sensors import deliveries_sensor
from ledger_pipeline.defs.ledger.assets import build_ledger_assets
from ledger_pipeline.defs.ledger.jobs import build_ledger_job, import_inbox_job
from ledger_pipeline.defs.ledger.partitions import ledger_partitions, partitions_start
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.ledger.schedules import build_daily_schedule
from ledger_pipeline.defs.ledger.sensors import build_landed_events_sensor, inbox_sensor
from ledger_pipeline.defs.registries.assets import build_registry_assets
from ledger_pipeline.defs.registries.sensors import (
    registry_partitions_sensor,
    registry_totals_automation,
)
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.store import LedgerStore


def build_definitions(
    settings: Settings | None = None, start: dt.date | None = None
) -> dg.Definitions:
    """The code location for one ledger; `start` is the first partition's date.

    Without `start`, partitions begin at `LEDGER_PARTITIONS_START`, else at the earliest landed
    event, else today.
    """
    settings = settings or Settings.from_environment()
    timezone = settings.timezone.key
    if start is None:
        with LedgerStore.from_settings(settings) as store:
            earliest = store.earliest_event_date()
        start = partitions_start(earliest, dt.datetime.now(settings.timezone).date())

    partitions_def = ledger_partitions(start, timezone)
    ledger = dg.Definitions(
        assets=build_ledger_assets(partitions_def),
        jobs=[build_ledger_job(partitions_def), import_inbox_job],
        sensors=[inbox_sensor, build_landed_events_sensor(partitions_def)],
        schedules=[build_daily_schedule(timezone)],
        resources={"ledger": LedgerResource(database_url=settings.database_url, timezone=timezone)},
        executor=dg.multiprocess_executor,
    )
    registries = dg.Definitions(
        assets=build_registry_assets(partitions_def),
        sensors=[registry_partitions_sensor, registry_totals_automation],
    )
    deliveries = dg.Definitions(
        jobs=[deliver_job, replay_deliveries_job], sensors=[deliveries_sensor]
    )
    return dg.Definitions.merge(ledger, registries, deliveries)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
