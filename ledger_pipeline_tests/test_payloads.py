"""The payloads a registry receives: ledger summaries per order event and ledger reports.

Amounts are written out by hand from the order's lines; invariant 7 (a report's debit and
credit equal the sums over the summaries of the same registry and dates) is checked over
generated order histories.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from zoneinfo import ZoneInfo

import pandas as pd
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ledger_pipeline.core.model import (
    EventType,
    LineItem,
    Order,
    OrderEvent,
    Reseller,
)
from ledger_pipeline.core.money import format_minor, parse_decimal
from ledger_pipeline.core.payloads import (
    idempotency_key,
    ledger_entries,
    ledger_report,
    ledger_summaries,
)
from ledger_pipeline.core.posting import ACCOUNTS, TAG_COLUMNS, LedgerEntry, post_event
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.schemas import LedgerEntryFrame
from ledger_pipeline_tests.strategies import CURRENCIES, order_histories, time_zones

UTC = ZoneInfo("UTC")
SOLD_AT = dt.datetime(2024, 11, 15, 9, 24, tzinfo=dt.timezone(dt.timedelta(hours=1)))
TRAVEL = dt.date(2024, 11, 20)


def registry(**fields) -> Registry:
    return Registry(**{"name": "books", "url": "https://books.example/hooks", **fields})


def line(line_id: str = "li-1", **fields) -> LineItem:
    values = {
        "product": "Museum",
        "option": "Day ticket",
        "unit": "General Admission",
        "quantity": 2,
        "travel_date": TRAVEL,
        "retail": 2200,
        **fields,
    }
    return LineItem(id=line_id, **values)


def order(*items: LineItem, **fields) -> Order:
    values = {
        "id": "2e7f2d6f-0473-4935-8cfb-c11b2caa6dab",
        "version": 1,
        "reference": "WXDAPPSQ",
        "destination": "Krno",
        "currency": "EUR",
        "currency_precision": 2,
        "channel": "Terminals",
        "source": "terminal",
        **fields,
    }
    return Order(items=items, **values)


def confirmed(placed: Order, event_id: str = "evt_01HV7W3K5Q", at=SOLD_AT) -> OrderEvent:
    return OrderEvent(event_id, EventType.CONFIRMED, at, placed)


def posted(*events: OrderEvent, timezone: ZoneInfo = UTC) -> list[LedgerEntry]:
    """The entries of the events, each order's events posted in the order given."""
    ledgers = {}
    entries = []
    for each in events:
        made, ledgers[each.order.id] = post_event(
            ledgers.get(each.order.id), each, timezone=timezone
        )
        entries.extend(made)
    return entries


def entry(**fields) -> LedgerEntry:
    """A ledger entry of 10.00 EUR on cash, with every other field at a plain value."""
    values = {
        "entry_id": "entry-1",
        "event_id": "evt-1",
        "event_type": "confirmed",
        "order_id": "order-1",
        "order_version": 1,
        "line_id": "li-1",
        "account": "cash",
        "account_type": "asset",
        "debit": 1000,
        "credit": 0,
        "currency": "EUR",
        "currency_precision": 2,
        "ledger_code": None,
        "description": "Cashflow",
        "key": "key-1",
        "date": dt.date(2024, 11, 15),
        "occurred_at": dt.datetime(2024, 11, 15, 8, 24, tzinfo=dt.UTC),
        "destination": "Krno",
        "test": False,
        "deferred": False,
        "redeemed": False,
        "noshow": False,
        "upgraded": False,
        "reseller": None,
        "reseller_band": None,
        "reseller_channel": None,
        "reseller_tags": (),
        "unit": "Adult",
        "option": "Day ticket",
        "product": "Museum",
        "product_tags": (),
        "package_product": None,
        "package_option": None,
        "promotion": None,
        "promotion_tags": (),
        "package_promotion": None,
        "package_promotion_tags": (),
        "ledger_code_account_type": "asset",
        "travel_date": TRAVEL,
        "redemption_date": None,
        "order": "WXDAPPSQ",
        "order_channel": None,
        "order_source": None,
        "sale_type": None,
        **fields,
    }
    return LedgerEntry(**values)


# Idempotency keys


def test_the_idempotency_key_is_fixed_by_registry_and_event():
    assert idempotency_key("books", "evt_01HV7W3K5Q") == "de6752dd-81dc-597f-bda2-b73e193d8400"
    assert idempotency_key("books", "evt_01HV7W3K5Q") == idempotency_key("books", "evt_01HV7W3K5Q")


