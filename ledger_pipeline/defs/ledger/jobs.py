"""Jobs: materialize the ledger's daily assets, and land one inbox file."""

from pathlib import Path

import dagster as dg

from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.importing import land_file

LEDGER_JOB = "ledger_job"
# Carried by every run that posts, so an instance can limit posting runs to one at a time.
POSTING_TAG = "ledger/posting"


def build_ledger_job(partitions_def: dg.DailyPartitionsDefinition):
    return dg.define_asset_job(
        LEDGER_JOB,
        selection=dg.AssetSelection.groups("ledger"),
        partitions_def=partitions_def,
        tags={POSTING_TAG: "true"},
        description="Posts the landed order events of a range of accounting dates.",
    )


class InboxFileConfig(dg.Config):
    path: str
    landed_folder: str


@dg.op
def land_inbox_file(
    context: dg.OpExecutionContext, config: InboxFileConfig, ledger: LedgerResource
) -> None:
    """Lands one JSON Lines file of the inbox, then moves it to the landed folder."""
    path = Path(config.path)
    with ledger.open() as store:
        report = land_file(store, path)
    context.log.info(
        "landed %s: %d accepted, %d duplicate, %d stale, %d quarantined",
        path.name,
        report.accepted,
        report.duplicate,
        report.stale,
        report.quarantined,
    )
    for rejection in report.rejections[:50]:
        context.log.warning(
            "%s line %d (%s): %s %s",
            path.name,
            rejection.line_number,
            rejection.event_id or "no event id",
            rejection.outcome,
            rejection.reason,
        )

    landed_folder = Path(config.landed_folder)
    landed_folder.mkdir(parents=True, exist_ok=True)
    path.replace(landed_folder / path.name)
    context.add_output_metadata(
        {
            "file": path.name,
            "accepted": report.accepted,
            "duplicate": report.duplicate,
            "stale": report.stale,
            "quarantined": report.quarantined,
        }
    )


@dg.job(description="Lands one JSON Lines file of order events from the inbox folder.")
def import_inbox_job():
    land_inbox_file()
