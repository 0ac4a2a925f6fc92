"""A registry's daily totals (registry aggregates): computed from the ledger entries, stored per
(registry, accounting date, group), read back, and summed into a `ledger_report`.

The grouping query is built with SQLAlchemy Core from the table's own column objects, chosen by
name from the contract's list (`COLUMNS`, `TOTALS`): a registry's column names never reach SQL as
text. The database sums per date, currency and the registry's group-by columns, a tag column
grouped by its stored list of tags; Python then splits each tag list into one group per tag (and
a null-tag group for entries without tags), as a report does. Sums are of BIGINT minor units in
the database and Python ints here: never a float.

Choices made here, each pinned by a test in `test_registry_totals.py`:

- Every total of `TOTALS` is stored, whichever the registry reports, so only a change of the
  registry's filters or group-by columns needs a backfill.
- `replace` swaps a registry's rows of a range of dates in one transaction (on SQLite
  `BEGIN IMMEDIATE`, on PostgreSQL under an advisory lock per registry), so a reader sees the old
  rows or the new ones, never a mix, and two runs of the same registry never interleave.
- Deleting a registry deletes its rows (a foreign key with ON DELETE CASCADE).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ledger_pipeline.core.money import format_minor
from ledger_pipeline.core.payloads import MONEY_TOTALS, report_columns
from ledger_pipeline.core.posting import COLUMNS, TAG_COLUMNS, TOTALS
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.errors import RegistryError
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.store import _lock
from ledger_pipeline.storage.transactions import StoreTransactions

logger = logging.getLogger(__name__)

# The registry column whose entry field has another name.
_FIELD_OF_COLUMN = {"code": "ledger_code"}
# Columns every row has on its own, outside `group_values`.
_OWN_COLUMNS = ("currency", "date")


@dataclass(frozen=True)
class RegistryTotal:
    """One stored row: a registry's totals of one accounting date, currency and group.

    `group` maps each of the registry's group-by columns but currency to its JSON value (see
    `ledger_pipeline.storage.tables.registry_totals`); `totals` maps every name of `TOTALS` to
    its sum in minor units (counts for quantity and size).
    """

    registry: str
    date: dt.date
    currency: str
    currency_precision: int
    group: dict[str, Any]
    entries: int
    totals: dict[str, int]

    @property
    def group_values(self) -> str:
        """The group as stored: canonical JSON text."""
        return canonical_group(self.group)


@dataclass(frozen=True)
class ReplaceReport:
    """What `replace` wrote for one registry and range of dates.

    `debit` and `credit` are per currency over the registry's entries of the range, each entry
    counted once (rows of a tag column count an entry once per tag, so they are not summed).
    """

    registry: str
    date_from: dt.date
    date_to: dt.date
    rows: int
    entries: int
    debit: dict[str, int]
    credit: dict[str, int]
    precisions: dict[str, int]


def canonical_group(group: dict[str, Any]) -> str:
    """A group's values as canonical JSON: keys sorted, no spaces, text as it is."""
    return json.dumps(group, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class RegistryTotalsStore(StoreTransactions):
    """The registry aggregates of one ledger."""

    records = "registry totals"

    def compute(
        self, registry: Registry, date_from: dt.date, date_to: dt.date
    ) -> list[RegistryTotal]:
        """The registry's totals of the dates from `date_from` to `date_to` (inclusive), from
        the ledger entries as they are now, in the order of `read`."""
        with self._reading() as connection:
            rows, _ = _computed(connection, registry, date_from, date_to)
        return rows

    def report(
        self, registry: Registry, date_from: dt.date, date_to: dt.date
    ) -> list[dict[str, Any]]:
        """The registry's `ledger_report` of the dates from `date_from` to `date_to`
        (inclusive), summed by the database from the ledger entries as they are now, never
        from stored rows that may be older: the rows `ledger_pipeline.core.payloads.
        ledger_report` gives for the same entries, without reading each entry into Python."""
        return report_from_totals(registry, self.compute(registry, date_from, date_to))

    def replace(self, registry: Registry, date_from: dt.date, date_to: dt.date) -> ReplaceReport:
        """Replaces the registry's stored rows of the dates `date_from`..`date_to` (inclusive)
        by its totals computed from the ledger entries now, in one transaction.

        Raises:
            RegistryError: `date_from` is after `date_to`.
        """
        if date_from > date_to:
            raise RegistryError(f"registry totals: {date_from} is after {date_to}")
        table = tables.registry_totals
        with self._writing() as connection:
            _lock(connection, [f"registry_totals:{registry.name}"])
            rows, report = _computed(connection, registry, date_from, date_to)
            connection.execute(
                table.delete()
                .where(table.c.registry == registry.name)
                .where(table.c.date.between(date_from, date_to))
            )
            if rows:
                connection.execute(table.insert(), [_stored_row(row) for row in rows])
        logger.info(
            "registry %s totals %s..%s: %d rows of %d entries",
            registry.name,
            date_from,
            date_to,
            report.rows,
            report.entries,
        )
        return report

    def read(
        self,
        registry_name: str,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> list[RegistryTotal]:
        """The stored rows of a registry, of the dates in the range (inclusive; None: open),
        ordered by date, currency and group values (by column name, none first)."""
        table = tables.registry_totals
        query = sa.select(table).where(table.c.registry == registry_name)
        if date_from is not None:
            query = query.where(table.c.date >= date_from)
        if date_to is not None:
            query = query.where(table.c.date <= date_to)
        with self._reading() as connection:
            rows = [_read_row(row) for row in connection.execute(query)]
        return sorted(rows, key=_row_order)

    def delete(self, registry_name: str) -> int:
        """Deletes every stored row of a registry; returns how many there were."""
        table = tables.registry_totals
        with self._writing() as connection:
            _lock(connection, [f"registry_totals:{registry_name}"])
            deleted = connection.execute(
                table.delete().where(table.c.registry == registry_name)
            ).rowcount
        logger.info("deleted %d totals rows of registry %s", deleted, registry_name)
        return deleted


def report_from_totals(registry: Registry, rows: Iterable[RegistryTotal]) -> list[dict[str, Any]]:
    """The `ledger_report` the stored rows give: each group's totals summed over the dates, in
    the report's shape and row order (see `ledger_pipeline.core.payloads.ledger_report`).

    Raises:
        RegistryError: a row was stored for other group-by columns than the registry has now
            (the registry changed since): backfill its dates first.
    """
    # Limitation: a row does not record the filters it was built with, so rows built before a
    # change of the registry's destinations, entry types or test orders are summed as they are;
    # only rows grouped by other columns are noticed.
    columns = report_columns(registry)
    wanted = set(columns) - {"currency"}
    sums: dict[tuple[Any, ...], list[int]] = {}
    precisions: dict[str, int] = {}
    for row in rows:
        if set(row.group) != wanted:
            raise RegistryError(
                f"registry {registry.name!r}: the totals stored for {row.date} are grouped by "
                f"{', '.join(sorted(row.group)) or 'nothing'}, not by its columns now: "
                f"materialize its aggregates of those dates again"
            )
        values = {**row.group, "currency": row.currency}
        precisions[row.currency] = row.currency_precision
        group = tuple(values[name] for name in columns)
        totals = sums.setdefault(group, [0] * len(registry.totals))
        for index, name in enumerate(registry.totals):
            totals[index] += row.totals[name]

    report = []
    for group in sorted(sums, key=lambda values: tuple(_sortable(value) for value in values)):
        row_out: dict[str, Any] = dict(zip(columns, group, strict=True))
        precision = precisions[row_out["currency"]]
        for name, amount in zip(registry.totals, sums[group], strict=True):
            row_out[name] = format_minor(amount, precision) if name in MONEY_TOTALS else amount
        report.append(row_out)
    return report


def format_totals(amounts: dict[str, int], precisions: dict[str, int]) -> dict[str, str]:
    """Money per currency as decimal strings of the currency's precision."""
    return {
        currency: format_minor(amount, precisions[currency])
        for currency, amount in sorted(amounts.items())
    }


# Computing


def _computed(
    connection: sa.Connection, registry: Registry, date_from: dt.date, date_to: dt.date
) -> tuple[list[RegistryTotal], ReplaceReport]:
    """The registry's rows of the range, and what they hold per currency."""
    grouped = [name for name in registry.group_by if name not in _OWN_COLUMNS]
    sums: dict[tuple[dt.date, str, str], list[int]] = {}
    precisions: dict[str, int] = {}
    entries_per_group: Counter[tuple[dt.date, str, str]] = Counter()
    debit: Counter[str] = Counter()
    credit: Counter[str] = Counter()
    entries = 0

    for row in connection.execute(_grouped_query(registry, grouped, date_from, date_to)):
        values = tuple(row)
        day, currency, precision, count = values[:4]
        group_values = values[4 : 4 + len(grouped)]
        amounts = [int(amount) for amount in values[4 + len(grouped) :]]
        precisions[currency] = int(precision)
        entries += int(count)
        debit[currency] += amounts[TOTALS.index("debit")]
        credit[currency] += amounts[TOTALS.index("credit")]

        for group in _split_tags(grouped, group_values):
            if "date" in registry.group_by:
                group["date"] = day.isoformat()
            key = (day, currency, canonical_group(group))
            totals = sums.setdefault(key, [0] * len(TOTALS))
            for index, amount in enumerate(amounts):
                totals[index] += amount
            entries_per_group[key] += int(count)

    rows = sorted(
        (
            RegistryTotal(
                registry=registry.name,
                date=day,
                currency=currency,
                currency_precision=precisions[currency],
                group=json.loads(group_text),
                entries=entries_per_group[(day, currency, group_text)],
                totals=dict(zip(TOTALS, sums[(day, currency, group_text)], strict=True)),
            )
            for day, currency, group_text in sums
        ),
        key=_row_order,
    )
    report = ReplaceReport(
        registry=registry.name,
        date_from=date_from,
        date_to=date_to,
        rows=len(rows),
        entries=entries,
        debit=dict(debit),
        credit=dict(credit),
        precisions=precisions,
    )
    return rows, report


def _grouped_query(
    registry: Registry, grouped: Sequence[str], date_from: dt.date, date_to: dt.date
) -> sa.Select:
    """The registry's entries of the range summed per date, currency and grouped column (a tag
    column by its stored list), with the registry's filters: built from column objects only."""
    entries = tables.ledger_entries
    keys = [
        entries.c.date,
        entries.c.currency,
        entries.c.currency_precision,
        *(_entry_column(name) for name in grouped),
    ]
    sums = [sa.cast(sa.func.sum(entries.c[_total_name(name)]), sa.BigInteger) for name in TOTALS]
    query = (
        sa.select(*keys[:3], sa.func.count(), *keys[3:], *sums)
        .where(entries.c.date.between(date_from, date_to))
        .group_by(*keys)
    )
    if registry.destinations:
        query = query.where(entries.c.destination.in_(registry.destinations))
    if registry.entry_types:
        query = query.where(entries.c.account.in_(registry.entry_types))
    if not registry.include_test:
        query = query.where(sa.not_(entries.c.test))
    return query


def _entry_column(name: str) -> sa.Column:
    """The ledger_entries column of a registry column, chosen from the allowed list only."""
    if name not in COLUMNS:
        raise RegistryError(f"unknown group-by column {name!r}: choose from {', '.join(COLUMNS)}")
    return tables.ledger_entries.c[_FIELD_OF_COLUMN.get(name, name)]


def _total_name(name: str) -> str:
    if name not in TOTALS:
        raise RegistryError(f"unknown total {name!r}: choose from {', '.join(TOTALS)}")
    return name


def _split_tags(names: Sequence[str], values: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """One group per combination of tags (a null tag for an empty list), the other columns as
    JSON values."""
    choices = []
    for name, value in zip(names, values, strict=True):
        if name in TAG_COLUMNS:
            choices.append(tuple(value) or (None,))
        else:
            choices.append((_json_value(value),))
    for combination in itertools.product(*choices):
        yield dict(zip(names, combination, strict=True))


def _json_value(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# Rows


def _stored_row(row: RegistryTotal) -> dict[str, Any]:
    return {
        "registry": row.registry,
        "date": row.date,
        "currency": row.currency,
        "group_values": row.group_values,
        "currency_precision": row.currency_precision,
        "entries": row.entries,
        **row.totals,
    }


def _read_row(row: sa.Row) -> RegistryTotal:
    return RegistryTotal(
        registry=row.registry,
        date=row.date,
        currency=row.currency,
        currency_precision=row.currency_precision,
        group=json.loads(row.group_values),
        entries=row.entries,
        totals={name: int(getattr(row, name)) for name in TOTALS},
    )


def _row_order(row: RegistryTotal) -> tuple[Any, ...]:
    """Date, currency, then the group's values by column name, none first."""
    group = tuple((name, _sortable(value)) for name, value in sorted(row.group.items()))
    return (row.date, row.currency, group)


def _sortable(value: object) -> tuple[Any, ...]:
    """A sort key that puts None first and never compares None with a value."""
    return (0,) if value is None else (1, value)