def test_the_idempotency_key_differs_per_registry_and_per_event():
    keys = {
        idempotency_key("books", "evt-1"),
        idempotency_key("audit", "evt-1"),
        idempotency_key("books", "evt-2"),
    }

    assert len(keys) == 3


# Summaries


def test_the_contract_example_gives_cash_and_one_deferred_entry_per_line():
    entries = posted(
        confirmed(
            order(
                line("li-1", unit="General Admission", quantity=2, retail=2200),
                line("li-2", unit="Child Ticket", quantity=2, retail=1600),
            )
        )
    )

    summaries = ledger_summaries(registry(), entries)

    assert summaries == [
        {
            "order_id": "2e7f2d6f-0473-4935-8cfb-c11b2caa6dab",
            "idempotency_key": idempotency_key("books", "evt_01HV7W3K5Q"),
            "event": "confirmed",
            "order_version": 1,
            "occurred_at": "2024-11-15T08:24:00Z",
            "ledger_entries": [
                {
                    "ledger_code": None,
                    "account": "cash",
                    "currency": "EUR",
                    "quantity": 0,
                    "debit": "38.00",
                    "credit": "0.00",
                    "description": "Cashflow",
                },
                {
                    "ledger_code": None,
                    "account": "deferred_revenue",
                    "currency": "EUR",
                    "quantity": 2,
                    "debit": "0.00",
                    "credit": "16.00",
                    "description": "Museum Child Ticket",
                },
                {
                    "ledger_code": None,
                    "account": "deferred_revenue",
                    "currency": "EUR",
                    "quantity": 2,
                    "debit": "0.00",
                    "credit": "22.00",
                    "description": "Museum General Admission",
                },
            ],
        }
    ]


def test_money_has_exactly_the_decimals_of_its_currency():
    kwd = order(line(retail=12345, tax=1234), currency="KWD", currency_precision=3)
    jpy = order(line(retail=5000), id="order-jpy", currency="JPY", currency_precision=0)
    entries = posted(confirmed(kwd), confirmed(jpy, "evt-jpy"))

    summaries = ledger_summaries(registry(), entries)

    amounts = [
        [(item["account"], item["debit"], item["credit"]) for item in summary["ledger_entries"]]
        for summary in summaries
    ]
    assert amounts == [
        [
            ("cash", "12.345", "0.000"),
            ("deferred_revenue", "0.000", "11.111"),
            ("tax", "0.000", "1.234"),
        ],
        [("cash", "5000", "0"), ("deferred_revenue", "0", "5000")],
    ]


def test_summaries_follow_the_events_in_the_order_they_occurred():
    first = order(line(), id="order-b")
    second = order(line(), id="order-a")
    later = SOLD_AT + dt.timedelta(minutes=5)
    entries = posted(confirmed(first, "evt-late", later), confirmed(second, "evt-early"))

    summaries = ledger_summaries(registry(), entries)

    assert [summary["order_id"] for summary in summaries] == ["order-a", "order-b"]


def test_a_summary_keeps_only_the_entry_types_of_the_registry():
    entries = posted(confirmed(order(line(retail=2200, tax=200))))

    [summary] = ledger_summaries(registry(entry_types=("tax",)), entries)

    assert [(item["account"], item["credit"]) for item in summary["ledger_entries"]] == [
        ("tax", "2.00")
    ]


def test_an_event_without_entries_for_the_registry_has_no_summary():
    entries = posted(confirmed(order(line(), destination="Krno")))

    assert ledger_summaries(registry(destinations=("Tokyo",)), entries) == []


def test_test_orders_are_summarised_only_for_a_registry_that_includes_them():
    entries = posted(confirmed(order(line(), test=True)))

    assert ledger_summaries(registry(), entries) == []
    assert len(ledger_summaries(registry(include_test=True), entries)) == 1


def test_a_reversal_and_a_new_posting_of_one_group_show_both_sums_never_netted():
    # A third ticket at the same price: the old income posting is reversed whole and the new
    # one posted whole; the money collected does not change, so cash has no entry.
    placed = order(line(quantity=2, retail=2200))
    more_units = dataclasses.replace(placed, version=2, items=(line(quantity=3, retail=2200),))
    update = OrderEvent("evt-2", EventType.UPDATED, SOLD_AT + dt.timedelta(hours=1), more_units)
    entries = posted(confirmed(placed), update)

    summaries = ledger_summaries(registry(), entries)

    assert summaries[1]["ledger_entries"] == [
        {
            "ledger_code": None,
            "account": "deferred_revenue",
            "currency": "EUR",
            "quantity": 1,
            "debit": "22.00",
            "credit": "22.00",
            "description": "Museum General Admission",
        }
    ]


