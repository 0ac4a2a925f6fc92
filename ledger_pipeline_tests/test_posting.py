"""Posting rules, each with amounts worked out by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from ledger_pipeline.core.model import (
    Cancellation,
    EventType,
    LineItem,
    LineStatus,
    Order,
    OrderEvent,
    Refund,
    Reseller,
)
from ledger_pipeline.core.posting import OrderLedger, post_event

UTC = ZoneInfo("UTC")
SALE_DAY = dt.datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
TRAVEL_DAY = dt.date(2024, 11, 20)
COLLECTING_RESELLER = Reseller(id="r-17", name="City Tours Ltd", collects_payment=True)

# Two EUR lines with tax and commission: t = 20.00, x = 1.82, c = 3.00 and t = 16.00,
# x = 1.45, c = 2.40.
ADULT = LineItem(
    id="li-1",
    product="Museum",
    option="Day ticket",
    unit="Adult",
    quantity=2,
    travel_date=TRAVEL_DAY,
    retail=2200,
    discount=200,
    tax=182,
    commission=300,
)
CHILD = LineItem(
    id="li-2",
    product="Museum",
    option="Day ticket",
    unit="Child",
    quantity=2,
    travel_date=TRAVEL_DAY,
    retail=1600,
    tax=145,
    commission=240,
)
EUR_ORDER = Order(
    id="order-1",
    version=1,
    reference="WXDAPPSQ",
    destination="Krno",
    currency="EUR",
    currency_precision=2,
    items=(ADULT, CHILD),
)


def event(order: Order, event_type: EventType, at: dt.datetime, number: int = 0) -> OrderEvent:
    return OrderEvent(f"evt-{order.id}-{order.version}-{number}", event_type, at, order)


def post_all(events: list[OrderEvent], **options) -> list[list]:
    """Posts a history and returns, per event, its entries as (account, line, debit, credit)."""
    ledger: OrderLedger | None = None
    posted = []
    for each in events:
        entries, ledger = post_event(ledger, each, timezone=options.get("timezone", UTC))
        posted.append(sorted((e.account, e.line_id, e.debit, e.credit) for e in entries))
    return posted


def later(order: Order, **changes) -> Order:
    return replace(order, version=order.version + 1, **changes)


def test_confirmation_before_travel_defers_income_and_supplier_collects():
    [confirmed] = post_all([event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY)])

    assert confirmed == sorted(
        [
            ("deferred_revenue", "li-1", 0, 1818),
            ("tax", "li-1", 0, 182),
            ("cash", "li-1", 2000, 0),
            ("commission", "li-1", 300, 0),
            ("commission_payable", "li-1", 0, 300),
            ("deferred_revenue", "li-2", 0, 1455),
            ("tax", "li-2", 0, 145),
            ("cash", "li-2", 1600, 0),
            ("commission", "li-2", 240, 0),
            ("commission_payable", "li-2", 0, 240),
        ]
    )


def test_worked_example_of_the_contract_reseller_collects_then_redeemed():
    line = LineItem(
        id="li-1",
        product="Museum",
        option="Day ticket",
        unit="General Admission",
        quantity=1,
        travel_date=TRAVEL_DAY,
        retail=10000,
        tax=909,
        commission=1500,
    )
    order = replace(EUR_ORDER, items=(line,), reseller=COLLECTING_RESELLER)
    redeemed_line = replace(
        line,
        status=LineStatus.REDEEMED,
        redeemed_at=dt.datetime(2024, 11, 20, 10, tzinfo=UTC),
    )
    redeemed = later(order, items=(redeemed_line,))

    confirmed, redemption = post_all(
        [
            event(order, EventType.CONFIRMED, SALE_DAY),
            event(redeemed, EventType.REDEEMED, dt.datetime(2024, 11, 20, 10, tzinfo=UTC)),
        ]
    )

    assert confirmed == sorted(
        [
            ("reseller_receivable", "li-1", 8500, 0),
            ("commission", "li-1", 1500, 0),
            ("deferred_revenue", "li-1", 0, 9091),
            ("tax", "li-1", 0, 909),
        ]
    )
    assert redemption == [("deferred_revenue", "li-1", 9091, 0), ("revenue", "li-1", 0, 9091)]


def test_sale_on_the_travel_date_is_revenue_from_the_start_in_jpy_with_reseller_collecting():
    adult = LineItem(
        id="a",
        product="Tower",
        option="Sky deck",
        unit="Adult",
        quantity=3,
        travel_date=dt.date(2024, 11, 15),
        retail=12000,
        tax=1090,
        commission=1800,
    )
    child = replace(adult, id="c", unit="Child", retail=5000, tax=454, commission=750)
    order = Order(
        id="jp-1",
        version=1,
        reference="TOKYO1",
        destination="Tokyo",
        currency="JPY",
        currency_precision=0,
        items=(adult, child),
        reseller=COLLECTING_RESELLER,
    )

    [confirmed] = post_all([event(order, EventType.CONFIRMED, SALE_DAY)])

    assert confirmed == sorted(
        [
            ("revenue", "a", 0, 10910),
            ("tax", "a", 0, 1090),
            ("reseller_receivable", "a", 10200, 0),
            ("commission", "a", 1800, 0),
            ("revenue", "c", 0, 4546),
            ("tax", "c", 0, 454),
            ("reseller_receivable", "c", 4250, 0),
            ("commission", "c", 750, 0),
        ]
    )


def test_unpaid_order_in_kwd_moves_from_customer_receivable_to_cash_when_paid():
    first = LineItem(
        id="k1",
        product="Desert safari",
        option="Evening",
        unit="Adult",
        quantity=1,
        travel_date=TRAVEL_DAY,
        retail=15500,
        tax=738,
    )
    second = replace(first, id="k2", unit="Child", retail=4250, tax=202, commission=425)
    order = Order(
        id="kw-1",
        version=1,
        reference="KUWAIT1",
        destination="Kuwait City",
        currency="KWD",
        currency_precision=3,
        items=(first, second),
        paid=False,
    )

    confirmed, payment = post_all(
        [
            event(order, EventType.CONFIRMED, SALE_DAY),
            event(later(order, paid=True), EventType.UPDATED, SALE_DAY + dt.timedelta(days=1)),
        ]
    )

    assert confirmed == sorted(
        [
            ("customer_receivable", "k1", 15500, 0),
            ("deferred_revenue", "k1", 0, 14762),
            ("tax", "k1", 0, 738),
            ("customer_receivable", "k2", 4250, 0),
            ("deferred_revenue", "k2", 0, 4048),
            ("tax", "k2", 0, 202),
            ("commission", "k2", 425, 0),
            ("commission_payable", "k2", 0, 425),
        ]
    )
    assert payment == sorted(
        [
            ("customer_receivable", "k1", 0, 15500),
            ("cash", "k1", 15500, 0),
            ("customer_receivable", "k2", 0, 4250),
            ("cash", "k2", 4250, 0),
        ]
    )


def test_partial_refund_splits_by_largest_remainder_and_reduces_commission_half_even():
    # Refund 10.01 over the parts [18.18, 1.82, 14.55, 1.45] (sum 36.00): floors
    # [505, 50, 404, 40] leave 2 units, which go to the largest remainders (li-1 tax: 2182/3600,
    # li-2 net: 2055/3600), giving [505, 51, 405, 40]. Commission falls by the line's share:
    # 300 * 556 / 2000 = 83.4 -> 83, and 240 * 445 / 1600 = 66.75 -> 67.
    cancelled = later(EUR_ORDER, cancellation=Cancellation(Refund.PARTIAL, 1001))

    _, cancellation = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(cancelled, EventType.CANCELLED, SALE_DAY + dt.timedelta(days=3)),
        ]
    )

    assert cancellation == sorted(
        [
            ("deferred_revenue", "li-1", 1818, 0),
            ("revenue", "li-1", 0, 1313),
            ("tax", "li-1", 51, 0),
            ("cash", "li-1", 0, 556),
            ("commission", "li-1", 0, 83),
            ("commission_payable", "li-1", 83, 0),
            ("deferred_revenue", "li-2", 1455, 0),
            ("revenue", "li-2", 0, 1050),
            ("tax", "li-2", 40, 0),
            ("cash", "li-2", 0, 445),
            ("commission", "li-2", 0, 67),
            ("commission_payable", "li-2", 67, 0),
        ]
    )


def test_no_refund_cancellation_keeps_every_line_as_revenue():
    cancelled = later(EUR_ORDER, cancellation=Cancellation(Refund.NONE))

    _, cancellation = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(cancelled, EventType.CANCELLED, SALE_DAY + dt.timedelta(days=1)),
        ]
    )

    assert cancellation == sorted(
        [
            ("deferred_revenue", "li-1", 1818, 0),
            ("revenue", "li-1", 0, 1818),
            ("deferred_revenue", "li-2", 1455, 0),
            ("revenue", "li-2", 0, 1455),
        ]
    )


def test_partial_refund_of_zero_posts_like_no_refund():
    none = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(
                later(EUR_ORDER, cancellation=Cancellation(Refund.NONE)),
                EventType.CANCELLED,
                SALE_DAY,
            ),
        ]
    )
    partial_zero = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(
                later(EUR_ORDER, cancellation=Cancellation(Refund.PARTIAL, 0)),
                EventType.CANCELLED,
                SALE_DAY,
            ),
        ]
    )

    assert partial_zero == none


def test_partial_refund_of_the_whole_total_posts_like_full():
    full = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(
                later(EUR_ORDER, cancellation=Cancellation(Refund.FULL)),
                EventType.CANCELLED,
                SALE_DAY,
            ),
        ]
    )
    partial_all = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(
                later(EUR_ORDER, cancellation=Cancellation(Refund.PARTIAL, 3600)),
                EventType.CANCELLED,
                SALE_DAY,
            ),
        ]
    )

    assert partial_all == full
    assert full[1] == sorted(
        (account, line, credit, debit) for account, line, debit, credit in full[0]
    )


def test_full_cancellation_after_a_redemption_nets_every_account_to_zero():
    redeemed = later(
        EUR_ORDER,
        items=(replace(ADULT, status=LineStatus.REDEEMED), CHILD),
    )
    cancelled = later(redeemed, cancellation=Cancellation(Refund.FULL))
    histories = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(redeemed, EventType.REDEEMED, dt.datetime(2024, 11, 20, 9, tzinfo=UTC)),
            event(cancelled, EventType.CANCELLED, dt.datetime(2024, 11, 21, 9, tzinfo=UTC)),
        ]
    )

    balances: dict[str, int] = {}
    for entries in histories:
        for account, _, debit, credit in entries:
            balances[account] = balances.get(account, 0) + debit - credit

    assert balances == {
        "deferred_revenue": 0,
        "revenue": 0,
        "tax": 0,
        "cash": 0,
        "commission": 0,
        "commission_payable": 0,
    }
    assert ("revenue", "li-1", 1818, 0) in histories[2]


def test_noshow_recognises_revenue_dated_by_the_noshow_event():
    noshow = later(EUR_ORDER, items=(replace(ADULT, status=LineStatus.NOSHOW), CHILD))
    ledger = None
    entries, ledger = post_event(
        ledger, event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY), timezone=UTC
    )
    entries, ledger = post_event(
        ledger,
        event(noshow, EventType.NOSHOW, dt.datetime(2024, 11, 21, 18, tzinfo=UTC)),
        timezone=UTC,
    )

    assert [(e.account, e.debit, e.credit, e.noshow, e.redemption_date) for e in entries] == [
        ("deferred_revenue", 1818, 0, False, None),
        ("revenue", 0, 1818, True, dt.date(2024, 11, 21)),
    ]


def test_cancelling_one_line_reverses_only_that_line():
    update = later(EUR_ORDER, items=(ADULT, replace(CHILD, status=LineStatus.CANCELLED)))

    _, cancelled_line = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(update, EventType.UPDATED, SALE_DAY + dt.timedelta(hours=1)),
        ]
    )

    assert cancelled_line == sorted(
        [
            ("deferred_revenue", "li-2", 1455, 0),
            ("tax", "li-2", 145, 0),
            ("cash", "li-2", 0, 1600),
            ("commission", "li-2", 0, 240),
            ("commission_payable", "li-2", 240, 0),
        ]
    )


def test_price_change_posts_the_difference_only():
    dearer = later(EUR_ORDER, items=(replace(ADULT, retail=2500, tax=209), CHILD))

    _, change = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(dearer, EventType.UPDATED, SALE_DAY + dt.timedelta(hours=1)),
        ]
    )

    assert change == sorted(
        [
            ("deferred_revenue", "li-1", 0, 273),
            ("tax", "li-1", 0, 27),
            ("cash", "li-1", 300, 0),
        ]
    )


def test_line_with_a_zero_total_posts_nothing():
    free = replace(CHILD, retail=0, tax=0, commission=0)

    [confirmed] = post_all(
        [event(replace(EUR_ORDER, items=(free,)), EventType.CONFIRMED, SALE_DAY)]
    )

    assert confirmed == []


def test_moving_the_travel_date_never_moves_a_line_between_deferred_and_revenue():
    moved = later(EUR_ORDER, items=(replace(ADULT, travel_date=dt.date(2024, 11, 15)),))
    _, update = post_all(
        [
            event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
            event(moved, EventType.UPDATED, SALE_DAY + dt.timedelta(hours=1)),
        ]
    )

    assert ("deferred_revenue", "li-1", 0, 1818) in update
    assert not [row for row in update if row[0] == "revenue"]


def test_renamed_product_reverses_the_old_key_with_its_code_and_posts_the_new_one():
    codes = {"Museum": "4000", "Museum Pass": "4100"}

    def code_for(key, attributes):
        if attributes["account"] in ("deferred_revenue", "revenue"):
            return codes[attributes["product"]]
        return None

    renamed = later(EUR_ORDER, items=(replace(ADULT, product="Museum Pass"), CHILD))
    ledger = None
    _, ledger = post_event(
        ledger, event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY), timezone=UTC, code_for=code_for
    )
    codes["Museum"] = "4999"  # a rule changed after the first posting: the old code stays
    entries, _ = post_event(
        ledger,
        event(renamed, EventType.UPDATED, SALE_DAY + dt.timedelta(hours=1)),
        timezone=UTC,
        code_for=code_for,
    )

    income = [(e.product, e.debit, e.credit, e.ledger_code) for e in entries if e.line_id == "li-1"]
    assert ("Museum", 1818, 0, "4000") in income
    assert ("Museum Pass", 0, 1818, "4100") in income


def test_quantity_change_at_the_same_price_reverses_and_reposts_income_with_its_measures():
    more = later(EUR_ORDER, items=(replace(ADULT, quantity=3), CHILD))
    ledger = None
    _, ledger = post_event(ledger, event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY), timezone=UTC)
    entries, _ = post_event(ledger, event(more, EventType.UPDATED, SALE_DAY), timezone=UTC)

    assert [(e.account, e.debit, e.credit, e.quantity, e.total) for e in entries] == [
        ("deferred_revenue", 1818, 0, -2, -2000),
        ("deferred_revenue", 0, 1818, 3, 2000),
    ]


def test_measures_sit_on_income_entries_only():
    entries, _ = post_event(None, event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY), timezone=UTC)
    adult_income = next(e for e in entries if e.line_id == "li-1" and e.account.endswith("revenue"))
    others = [e for e in entries if not e.account.endswith("revenue")]

    assert (
        adult_income.quantity,
        adult_income.size,
        adult_income.revenue_total,
        adult_income.discount_total,
        adult_income.total,
        adult_income.commission_total,
        adult_income.wholesale_total,
        adult_income.tax_total,
    ) == (2, 2, 2200, 200, 2000, 300, 1700, 182)
    assert all(e.quantity == 0 and e.total == 0 and e.tax_total == 0 for e in others)


def test_accounting_date_is_local_to_the_ledger_time_zone():
    late_evening_utc = dt.datetime(2024, 11, 15, 20, 0, tzinfo=UTC)
    entries, _ = post_event(
        None,
        event(EUR_ORDER, EventType.CONFIRMED, late_evening_utc),
        timezone=ZoneInfo("Asia/Tokyo"),
    )

    assert {e.date for e in entries} == {dt.date(2024, 11, 16)}
    assert {e.occurred_at for e in entries} == {late_evening_utc}


def test_same_events_give_the_same_entry_ids():
    history = [
        event(EUR_ORDER, EventType.CONFIRMED, SALE_DAY),
        event(later(EUR_ORDER, paid=False), EventType.UPDATED, SALE_DAY),
    ]

    def ids():
        ledger, found = None, []
        for each in history:
            entries, ledger = post_event(ledger, each, timezone=UTC)
            found.extend(e.entry_id for e in entries)
        return found

    first = ids()
    assert first == ids()
    assert len(set(first)) == len(first)


def test_entry_columns_describe_order_line_and_account():
    order = replace(EUR_ORDER, reseller=COLLECTING_RESELLER, channel="Terminals", source="terminal")
    entries, _ = post_event(None, event(order, EventType.CONFIRMED, SALE_DAY), timezone=UTC)
    income = next(e for e in entries if e.line_id == "li-1" and e.account == "deferred_revenue")

    assert (
        income.deferred,
        income.ledger_code_account_type,
        income.description,
        income.order,
        income.order_channel,
        income.order_source,
        income.reseller,
        income.travel_date,
        income.currency,
    ) == (
        True,
        "liability",
        "Museum Adult",
        "WXDAPPSQ",
        "Terminals",
        "terminal",
        "City Tours Ltd",
        TRAVEL_DAY,
        "EUR",
    )


def test_commission_reduction_on_a_refund_tie_is_rounded_half_to_even():
    # Half of a 2.00 line refunded: the commission of 0.03 falls by 0.03 x 1/2 = 0.015, and the
    # reduction (not the commission kept) is rounded half to even: 2 minor units, leaving 0.01.
    line = replace(CHILD, travel_date=SALE_DAY.date(), retail=200, tax=0, commission=3, quantity=1)
    order = replace(EUR_ORDER, items=(line,))
    cancelled = later(order, cancellation=Cancellation(Refund.PARTIAL, 100))

    _, cancellation = post_all(
        [
            event(order, EventType.CONFIRMED, SALE_DAY),
            event(cancelled, EventType.CANCELLED, SALE_DAY),
        ]
    )

    assert cancellation == sorted(
        [
            ("revenue", "li-2", 100, 0),
            ("cash", "li-2", 0, 100),
            ("commission", "li-2", 0, 2),
            ("commission_payable", "li-2", 2, 0),
        ]
    )
