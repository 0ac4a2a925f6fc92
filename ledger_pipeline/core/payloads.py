"""The payloads a registry receives: a `ledger_summary` per order event, a `ledger_report` per
range of dates. Both are built from ledger entries alone, so the same entries always give the
same payloads, byte for byte.

Choices made here where the contract leaves room, each pinned by a test in `test_payloads.py`:

- A summary's entries are grouped by account, ledger code, description, currency and the
  registry's group-by columns. Debit and credit are summed separately, so a group holding a
  reversal and a new posting (a price change) shows both sums, never their difference;
  `quantity` is the group's net units (positive on a credit, negative on a debit).
- A summary's entries are ordered by account (in the order of the chart of accounts), then
  description, then ledger code (none first), then the group-by values.
- A report's rows are grouped by the registry's group-by columns, then `currency` when the
  registry does not group by it itself; rows are ordered by those values, none first.
- A tag column gives one row per tag and a row with a null tag for entries without tags: the
  money of an entry with two tags appears in two rows, so rows of a tag column do not add up to
  the ledger's total.
- Money is a decimal string with exactly the currency's decimals; `quantity` and `size` are
  integers. Sums are of Python ints, never floats.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

import pandas as pd

from ledger_pipeline.core.money import format_minor
from ledger_pipeline.core.posting import ACCOUNTS, MEASURES, TAG_COLUMNS, LedgerEntry
from ledger_pipeline.core.registry import Registry, matches

# Fixed forever: a changed namespace would give every (registry, event) a new key, and
# receivers would take replayed deliveries for new ones.
IDEMPOTENCY_NAMESPACE = uuid.UUID("0b7c6e1e-3c1f-5d5e-9a34-2f6f1d8e4a90")

# The totals that are money (formatted at the currency's precision); the others are counts.
MONEY_TOTALS = ("debit", "credit") + MEASURES[2:]

_ACCOUNT_ORDER = {account: position for position, account in enumerate(ACCOUNTS)}
_ENTRY_FIELDS = tuple(entry_field.name for entry_field in fields(LedgerEntry))
_INT_FIELDS = ("order_version", "debit", "credit", "currency_precision") + MEASURES
_BOOL_FIELDS = ("test", "deferred", "redeemed", "noshow", "upgraded")
_DATE_FIELDS = ("date", "travel_date", "redemption_date")

Entries = Iterable[LedgerEntry] | pd.DataFrame


def idempotency_key(registry_name: str, event_id: str) -> str:
    """The key of a registry's summary of one order event: the same for every retry, replay
    and re-derivation (a UUID 5 of the registry's name and the event's id)."""
    # A registry name holds no '/', so the name cannot run into the event id.
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{registry_name}/{event_id}"))


def ledger_summaries(registry: Registry, entries: Entries) -> list[dict[str, Any]]:
    """The `ledger_summary` of each order event the registry takes entries of, ordered by
    occurred_at, order and version. An event none of whose entries pass the registry's
    filters has no summary.

    Args:
        registry: whose filters and group-by columns apply.
        entries: ledger entries, or a frame of them (`LedgerStore.entries`).
    """
    by_event: dict[str, list[LedgerEntry]] = {}
    for entry in ledger_entries(entries):
        if matches(registry, entry):
            by_event.setdefault(entry.event_id, []).append(entry)

    events = sorted(
        by_event.values(),
        key=lambda group: (
            group[0].occurred_at,
            group[0].order_id,
            group[0].order_version,
            group[0].event_id,
        ),
    )
    return [_summary(registry, event_entries) for event_entries in events]


def ledger_report(registry: Registry, entries: Entries) -> list[dict[str, Any]]:
    """The `ledger_report` of these entries: one row per group of the registry's columns (and
    currency), with the registry's totals. Give the entries of the report's dates.

    Args:
        registry: whose filters, group-by columns and totals apply.
        entries: ledger entries, or a frame of them (`LedgerStore.entries`).
    """
    columns = report_columns(registry)
    sums: dict[tuple[Any, ...], list[int]] = {}
    precisions: dict[str, int] = {}
    for entry in ledger_entries(entries):
        if not matches(registry, entry):
            continue
        precisions[entry.currency] = entry.currency_precision
        amounts = [_total(entry, name) for name in registry.totals]
        for group in itertools.product(*(_report_values(entry, name) for name in columns)):
            totals = sums.setdefault(group, [0] * len(amounts))
            for index, amount in enumerate(amounts):
                totals[index] += amount

    rows = []
    for group in sorted(sums, key=_sort_key):
        row = {name: _json_value(value) for name, value in zip(columns, group, strict=True)}
        precision = precisions[row["currency"]]
        for name, amount in zip(registry.totals, sums[group], strict=True):
            row[name] = format_minor(amount, precision) if name in MONEY_TOTALS else amount
        rows.append(row)
    return rows


def report_csv(header: list[str], rows: list[dict[str, Any]]) -> str:
    """A report as CSV with a header: a null is empty, a flag true or false (as
    `ledger-pipeline report --format csv`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_value(row[name]) for name in header])
    return buffer.getvalue()


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def report_columns(registry: Registry) -> tuple[str, ...]:
    """The columns of a report's groups: the registry's, then currency if it is not one."""
    if "currency" in registry.group_by:
        return registry.group_by
    return registry.group_by + ("currency",)