def test_group_by_columns_are_added_to_each_entry_as_json_values():
    tagged = line(product_tags=("outdoor", "family"))
    entries = posted(confirmed(order(tagged)))
    chosen = registry(group_by=("product_tags", "date", "deferred"), entry_types=("cash",))

    [summary] = ledger_summaries(chosen, entries)

    assert summary["ledger_entries"] == [
        {
            "ledger_code": None,
            "account": "cash",
            "currency": "EUR",
            "quantity": 0,
            "debit": "22.00",
            "credit": "0.00",
            "description": "Cashflow",
            "product_tags": ["family", "outdoor"],
            "date": "2024-11-15",
            "deferred": False,
        }
    ]


def test_entries_differing_in_a_group_by_column_stay_apart():
    entries = posted(
        confirmed(
            order(line("li-1", travel_date=TRAVEL), line("li-2", travel_date=dt.date(2024, 12, 1)))
        )
    )

    [grouped] = ledger_summaries(registry(entry_types=("cash",)), entries)
    [by_travel_date] = ledger_summaries(
        registry(entry_types=("cash",), group_by=("travel_date",)), entries
    )

    assert [item["debit"] for item in grouped["ledger_entries"]] == ["44.00"]
    assert [(item["travel_date"], item["debit"]) for item in by_travel_date["ledger_entries"]] == [
        ("2024-11-20", "22.00"),
        ("2024-12-01", "22.00"),
    ]


def test_a_frame_of_stored_entries_gives_the_same_summaries_as_the_entries():
    reseller = Reseller("r-17", "City Tours Ltd", "Gold", "OTA", ("online",), True)
    entries = posted(confirmed(order(line(commission=300), reseller=reseller)))
    frame = LedgerEntryFrame.validate(pd.DataFrame([dataclasses.asdict(e) for e in entries]))
    chosen = registry(group_by=("reseller", "reseller_tags", "redemption_date", "sale_type"))

    assert ledger_entries(frame) == entries
    assert ledger_summaries(chosen, frame) == ledger_summaries(chosen, entries)
    assert ledger_report(chosen, frame) == ledger_report(chosen, entries)


# Reports


def test_a_tag_column_gives_one_row_per_tag_and_one_for_no_tag():
    entries = posted(
        confirmed(
            order(
                line("li-1", product_tags=("family", "indoor"), quantity=2, retail=2200, tax=200),
                line("li-2", unit="Child", quantity=1, retail=1600),
            )
        )
    )
    chosen = registry(group_by=("product_tags",), totals=("quantity", "debit", "credit"))

    assert ledger_report(chosen, entries) == [
        {
            "product_tags": None,
            "currency": "EUR",
            "quantity": 1,
            "debit": "16.00",
            "credit": "16.00",
        },
        {
            "product_tags": "family",
            "currency": "EUR",
            "quantity": 2,
            "debit": "22.00",
            "credit": "22.00",
        },
        {
            "product_tags": "indoor",
            "currency": "EUR",
            "quantity": 2,
            "debit": "22.00",
            "credit": "22.00",
        },
    ]


def test_a_report_keeps_currencies_apart_and_formats_each_at_its_precision():
    entries = posted(
        confirmed(order(line(retail=12345, tax=1234), currency="KWD", currency_precision=3)),
        confirmed(order(line(retail=5000), id="order-jpy", currency="JPY", currency_precision=0)),
    )

    assert ledger_report(registry(), entries) == [
        {"currency": "JPY", "debit": "5000", "credit": "5000"},
        {"currency": "KWD", "debit": "12.345", "credit": "12.345"},
    ]


def test_a_report_sums_the_chosen_measures_and_counts():
    entries = posted(
        confirmed(order(line(quantity=2, pax_per_unit=3, retail=2200, discount=200, tax=100)))
    )
    chosen = registry(
        group_by=("deferred",),
        totals=("quantity", "size", "revenue_total", "discount_total", "total", "tax_total"),
    )

    assert ledger_report(chosen, entries) == [
        {
            "deferred": False,
            "currency": "EUR",
            "quantity": 0,
            "size": 0,
            "revenue_total": "0.00",
            "discount_total": "0.00",
            "total": "0.00",
            "tax_total": "0.00",
        },
        {
            "deferred": True,
            "currency": "EUR",
            "quantity": 2,
            "size": 6,
            "revenue_total": "22.00",
            "discount_total": "2.00",
            "total": "20.00",
            "tax_total": "1.00",
        },
    ]


