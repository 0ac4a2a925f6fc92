"""Registry aggregates in storage: a registry's totals per accounting date and group, computed from
the ledger entries, replaced per (registry, dates), read back and summed into a report.

Every test runs on SQLite and on PostgreSQL (`database_url`). Events are one line of 22.00
(2.00 tax, 2 units, travel date 2024-11-20, sold before it) unless said otherwise, so each posts
Dr cash 22.00, Cr deferred_revenue 20.00 (quantity 2, total 22.00, tax_total 2.00) and
Cr tax 2.00.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import uuid
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger_pipeline.core.events import event_document
from ledger_pipeline.core.payloads import ledger_report
from ledger_pipeline.core.posting import ACCOUNTS, COLUMNS, TOTALS
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.errors import RegistryError
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.registry_totals import RegistryTotalsStore, report_from_totals
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records
from ledger_pipeline_tests.strategies import order_histories

NOV_15 = dt.date(2024, 11, 15)
NOV_16 = dt.date(2024, 11, 16)
NOV_17 = dt.date(2024, 11, 17)


def on(day: int, hour: int = 9) -> str:
    return f"2024-11-{day:02d}T{hour:02d}:00:00+00:00"


def tagged(event: dict, product_tags: list[str]) -> dict:
    event["order"]["items"][0]["product_tags"] = product_tags
    return event


@pytest.fixture
def store(database_url):
    with LedgerStore(database_url, ZoneInfo("UTC")) as opened:
        yield opened


def post(store: LedgerStore, *events: dict) -> None:
    store.land(records(jsonl(*events)))
    store.post()


def registry(store: LedgerStore, name: str = "books", **fields) -> Registry:
    return RegistryStore(store).create(Registry(name=name, url="https://books.example/h", **fields))


def groups(rows) -> list[tuple]:
    """(date, currency, group, entries, debit, credit, quantity, tax_total) of each row."""
    return [
        (
            row.date,
            row.currency,
            row.group,
            row.entries,
            row.totals["debit"],
            row.totals["credit"],
            row.totals["quantity"],
            row.totals["tax_total"],
        )
        for row in rows
    ]


def stored_rows(store: LedgerStore) -> list[tuple]:
    table = tables.registry_totals
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(table).order_by(
                table.c.registry, table.c.date, table.c.currency, table.c.group_values
            )
        )
        return [tuple(row) for row in rows]


def test_totals_are_summed_per_date_and_group_by_column(store):
    post(
        store,
        raw_event("e1", "o1", occurred_at=on(15)),
        raw_event("e2", "o2", occurred_at=on(15, 10), product="Zoo", retail=3000, tax=0),
        raw_event("e3", "o3", occurred_at=on(15, 11)),
        raw_event("e4", "o4", occurred_at=on(16)),
    )
    books = registry(store, group_by=("product",))

    report = RegistryTotalsStore(store).replace(books, NOV_15, NOV_16)
    rows = RegistryTotalsStore(store).read("books")

    assert groups(rows) == [
        # Two Museum orders: Dr cash 44.00; Cr deferred_revenue 40.00 + tax 4.00; 4 units.
        (NOV_15, "EUR", {"product": "Museum"}, 6, 4400, 4400, 4, 400),
        (NOV_15, "EUR", {"product": "Zoo"}, 2, 3000, 3000, 2, 0),
        (NOV_16, "EUR", {"product": "Museum"}, 3, 2200, 2200, 2, 200),
    ]
    assert (report.rows, report.entries) == (3, 11)
    assert (report.debit, report.credit) == ({"EUR": 9600}, {"EUR": 9600})


def test_every_total_is_stored_whichever_the_registry_reports(store):
    post(store, raw_event("e1", "o1", occurred_at=on(15)))
    books = registry(store, totals=("quantity",))

    RegistryTotalsStore(store).replace(books, NOV_15, NOV_15)
    [row] = RegistryTotalsStore(store).read("books")

    assert row.totals == {
        "quantity": 2,
        "size": 2,
        "debit": 2200,
        "credit": 2200,
        "revenue_total": 2200,
        "discount_total": 0,
        "adjustment_total": 0,
        "commission_adjustment_total": 0,
        "total": 2200,
        "commission_total": 0,
        "wholesale_total": 2200,
        "tax_total": 200,
    }


def test_currency_is_always_grouped(store):
    post(
        store,
        raw_event("e1", "o1", occurred_at=on(15)),
        raw_event(
            "e2", "o2", occurred_at=on(15, 10), currency="JPY", currency_precision=0, retail=5000
        ),
    )
    books = registry(store)

    RegistryTotalsStore(store).replace(books, NOV_15, NOV_15)
    rows = RegistryTotalsStore(store).read("books")

    # JPY 5000 with 200 tax: Dr cash 5000, Cr deferred_revenue 4800, Cr tax 200.
    assert groups(rows) == [
        (NOV_15, "EUR", {}, 3, 2200, 2200, 2, 200),
        (NOV_15, "JPY", {}, 3, 5000, 5000, 2, 200),
    ]
    assert [row.currency_precision for row in rows] == [2, 0]


def test_a_tag_column_gives_a_row_per_tag_and_a_null_tag_row(store):
    post(
        store,
        tagged(raw_event("e1", "o1", occurred_at=on(15)), ["outdoor", "family"]),
        tagged(raw_event("e2", "o2", occurred_at=on(15, 10)), ["family"]),
        raw_event("e3", "o3", occurred_at=on(15, 11)),
    )
    books = registry(store, group_by=("product_tags",), entry_types=("cash",))

    report = RegistryTotalsStore(store).replace(books, NOV_15, NOV_15)
    rows = RegistryTotalsStore(store).read("books")

    # Groups are ordered by their values, none first.
    assert groups(rows) == [
        (NOV_15, "EUR", {"product_tags": None}, 1, 2200, 0, 0, 0),
        (NOV_15, "EUR", {"product_tags": "family"}, 2, 4400, 0, 0, 0),
        (NOV_15, "EUR", {"product_tags": "outdoor"}, 1, 2200, 0, 0, 0),
    ]
    # Each entry counted once in what the run reports per currency.
    assert report.debit == {"EUR": 6600}


def test_the_registry_filters_choose_the_entries(store):
    post(
        store,
        raw_event("e1", "o1", occurred_at=on(15)),
        raw_event("e2", "o2", occurred_at=on(15, 10), destination="Brno"),
        raw_event("e3", "o3", occurred_at=on(15, 11), test=True),
    )
    books = registry(store, destinations=("Krno",), entry_types=("cash", "tax"))
    with_tests = registry(store, "with-tests", entry_types=("cash",), include_test=True)

    RegistryTotalsStore(store).replace(books, NOV_15, NOV_15)
    RegistryTotalsStore(store).replace(with_tests, NOV_15, NOV_15)

    # e1 only: Dr cash 22.00, Cr tax 2.00.
    assert groups(RegistryTotalsStore(store).read("books")) == [
        (NOV_15, "EUR", {}, 2, 2200, 200, 0, 0)
    ]
    # Every destination and the test order: three cash debits of 22.00.
    assert groups(RegistryTotalsStore(store).read("with-tests")) == [
        (NOV_15, "EUR", {}, 3, 6600, 0, 0, 0)
    ]


def test_columns_that_are_sql_words_or_renamed_are_grouped(store):
    post(store, raw_event("e1", "o1", occurred_at=on(15)))
    books = registry(
        store, group_by=("order", "code", "date", "test"), entry_types=("deferred_revenue",)
    )

    RegistryTotalsStore(store).replace(books, NOV_15, NOV_15)

    [row] = RegistryTotalsStore(store).read("books")
    assert row.group == {"order": "REF-o1", "code": None, "date": "2024-11-15", "test": False}
    assert row.group_values == '{"code":null,"date":"2024-11-15","order":"REF-o1","test":false}'


def test_replacing_a_range_changes_only_that_registry_and_those_dates(store):
    post(
        store,
        raw_event("e1", "o1", occurred_at=on(15)),
        raw_event("e2", "o2", occurred_at=on(16)),
        raw_event("e3", "o3", occurred_at=on(17)),
    )
    books = registry(store, group_by=("product",))
    other = registry(store, "other", group_by=("product",))
    totals = RegistryTotalsStore(store)
    for each in (books, other):
        totals.replace(each, NOV_15, NOV_17)
    before = stored_rows(store)

    regrouped = RegistryStore(store).update("books", group_by=("order_channel",))
    totals.replace(regrouped, NOV_16, NOV_16)

    after = stored_rows(store)
    assert [row for row in after if row[0] == "other"] == [
        row for row in before if row[0] == "other"
    ]
    assert [(row.date, row.group) for row in totals.read("books")] == [
        (NOV_15, {"product": "Museum"}),
        (NOV_16, {"order_channel": "Terminals"}),
        (NOV_17, {"product": "Museum"}),
    ]


def test_replacing_again_drops_groups_that_are_gone_and_adds_new_entries(store):
    post(store, raw_event("e1", "o1", occurred_at=on(15)))
    books = registry(store, group_by=("product",))
    totals = RegistryTotalsStore(store)
    totals.replace(books, NOV_15, NOV_15)

    # The order's product is renamed: its Museum postings are reversed, Zoo posted.
    post(store, raw_event("e2", "o1", 2, "updated", on(15, 12), product="Zoo"))
    totals.replace(books, NOV_15, NOV_15)

    assert groups(totals.read("books")) == [
        (NOV_15, "EUR", {"product": "Museum"}, 6, 4400, 4400, 0, 0),
        (NOV_15, "EUR", {"product": "Zoo"}, 3, 2200, 2200, 2, 200),
    ]


def test_a_range_without_entries_leaves_no_rows(store):
    post(store, raw_event("e1", "o1", occurred_at=on(15)))
    books = registry(store)

    report = RegistryTotalsStore(store).replace(books, NOV_16, NOV_17)

    assert report.rows == 0
    assert RegistryTotalsStore(store).read("books") == []


def test_deleting_a_registry_deletes_its_rows(store):
    post(store, raw_event("e1", "o1", occurred_at=on(15)))
    totals = RegistryTotalsStore(store)
    totals.replace(registry(store), NOV_15, NOV_15)
    totals.replace(registry(store, "other"), NOV_15, NOV_15)

    RegistryStore(store).delete("books")

    assert totals.read("books") == []
    assert len(totals.read("other")) == 1
    assert totals.delete("other") == 1
    assert stored_rows(store) == []


def test_stored_totals_summed_over_dates_equal_the_report_of_the_range(store):
    post(
        store,
        tagged(raw_event("e1", "o1", occurred_at=on(15)), ["outdoor", "family"]),
        tagged(raw_event("e2", "o2", occurred_at=on(16), product="Zoo"), ["family"]),
        raw_event("e3", "o3", occurred_at=on(16, 10)),
        tagged(
            raw_event("e4", "o1", 2, "updated", on(17), retail=2500, tax=230), ["outdoor", "family"]
        ),
        raw_event("e5", "o4", occurred_at=on(17), currency="JPY", currency_precision=0),
    )
    books = registry(
        store, group_by=("product_tags", "product"), totals=("quantity", "debit", "credit")
    )
    totals = RegistryTotalsStore(store)
    totals.replace(books, NOV_15, NOV_17)

    summed = report_from_totals(books, totals.read("books", NOV_15, NOV_17))

    assert summed == ledger_report(books, store.entries(NOV_15, NOV_17))
    # Written out: o1's 22.00 raised to 25.00 counts under both of its tags.
    assert summed[2] == {
        "product_tags": "family",
        "product": "Museum",
        "currency": "EUR",
        "quantity": 2,
        "debit": "25.00",
        "credit": "25.00",
    }


def test_a_report_of_totals_stored_for_other_columns_says_to_materialize_again(store):
    post(store, raw_event("e1", "o1", occurred_at=on(15)))
    books = registry(store, group_by=("product",))
    totals = RegistryTotalsStore(store)
    totals.replace(books, NOV_15, NOV_15)
    regrouped = RegistryStore(store).update("books", group_by=("order_channel",))

    with pytest.raises(RegistryError, match="grouped by product, not by its columns now"):
        report_from_totals(regrouped, totals.read("books"))


def test_a_range_that_ends_before_it_starts_is_refused(store):
    with pytest.raises(RegistryError, match="2024-11-16 is after 2024-11-15"):
        RegistryTotalsStore(store).replace(registry(store), NOV_16, NOV_15)


# The report the CLI and the API serve: summed by the database


def test_the_report_of_a_range_is_summed_from_the_entries_as_they_are_now(store):
    post(
        store,
        tagged(raw_event("e1", "o1", occurred_at=on(15)), ["outdoor", "family"]),
        raw_event("e2", "o2", occurred_at=on(16), product="Zoo"),
    )
    books = registry(store, group_by=("product_tags",), totals=("debit", "credit"))
    totals = RegistryTotalsStore(store)
    totals.replace(books, NOV_15, NOV_16)
    post(store, raw_event("e3", "o1", 2, "updated", on(16, 10), retail=2500, tax=230))

    # Written out, with e3 posted after the stored rows: o1's 22.00 and e3's reversal of it
    # (22.00 each side) keep o1's tags, 44.00 under each; e3's new 25.00 line has no tags, so
    # the row of no tag holds it with o2's 22.00: 47.00.
    assert totals.report(books, NOV_15, NOV_16) == [
        {"product_tags": None, "currency": "EUR", "debit": "47.00", "credit": "47.00"},
        {"product_tags": "family", "currency": "EUR", "debit": "44.00", "credit": "44.00"},
        {"product_tags": "outdoor", "currency": "EUR", "debit": "44.00", "credit": "44.00"},
    ]
    assert totals.report(books, NOV_15, NOV_15) == [
        {"product_tags": "family", "currency": "EUR", "debit": "22.00", "credit": "22.00"},
        {"product_tags": "outdoor", "currency": "EUR", "debit": "22.00", "credit": "22.00"},
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_databases(request, tmp_path):
    """Makes URLs of new, empty ledgers: once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    return request.getfixturevalue("postgres_schemas")


