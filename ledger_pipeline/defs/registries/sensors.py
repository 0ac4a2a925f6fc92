"""The registries' sensors: one keeps the registry partitions equal to the registries in the
ledger; the other materializes the aggregates as the ledger entries they come from change."""

import dagster as dg

from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.registries.assets import REGISTRY_TOTALS
from ledger_pipeline.defs.registries.partitions import (
    REGISTRY_PARTITIONS,
    partition_changes,
    registry_partitions,
)
from ledger_pipeline.storage.registries import RegistryStore


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def registry_partitions_sensor(
    context: dg.SensorEvaluationContext, ledger: LedgerResource
) -> dg.SensorResult:
    """Adds a partition for each new registry and deletes those of deleted registries."""
    # Limitation: a registry deleted and created again between two ticks keeps its partition and
    # the materializations Dagster recorded for it, although its rows went with the deleted
    # registry (ON DELETE CASCADE); its dates must be materialized again.
    with ledger.open() as store:
        names = [registry.name for registry in RegistryStore(store).list()]
    added, deleted = partition_changes(
        context.instance.get_dynamic_partitions(REGISTRY_PARTITIONS), names
    )
    if not added and not deleted:
        return dg.SensorResult(skip_reason=f"the {len(names)} registries have their partitions")

    context.log.info(
        "registry partitions: adding %s; deleting %s",
        ", ".join(added) or "none",
        ", ".join(deleted) or "none",
    )
    requests: list = []
    if added:
        requests.append(registry_partitions.build_add_request(added))
    if deleted:
        requests.append(registry_partitions.build_delete_request(deleted))
    return dg.SensorResult(dynamic_partitions_requests=requests)


registry_totals_automation = dg.AutomationConditionSensorDefinition(
    "registry_totals_automation",
    target=dg.AssetSelection.assets(REGISTRY_TOTALS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Materializes the registry aggregates of every date whose ledger entries were "
        "materialized again, and a new registry's dates, as backfills of few runs."
    ),
)
"""Evaluates `registry_totals`' automation condition (`FOLLOW_THE_LEDGER`) and launches what it
asks for as backfills, which the asset's single-run backfill policy cuts into few runs. Its
first evaluation requests nothing: dates materialized before it ever ran are left as they are."""
