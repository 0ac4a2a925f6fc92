"""Daily-partitioned assets: landed order events, the ledger entries posted from them, and the
daily roll-up an accountant reconciles. Each is a thin shell over the storage module."""

import datetime as dt
import time

import dagster as dg
import pandas as pd

from ledger_pipeline.core.money import format_minor
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.schemas import entry_schema_failures

PREVIEW_ROWS = 10
SAMPLE_ROWS = 20

SCHEMA_CHECK = "entries_match_schema"
BALANCE_CHECK = "every_event_balances_per_currency"


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The first and last accounting date of the run's partitions (one run may cover many)."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def markdown_table(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


def money_by_currency(frame: pd.DataFrame) -> pd.DataFrame:
    """Debit and credit per currency as exact decimal strings."""
    if frame.empty:
        return pd.DataFrame(columns=["currency", "debit", "credit", "entries"])
    totals = frame.groupby(["currency", "currency_precision"], as_index=False).agg(
        debit=("debit", "sum"), credit=("credit", "sum"), entries=("entry_id", "count")
    )
    return pd.DataFrame(
        {
            "currency": totals["currency"],
            "debit": [
                format_minor(int(amount), int(precision))
                for amount, precision in zip(
                    totals["debit"], totals["currency_precision"], strict=True
                )
            ],
            "credit": [
                format_minor(int(amount), int(precision))
                for amount, precision in zip(
                    totals["credit"], totals["currency_precision"], strict=True
                )
            ],
            "entries": totals["entries"],
        }
    )


def build_ledger_assets(partitions_def: dg.DailyPartitionsDefinition) -> list:
    """The ledger's assets on the given daily partitions (by accounting date)."""

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ledger",
        kinds={"python"},
    )
    def order_events(
        context: dg.AssetExecutionContext, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        """Order events landed for the partition's accounting dates, checked by their schema."""
        date_from, date_to = partition_dates(context)
        with ledger.open() as store:
            events = store.order_events(date_from, date_to)
            rejected = store.rejected_counts(date_from, date_to)

        per_type = events.groupby("type").size().rename("events").reset_index()
        context.log.info(
            "order events %s..%s: %d landed in %d orders, %s",
            date_from,
            date_to,
            len(events),
            events["order_id"].nunique(),
            ", ".join(f"{outcome} {count}" for outcome, count in rejected.items()) or "none kept",
        )
        return dg.MaterializeResult(
            metadata={
                "events": dg.MetadataValue.int(len(events)),
                "orders": dg.MetadataValue.int(int(events["order_id"].nunique())),
                "stale": dg.MetadataValue.int(rejected.get("stale", 0)),
                "quarantined": dg.MetadataValue.int(rejected.get("quarantined", 0)),
                "events_per_type": markdown_table(per_type),
                "preview": markdown_table(
                    events[["event_id", "type", "order_id", "order_version", "occurred_at"]]
                ),
            }
        )

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[order_events],
        group_name="ledger",
        kinds={"python", "sql"},
        check_specs=[
            dg.AssetCheckSpec(SCHEMA_CHECK, asset="ledger_entries", blocking=True),
            dg.AssetCheckSpec(BALANCE_CHECK, asset="ledger_entries", blocking=True),
        ],
    )
    def ledger_entries(context: dg.AssetExecutionContext, ledger: LedgerResource):
        """Balanced double-entry ledger entries posted from the partition's order events."""
        date_from, date_to = partition_dates(context)
        started = time.monotonic()
        with ledger.open() as store:
            report = store.post(_dates_between(date_from, date_to))
            posting_seconds = time.monotonic() - started
            entries = store.entries(date_from, date_to, validate=False)
            unbalanced = store.query_model(
                "fct_unbalanced_events", date_from=date_from, date_to=date_to
            )

        per_account = entries.groupby("account").size().rename("entries").reset_index()
        context.log.info(
            "ledger entries %s..%s: posted %d events as %d entries in %.1f s; %d entries in range",
            date_from,
            date_to,
            report.events,
            report.entries,
            posting_seconds,
            len(entries),
        )
        yield dg.MaterializeResult(
            metadata={
                "entries": dg.MetadataValue.int(len(entries)),
                "events": dg.MetadataValue.int(int(entries["event_id"].nunique())),
                "posted_events_now": dg.MetadataValue.int(report.events),
                "posted_entries_now": dg.MetadataValue.int(report.entries),
                "posting_seconds": dg.MetadataValue.float(round(posting_seconds, 3)),
                "entries_per_account": markdown_table(per_account, rows=len(per_account)),
                "totals_per_currency": markdown_table(money_by_currency(entries), rows=50),
                "preview": markdown_table(
                    entries[["date", "event_id", "account", "debit", "credit", "description"]]
                ),
            }
        )
        yield _schema_check(entries)
        yield _balance_check(unbalanced)

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[ledger_entries],
        group_name="ledger",
        kinds={"sql"},
    )
    def daily_ledger_totals(
        context: dg.AssetExecutionContext, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        """Debit and credit per accounting date, account and currency (dbt_like_sql model)."""
        date_from, date_to = partition_dates(context)
        with ledger.open() as store:
            rows = store.materialize_model(
                "agg_daily_ledger_totals", date_from=date_from, date_to=date_to
            )
            totals = store.query_model(
                "agg_daily_ledger_totals", date_from=date_from, date_to=date_to
            )
        context.log.info("daily ledger totals %s..%s: %d rows", date_from, date_to, rows)
        return dg.MaterializeResult(
            metadata={"rows": dg.MetadataValue.int(rows), "preview": markdown_table(totals)}
        )

    return [order_events, ledger_entries, daily_ledger_totals]


def _dates_between(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    return [date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)]


def _schema_check(entries: pd.DataFrame) -> dg.AssetCheckResult:
    failures = entry_schema_failures(entries)
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=failures.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failing_rows": dg.MetadataValue.int(
                int(failures["index"].nunique()) if not failures.empty else 0
            ),
            "failures": dg.MetadataValue.int(len(failures)),
            "sample": markdown_table(failures, rows=SAMPLE_ROWS),
        },
    )


def _balance_check(unbalanced: pd.DataFrame) -> dg.AssetCheckResult:
    dates = sorted({str(date) for date in unbalanced["date"]}) if not unbalanced.empty else []
    return dg.AssetCheckResult(
        check_name=BALANCE_CHECK,
        passed=unbalanced.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "unbalanced_events": dg.MetadataValue.int(int(unbalanced["event_id"].nunique())),
            "dates": dg.MetadataValue.text(", ".join(dates[:SAMPLE_ROWS]) or "none"),
            "sample": markdown_table(unbalanced, rows=SAMPLE_ROWS),
        },
    )
