"""Partitions of the registry aggregates: the ledger's accounting dates x the registries.

The registries are dynamic partitions (`registries`), added and deleted as registries are (the
sync sensor, and `ledger-pipeline materialize --registry`), so one registry can be backfilled
over a range of dates without touching the others.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

import dagster as dg

REGISTRY_PARTITIONS = "registries"
DATE_DIMENSION = "date"
REGISTRY_DIMENSION = "registry"

registry_partitions = dg.DynamicPartitionsDefinition(name=REGISTRY_PARTITIONS)


def registry_totals_partitions(
    daily: dg.DailyPartitionsDefinition,
) -> dg.MultiPartitionsDefinition:
    """The ledger's daily partitions x the registries. A key reads `2024-11-15|books`."""
    return dg.MultiPartitionsDefinition(
        {DATE_DIMENSION: daily, REGISTRY_DIMENSION: registry_partitions}
    )


def partition_key(date: dt.date, registry: str) -> str:
    """The key of one registry's aggregates of one accounting date."""
    return str(
        dg.MultiPartitionKey({DATE_DIMENSION: date.isoformat(), REGISTRY_DIMENSION: registry})
    )


def registry_dates(partition_keys: Iterable[str]) -> dict[str, list[dt.date]]:
    """The dates of each registry among the keys of a run, in order."""
    dates: dict[str, set[dt.date]] = defaultdict(set)
    for key in partition_keys:
        dimensions = (
            key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else _dimensions(key)
        )
        dates[dimensions[REGISTRY_DIMENSION]].add(dt.date.fromisoformat(dimensions[DATE_DIMENSION]))
    return {registry: sorted(days) for registry, days in sorted(dates.items())}


def date_ranges(dates: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted dates as the fewest ranges of consecutive dates."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for date in sorted(set(dates)):
        if ranges and ranges[-1][1] + dt.timedelta(days=1) == date:
            ranges[-1] = (ranges[-1][0], date)
        else:
            ranges.append((date, date))
    return ranges


def partition_changes(
    partitions: Iterable[str], registries: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The registry partitions to add and to delete so that they equal the registries."""
    present, wanted = set(partitions), set(registries)
    return sorted(wanted - present), sorted(present - wanted)


def _dimensions(key: str) -> dict[str, str]:
    # Dimensions are ordered by name in a key's text: date, then registry.
    date, registry = key.split("|")
    return {DATE_DIMENSION: date, REGISTRY_DIMENSION: registry}
