"""The delivery sensor: one delivery run when deliveries are due and none is running."""

import dagster as dg

from ledger_pipeline.defs.deliveries.jobs import DELIVER_JOB, deliver_job
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.storage.deliveries import DeliveryStore

# Runs that have not finished: while one is there, the sensor requests none.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.sensor(
    job=deliver_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def deliveries_sensor(
    context: dg.SensorEvaluationContext, ledger: LedgerResource
) -> dg.SensorResult | dg.SkipReason:
    """Requests one delivery run when deliveries are due and no delivery run is unfinished:
    one run per batch of due deliveries, never one per delivery, and none when nothing is
    due."""
    running = context.instance.get_run_records(
        dg.RunsFilter(job_name=DELIVER_JOB, statuses=UNFINISHED), limit=1
    )
    if running:
        return dg.SkipReason(f"delivery run {running[0].dagster_run.run_id} has not finished")

    with ledger.open() as store:
        due = DeliveryStore(store).due_count()
    if not due:
        return dg.SkipReason("no delivery is due")

    context.log.info("%d deliveries are due: requesting a delivery run", due)
    return dg.SensorResult(run_requests=[dg.RunRequest(tags={"ledger/due": str(due)})])