def ledger_entries(entries: Entries) -> list[LedgerEntry]:
    """Ledger entries as `LedgerEntry` objects, from objects or from a frame of them.

    A frame read from storage holds NumPy integers, pandas timestamps and NaN for nulls; each
    column becomes the Python type of its field, so that money stays an `int`.
    """
    if not isinstance(entries, pd.DataFrame):
        return list(entries)
    columns = [_python_column(entries[name], name) for name in _ENTRY_FIELDS]
    return [_ledger_entry(values) for values in zip(*columns, strict=True)]


# Summaries


def _summary(registry: Registry, entries: Sequence[LedgerEntry]) -> dict[str, Any]:
    first = entries[0]
    groups: dict[tuple[Any, ...], list[LedgerEntry]] = {}
    for entry in entries:
        key = (
            _ACCOUNT_ORDER[entry.account],
            entry.description,
            _sortable(entry.ledger_code),
            entry.currency,
            *(_sortable(entry.column(name)) for name in registry.group_by),
        )
        groups.setdefault(key, []).append(entry)

    return {
        "order_id": first.order_id,
        "idempotency_key": idempotency_key(registry.name, first.event_id),
        "event": first.event_type,
        "order_version": first.order_version,
        "occurred_at": _utc_text(first.occurred_at),
        "ledger_entries": [_summary_entry(registry, groups[key]) for key in sorted(groups)],
    }


def _summary_entry(registry: Registry, group: Sequence[LedgerEntry]) -> dict[str, Any]:
    first = group[0]
    precision = first.currency_precision
    summed = {
        "ledger_code": first.ledger_code,
        "account": first.account,
        "currency": first.currency,
        "quantity": sum(entry.quantity for entry in group),
        "debit": format_minor(sum(entry.debit for entry in group), precision),
        "credit": format_minor(sum(entry.credit for entry in group), precision),
        "description": first.description,
    }
    for name in registry.group_by:
        summed[name] = _json_value(first.column(name))
    return summed


# Reports


def _report_values(entry: LedgerEntry, name: str) -> tuple[Any, ...]:
    """The values an entry takes in a report column: one per tag of a tag column (None for
    no tag), else the one value."""
    value = entry.column(name)
    if name in TAG_COLUMNS:
        return tuple(value) or (None,)
    return (value,)


def _total(entry: LedgerEntry, name: str) -> int:
    return int(getattr(entry, name))


# Values


def _json_value(value: object) -> object:
    """A column's value as JSON: dates as ISO text, tags as a sorted list."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return sorted(value)
    return value


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _sortable(value: object) -> tuple[Any, ...]:
    """A sort key that puts None first and never compares None with a value."""
    return (0,) if value is None else (1, value)


def _sort_key(group: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_sortable(value) for value in group)


def _ledger_entry(values: tuple[Any, ...]) -> LedgerEntry:
    """`LedgerEntry(*values)` for the values of every field in field order, filled at once:
    a frozen dataclass sets its 55 fields one `object.__setattr__` at a time, which costs more
    than reading the row. The entry is the same (fields, equality, hash and repr)."""
    entry = object.__new__(LedgerEntry)
    entry.__dict__.update(zip(_ENTRY_FIELDS, values, strict=True))
    return entry


def _python_column(column: pd.Series, name: str) -> list[Any]:
    """One column of an entry frame as Python values of its field's type, None for a null."""
    if name in _INT_FIELDS:
        return [int(value) for value in column.tolist()]
    if name in _BOOL_FIELDS:
        return [bool(value) for value in column.tolist()]
    if name in TAG_COLUMNS:
        return [tuple(value) for value in column.tolist()]
    if name == "occurred_at":
        return [pd.Timestamp(value).to_pydatetime() for value in column.tolist()]
    nulls = column.isna().tolist()
    values = column.astype(object).tolist()
    if name in _DATE_FIELDS:
        values = [value.date() if isinstance(value, pd.Timestamp) else value for value in values]
    return [None if null else value for value, null in zip(values, nulls, strict=True)]
