"""Daily partitions by accounting date in the ledger's time zone."""

import datetime as dt
import os

import dagster as dg

from ledger_pipeline.errors import ConfigurationError

PARTITIONS_START_VARIABLE = "LEDGER_PARTITIONS_START"


def ledger_partitions(start: dt.date, timezone: str) -> dg.DailyPartitionsDefinition:
    """One partition per local date from `start` up to and including today."""
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), timezone=timezone, end_offset=1
    )


def partitions_start(earliest_event_date: dt.date | None, today: dt.date) -> dt.date:
    """`LEDGER_PARTITIONS_START` if set, else the earliest landed event's date, else today.

    Limitation: partitions start where the landed data started when the code location was
    loaded. Events landed later for an even earlier date get partitions only after the code
    location is reloaded (or with `LEDGER_PARTITIONS_START` set earlier); until then the
    landed-events sensor reports them as outside the partitions.
    """
    configured = os.environ.get(PARTITIONS_START_VARIABLE, "").strip()
    if configured:
        try:
            return dt.date.fromisoformat(configured)
        except ValueError:
            raise ConfigurationError(
                f"{PARTITIONS_START_VARIABLE}={configured!r} is not a date as YYYY-MM-DD"
            ) from None
    return earliest_event_date or today
