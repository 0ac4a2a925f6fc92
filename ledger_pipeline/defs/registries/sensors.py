"""The sensor that keeps the registry partitions equal to the registries in the ledger."""

import dagster as dg

from ledger_pipeline.defs.ledger.resources import LedgerResource
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
