"""Sensors: land files dropped into the inbox folder, and post the dates that events land on."""

import json
import os
from pathlib import Path

import dagster as dg

from ledger_pipeline.defs.ledger.jobs import LEDGER_JOB, import_inbox_job
from ledger_pipeline.defs.ledger.resources import LedgerResource

INBOX_VARIABLE = "LEDGER_INBOX"
DEFAULT_INBOX = "./.ledger/inbox"
LANDED_SUBFOLDER = "landed"

# Dagster's tags for one run over a range of partitions (a single-run backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def inbox_folder() -> Path:
    return Path(os.environ.get(INBOX_VARIABLE, "").strip() or DEFAULT_INBOX)


@dg.sensor(
    job=import_inbox_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Requests a landing run for each new or changed `*.jsonl` file in the inbox folder.

    The cursor maps each file still in the inbox to the size and modification time it had
    when its run was requested; landed files move to `landed/` and drop out of the cursor.
    """
    folder = inbox_folder()
    if not folder.is_dir():
        return dg.SkipReason(f"no inbox folder at {folder} (set {INBOX_VARIABLE})")

    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    present: dict[str, str] = {}
    run_requests = []
    for path in sorted(folder.glob("*.jsonl")):
        stat = path.stat()
        version = f"{stat.st_size}:{stat.st_mtime_ns}"
        present[path.name] = version
        if requested.get(path.name) == version:
            continue
        run_requests.append(
            dg.RunRequest(
                run_key=f"{path.name}:{version}",
                run_config={
                    "ops": {
                        "land_inbox_file": {
                            "config": {
                                "path": str(path.resolve()),
                                "landed_folder": str((folder / LANDED_SUBFOLDER).resolve()),
                            }
                        }
                    }
                },
                tags={"ledger/inbox_file": path.name},
            )
        )

    cursor = json.dumps(present, sort_keys=True)
    if not run_requests:
        return dg.SensorResult(skip_reason=f"no new file in {folder}", cursor=cursor)
    context.log.info("inbox: %d new file(s) to land", len(run_requests))
    return dg.SensorResult(run_requests=run_requests, cursor=cursor)


def build_landed_events_sensor(partitions_def: dg.DailyPartitionsDefinition):
    @dg.sensor(
        job_name=LEDGER_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def landed_events_sensor(
        context: dg.SensorEvaluationContext, ledger: LedgerResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Requests one run over the accounting dates that have landed events not yet posted,
        past or present, so late events are posted on their own date."""
        with ledger.open() as store:
            pending = store.unposted_summary()
        if pending is None:
            return dg.SkipReason("every landed event is posted")

        first_partition = partitions_def.get_first_partition_key()
        last_partition = partitions_def.get_last_partition_key()
        date_from = max(pending.first_date.isoformat(), first_partition)
        date_to = min(pending.last_date.isoformat(), last_partition)
        if date_from > date_to:
            return dg.SkipReason(
                f"{pending.events} unposted events on {pending.first_date}..{pending.last_date} "
                f"fall outside the partitions {first_partition}..{last_partition}"
            )

        # The run key changes whenever more events land, so a run is requested once per state.
        run_key = f"{date_from}..{date_to}:{pending.events}:{pending.last_landed_at.isoformat()}"
        context.log.info(
            "%d unposted events on %s..%s: requesting one run", pending.events, date_from, date_to
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key,
                    tags={RANGE_START_TAG: date_from, RANGE_END_TAG: date_to},
                )
            ],
            cursor=run_key,
        )

    return landed_events_sensor