def test_a_report_rows_are_ordered_by_their_group_values_none_first():
    entries = posted(
        confirmed(order(line(), id="order-1", destination="Tokyo")),
        confirmed(order(line(), id="order-2", destination="Krno"), "evt-2"),
    )
    chosen = registry(group_by=("destination", "promotion"))

    rows = ledger_report(chosen, entries)

    assert [(row["destination"], row["promotion"]) for row in rows] == [
        ("Krno", None),
        ("Tokyo", None),
    ]


def test_an_empty_ledger_gives_an_empty_report():
    assert ledger_report(registry(), []) == []


# Invariant 7


GROUPINGS = (
    (),
    ("destination",),
    ("product", "deferred"),
    ("code", "date", "travel_date", "redemption_date"),
    ("product_tags",),
    ("reseller_tags", "promotion_tags"),
    ("order", "product_tags", "redeemed"),
)


@st.composite
def ledgers(draw) -> list[LedgerEntry]:
    """The entries of one to three generated orders, some of them test orders."""
    timezone = draw(time_zones())
    entries = []
    for number in range(draw(st.integers(1, 3))):
        test = draw(st.booleans())
        ledger = None
        for each in draw(order_histories(max_middle_events=4)):
            renamed = dataclasses.replace(
                each,
                event_id=f"{number}-{each.event_id}",
                order=dataclasses.replace(each.order, id=f"order-{number}", test=test),
            )
            made, ledger = post_event(ledger, renamed, timezone=timezone)
            entries.extend(made)
    return entries


# LEDGER_PROPERTY_EXAMPLES=2000 searches deeper than the quick default.
@settings(max_examples=int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "100")), deadline=None)
@given(
    entries=ledgers(),
    group_by=st.sampled_from(GROUPINGS),
    entry_types=st.sets(st.sampled_from(tuple(ACCOUNTS)), max_size=3).map(tuple),
    include_test=st.booleans(),
)
def test_a_reports_debit_and_credit_equal_the_sums_over_the_summaries(
    entries, group_by, entry_types, include_test
):
    chosen = registry(
        group_by=group_by,
        entry_types=entry_types,
        include_test=include_test,
        totals=("debit", "credit"),
    )
    event(f"group by {', '.join(group_by) or 'nothing'}")

    summary_entries = [
        item for summary in ledger_summaries(chosen, entries) for item in summary["ledger_entries"]
    ]
    rows = ledger_report(chosen, entries)

    for row in rows:
        matching = [item for item in summary_entries if _in_row(item, row, group_by)]
        assert (row["debit"], row["credit"]) == _sums(matching, row["currency"]), row
    if not set(group_by) & set(TAG_COLUMNS):
        assert _totals_per_currency(rows) == _totals_per_currency(summary_entries)
    for tag_column in set(group_by) & set(TAG_COLUMNS):
        event("with a tag column")
        tags = {tag for item in summary_entries for tag in item[tag_column]}
        assert {row[tag_column] for row in rows} - {None} == tags


def _in_row(item: dict, row: dict, group_by: tuple[str, ...]) -> bool:
    """Whether a summary entry belongs to a report row: equal columns, and for a tag column
    the row's tag among the entry's tags (or no tags for the row of no tag)."""
    if item["currency"] != row["currency"]:
        return False
    for name in group_by:
        if name in TAG_COLUMNS:
            tags = item[name]
            if (row[name] is None and tags) or (row[name] is not None and row[name] not in tags):
                return False
        elif item[name] != row[name]:
            return False
    return True


def _sums(items: list[dict], currency: str) -> tuple[str, str]:
    precision = CURRENCIES[currency]
    debit = sum(parse_decimal(item["debit"], precision) for item in items)
    credit = sum(parse_decimal(item["credit"], precision) for item in items)
    return format_minor(debit, precision), format_minor(credit, precision)


def _totals_per_currency(items: list[dict]) -> dict[str, tuple[int, int]]:
    totals: dict[str, tuple[int, int]] = {}
    for item in items:
        precision = CURRENCIES[item["currency"]]
        debit, credit = totals.get(item["currency"], (0, 0))
        totals[item["currency"]] = (
            debit + parse_decimal(item["debit"], precision),
            credit + parse_decimal(item["credit"], precision),
        )
    return totals