@st.composite
def landed_histories(draw) -> list[str]:
    """JSON Lines of one to three generated orders, some of them test orders."""
    lines = []
    for number in range(draw(st.integers(1, 3))):
        test = draw(st.booleans())
        for each in draw(order_histories(max_middle_events=3)):
            renamed = dataclasses.replace(
                each,
                event_id=f"{number}-{each.event_id}",
                order=dataclasses.replace(each.order, id=f"order-{number}", test=test),
            )
            lines.append(json.dumps(event_document(renamed)))
    return lines


# LEDGER_PROPERTY_EXAMPLES=2000 searches deeper than the quick default.
@settings(
    max_examples=int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "100")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lines=landed_histories(),
    group_by=st.lists(st.sampled_from(COLUMNS), unique=True, max_size=3).map(tuple),
    entry_types=st.sets(st.sampled_from(tuple(ACCOUNTS)), max_size=3).map(tuple),
    destinations=st.sets(st.sampled_from(("Krno", "Tokyo", "Kuwait City")), max_size=2).map(tuple),
    include_test=st.booleans(),
    data=st.data(),
)
def test_the_report_summed_by_the_database_equals_the_report_of_the_entries(
    fresh_databases, lines, group_by, entry_types, destinations, include_test, data
):
    chosen = Registry(
        name="books",
        url="https://books.example/h",
        group_by=group_by,
        entry_types=entry_types,
        destinations=destinations,
        include_test=include_test,
        totals=TOTALS,
    )
    event(f"group by {', '.join(group_by) or 'nothing'}")
    with LedgerStore(fresh_databases(), ZoneInfo("UTC")) as store:
        post(store, *lines)
        # An order of nothing (no quantity, no money) posts no entries: its report is empty.
        dates = sorted(set(store.entries()["date"])) or [NOV_15]
        first = data.draw(st.sampled_from(dates), label="from")
        last = data.draw(st.sampled_from([day for day in dates if day >= first]), label="to")

        summed = RegistryTotalsStore(store).report(chosen, first, last)
        assert summed == ledger_report(chosen, store.entries(first, last))
