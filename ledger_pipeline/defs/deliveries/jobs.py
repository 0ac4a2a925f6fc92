"""Jobs: one delivery pass (`deliver_job`), and replaying dead or failing deliveries."""

import datetime as dt

import dagster as dg

from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.delivery.worker import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    DeliveryPassReport,
    deliver_pass,
)
from ledger_pipeline.errors import DeliveryError
from ledger_pipeline.storage.deliveries import DeliveryStore

DELIVER_JOB = "deliver_job"
# Carried by every delivery run, so the sensor (and an instance's run queue) can tell them.
DELIVERY_TAG = "ledger/delivery"


class DeliverConfig(dg.Config):
    """How one delivery pass runs."""

    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = DEFAULT_WORKERS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # A run ends after this long even when more is due; the sensor then starts the next one.
    time_budget_seconds: float = 600.0


@dg.op
def deliver_due(
    context: dg.OpExecutionContext, config: DeliverConfig, ledger: LedgerResource
) -> None:
    """Sends the due webhook deliveries, batch after batch, and records every attempt."""
    with ledger.open() as store:
        report = deliver_pass(
            store,
            batch_size=config.batch_size,
            workers=config.workers,
            timeout=config.timeout_seconds,
            time_budget=dt.timedelta(seconds=config.time_budget_seconds),
            worker=f"dagster:{context.run_id[:8]}",
        )

    totals = report.totals
    context.log.info(
        "sent %d deliveries in %d batches: %d succeeded, %d retried, %d dead",
        totals.sent,
        report.batches,
        totals.succeeded,
        totals.retried,
        totals.dead,
    )
    context.add_output_metadata(
        {
            "sent": dg.MetadataValue.int(totals.sent),
            "succeeded": dg.MetadataValue.int(totals.succeeded),
            "retried": dg.MetadataValue.int(totals.retried),
            "dead": dg.MetadataValue.int(totals.dead),
            "registries disabled by 410": dg.MetadataValue.int(totals.gone),
            "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
            "per registry": dg.MetadataValue.md(registry_table(report)),
            "slowest endpoints": dg.MetadataValue.md(endpoint_table(report)),
        }
    )


@dg.job(
    description="Sends the webhook deliveries that are due, in one pass.",
    tags={DELIVERY_TAG: "deliver"},
)
def deliver_job():
    deliver_due()


class ReplayConfig(dg.Config):
    """Which deliveries to replay: ids, or a registry and/or a status (dead by default)."""

    ids: list[int] = []
    registry: str | None = None
    status: str | None = None


@dg.op
def replay_deliveries(
    context: dg.OpExecutionContext, config: ReplayConfig, ledger: LedgerResource
) -> None:
    """Makes dead, skipped or failing deliveries due again now (as `deliveries replay`)."""
    if config.ids and (config.registry or config.status):
        raise DeliveryError("give delivery ids or a registry/status, not both")
    with ledger.open() as store:
        replayed = DeliveryStore(store).replay(
            config.ids, registry=config.registry, status=config.status
        )
    context.log.info("replayed %d deliveries", replayed)
    context.add_output_metadata({"replayed": dg.MetadataValue.int(replayed)})


@dg.job(
    description="Replays dead, skipped or failing deliveries: they go out on the next pass.",
    tags={DELIVERY_TAG: "replay"},
)
def replay_deliveries_job():
    replay_deliveries()


def registry_table(report: DeliveryPassReport) -> str:
    """Sent, succeeded, retried and dead per registry, and the last failure, as a markdown
    table."""
    lines = [
        "| registry | sent | succeeded | retried | dead | last failure |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, counts in sorted(report.registries.items()):
        failure = (counts.last_failure or "").replace("|", "\\|")
        lines.append(
            f"| {name} | {counts.sent} | {counts.succeeded} | {counts.retried} | {counts.dead} "
            f"| {failure} |"
        )
    if not report.registries:
        lines.append("| (nothing was due) | 0 | 0 | 0 | 0 | |")
    return "\n".join(lines)


def endpoint_table(report: DeliveryPassReport) -> str:
    """The slowest endpoints (hosts, never full URLs) by mean latency, as a markdown table."""
    lines = ["| endpoint | attempts | mean ms | max ms |", "|---|---:|---:|---:|"]
    for latency in report.slowest_endpoints():
        lines.append(
            f"| {latency.host} | {latency.attempts} | {latency.mean_ms} | {latency.max_ms} |"
        )
    return "\n".join(lines)
