"""The registry aggregates: each registry's totals per accounting date and group, a thin shell
over `ledger_pipeline.storage.registry_totals`."""

import time

import dagster as dg
import pandas as pd

from ledger_pipeline.core.money import format_minor
from ledger_pipeline.defs.ledger.assets import PREVIEW_ROWS
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.registries.partitions import (
    DATE_DIMENSION,
    date_ranges,
    registry_dates,
    registry_totals_partitions,
)
from ledger_pipeline.errors import UnknownRegistry
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.registry_totals import RegistryTotalsStore, ReplaceReport

REGISTRY_GROUP = "registries"
REGISTRY_TOTALS = "registry_totals"

FOLLOW_THE_LEDGER = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("follow the ledger")
"""When `registry_totals_automation` materializes a (date, registry) partition: once the ledger
entries of its date are materialized again (by the daily schedule, the landed-events sensor, a
backfill), at any date, so a late event's past date is rolled up again too, and their blocking
checks passed; and, for a new registry, every date whose entries exist. Never while the entries
of its date are being materialized or are missing, and never twice for one update: aggregates
materialized after their entries (as `ledger-pipeline materialize` does) are up to date."""


def build_registry_assets(daily: dg.DailyPartitionsDefinition) -> list:
    """The registry aggregates on the ledger's daily partitions x the registries."""

    @dg.asset(
        name=REGISTRY_TOTALS,
        partitions_def=registry_totals_partitions(daily),
        # Dagster groups a backfill of a multi-partitioned asset by the dimension with fewer
        # keys: dates of one registry are one run, many registries one run each.
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            dg.AssetDep(
                "ledger_entries",
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                    partition_dimension_name=DATE_DIMENSION
                ),
            )
        ],
        group_name=REGISTRY_GROUP,
        kinds={"python", "sql"},
        automation_condition=FOLLOW_THE_LEDGER,
    )
    def registry_totals(
        context: dg.AssetExecutionContext, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        """Each registry's totals per accounting date and group, from the ledger entries."""
        started = time.monotonic()
        reports: list[ReplaceReport] = []
        with ledger.open() as store:
            registries = RegistryStore(store)
            totals = RegistryTotalsStore(store)
            for name, dates in registry_dates(context.partition_keys).items():
                try:
                    registry = registries.get(name)
                except UnknownRegistry:
                    raise dg.Failure(
                        f"registry {name!r} does not exist (any more): its partition is "
                        "deleted by the registry sync sensor"
                    ) from None
                for date_from, date_to in date_ranges(dates):
                    reports.append(totals.replace(registry, date_from, date_to))
            preview = _preview(totals, reports)

        seconds = time.monotonic() - started
        rows = sum(report.rows for report in reports)
        context.log.info(
            "registry totals of %s: %d rows from %d entries in %.1f s",
            ", ".join(
                f"{report.registry} {report.date_from}..{report.date_to}" for report in reports
            ),
            rows,
            sum(report.entries for report in reports),
            seconds,
        )
        return dg.MaterializeResult(
            metadata={
                "rows": dg.MetadataValue.int(rows),
                "entries": dg.MetadataValue.int(sum(report.entries for report in reports)),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "ranges": markdown_table(_ranges(reports), rows=50),
                "totals_per_currency": markdown_table(_per_currency(reports), rows=50),
                "preview": markdown_table(preview),
            }
        )

    return [registry_totals]


def markdown_table(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """A markdown table that shows text as it is: money stays "22.00", never 22."""
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, disable_numparse=True))


def _ranges(reports: list[ReplaceReport]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "registry": report.registry,
                "from": report.date_from.isoformat(),
                "to": report.date_to.isoformat(),
                "rows": report.rows,
                "entries": report.entries,
            }
            for report in reports
        ]
    )


def _per_currency(reports: list[ReplaceReport]) -> pd.DataFrame:
    """Debit and credit per registry and currency as exact decimal strings, each entry once."""
    rows = []
    for report in reports:
        for currency in sorted(report.precisions):
            precision = report.precisions[currency]
            rows.append(
                {
                    "registry": report.registry,
                    "currency": currency,
                    "debit": format_minor(report.debit.get(currency, 0), precision),
                    "credit": format_minor(report.credit.get(currency, 0), precision),
                }
            )
    return pd.DataFrame(rows)


def _preview(totals: RegistryTotalsStore, reports: list[ReplaceReport]) -> pd.DataFrame:
    """The first stored rows written, money as decimal strings."""
    rows = []
    for report in reports:
        for row in totals.read(report.registry, report.date_from, report.date_to)[:PREVIEW_ROWS]:
            rows.append(
                {
                    "registry": row.registry,
                    "date": row.date.isoformat(),
                    "currency": row.currency,
                    "group": row.group_values,
                    "entries": row.entries,
                    "debit": format_minor(row.totals["debit"], row.currency_precision),
                    "credit": format_minor(row.totals["credit"], row.currency_precision),
                }
            )
            if len(rows) >= PREVIEW_ROWS:
                return pd.DataFrame(rows)
    return pd.DataFrame(rows)
