"""The daily schedule: yesterday's partition, shortly after local midnight."""

import datetime as dt

import dagster as dg

from ledger_pipeline.defs.ledger.jobs import LEDGER_JOB


def build_daily_schedule(timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        job_name=LEDGER_JOB,
        cron_schedule="15 0 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_ledger_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Materializes yesterday's accounting date at 00:15 in the ledger's time zone."""
        scheduled = context.scheduled_execution_time
        yesterday = (scheduled.date() - dt.timedelta(days=1)).isoformat()
        return dg.RunRequest(run_key=yesterday, partition_key=yesterday)

    return daily_ledger_schedule
