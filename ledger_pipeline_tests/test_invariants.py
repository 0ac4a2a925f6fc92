"""The invariants of posting, over generated order histories.

Each test states one invariant of the ledger (balance, one side per entry, FULL cancellation,
deferral, money collected, replay, an independent checker, measures) and checks it after every
event of histories drawn by `ledger_pipeline_tests.strategies`. Expected values are worked out
here from the order's state alone, without posting's own helpers, so that a shared mistake
cannot hide.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from beancount import loader
from beancount.core import data
from hypothesis import assume, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

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
from ledger_pipeline.core.money import format_minor, parse_decimal
from ledger_pipeline.core.posting import LedgerEntry, OrderLedger, post_event
from ledger_pipeline_tests.strategies import (
    CURRENCIES,
    FIRST_SALE,
    OPEN,
    SETTLED,
    order_histories,
    time_zones,
)

# LEDGER_PROPERTY_EXAMPLES=2000 searches deeper than the quick default.
EXAMPLES = int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "100"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None)
# Half of these end with a PARTIAL refund, whose shares and rounding the money checks are about.
HISTORIES_WITH_REFUNDS = st.one_of(order_histories(), order_histories(endings=(Refund.PARTIAL,)))

COLLECTOR_ACCOUNTS = {"cash", "customer_receivable", "reseller_receivable"}
INCOME_ACCOUNTS = {"deferred_revenue", "revenue"}
SETTLED_STATUSES = {LineStatus.REDEEMED, LineStatus.NOSHOW, LineStatus.CANCELLED}

# Measures whose sign follows the entry's side; the adjustments may have either sign.
SIGNED_MEASURES = (
    "quantity",
    "size",
    "revenue_total",
    "discount_total",
    "total",
    "commission_total",
    "wholesale_total",
    "tax_total",
)
ALL_MEASURES = SIGNED_MEASURES + ("adjustment_total", "commission_adjustment_total")
# The measures a line's state fixes after a refund (the others keep the prices sold at).
STATE_MEASURES = ("quantity", "size", "total", "tax_total", "commission_total")

BEANCOUNT_ACCOUNTS = {
    "cash": "Assets:Cash",
    "customer_receivable": "Assets:CustomerReceivable",
    "reseller_receivable": "Assets:ResellerReceivable",
    "deferred_revenue": "Liabilities:DeferredRevenue",
    "revenue": "Income:Revenue",
    "tax": "Liabilities:Tax",
    "commission": "Expenses:Commission",
    "commission_payable": "Liabilities:CommissionPayable",
}
# A tolerance of 0 for every currency: both for amounts without decimals (the default) and for
# amounts with decimals (inferred from their last digit times the multiplier).
BEANCOUNT_HEADER = [
    'option "inferred_tolerance_default" "*:0"',
    'option "tolerance_multiplier" "0"',
    *(f"2000-01-01 open {account}" for account in BEANCOUNT_ACCOUNTS.values()),
]


def post_history(history: list[OrderEvent], timezone: ZoneInfo) -> list[list[LedgerEntry]]:
    """The entries of every event of a history, posted in order from nothing."""
    ledger: OrderLedger | None = None
    posted = []
    for each in history:
        entries, ledger = post_event(ledger, each, timezone=timezone)
        posted.append(entries)
    return posted


def net(entries: list[LedgerEntry], accounts: set[str], line_id: str | None = None) -> int:
    """Debits less credits of the entries on `accounts` (of one line, if given)."""
    return sum(
        entry.debit - entry.credit
        for entry in entries
        if entry.account in accounts and line_id in (None, entry.line_id)
    )


def split_largest_remainder(amount: int, weights: list[int]) -> list[int]:
    """`amount` split in proportion to `weights`: floors first, then one unit each to the
    largest exact remainders, ties to the earlier part. Written apart from posting's own."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    exact = [Fraction(amount * weight, whole) for weight in weights]
    shares = [int(share) for share in exact]
    left_over = amount - sum(shares)
    largest_first = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for index in largest_first[:left_over]:
        shares[index] += 1
    return shares


@dataclass(frozen=True)
class KeptLine:
    """A line an order state keeps, with its total, tax and commission after any refund."""

    item: LineItem
    total: int
    tax: int
    commission: int


def kept_lines(order: Order) -> list[KeptLine]:
    """The lines of an order state that are not cancelled, after a PARTIAL refund is shared."""
    cancellation = order.cancellation
    if cancellation is not None and cancellation.refund == Refund.FULL:
        return []
    kept = [item for item in order.items if item.status != LineStatus.CANCELLED]
    refund = 0
    if cancellation is not None and cancellation.refund == Refund.PARTIAL:
        refund = cancellation.refund_amount or 0

    parts = [part for item in kept for part in (item.total - item.tax, item.tax)]
    shares = split_largest_remainder(refund, parts)
    lines = []
    for index, item in enumerate(kept):
        net_refund, tax_refund = shares[2 * index], shares[2 * index + 1]
        refunded = net_refund + tax_refund
        exact_reduction = Fraction(item.commission * refunded, item.total) if refunded else 0
        if exact_reduction and exact_reduction.denominator == 2 and currently_in_test_context():
            event("commission reduction rounded at a tie")
        # round() of a Fraction rounds half to even.
        reduction = round(exact_reduction)
        lines.append(
            KeptLine(
                item, item.total - refunded, item.tax - tax_refund, item.commission - reduction
            )
        )
    return lines


def expected_collected(order: Order) -> int:
    """Kept totals, less what a collecting reseller keeps, less refunds."""
    reseller_collects = order.reseller is not None and order.reseller.collects_payment
    return sum(
        line.total - (line.commission if reseller_collects else 0) for line in kept_lines(order)
    )


def beancount_ledger(posted: list[list[LedgerEntry]]) -> tuple[str, int]:
    """A beancount file with one transaction per event that has entries, and their count."""
    lines = list(BEANCOUNT_HEADER)
    transactions = 0
    for entries in posted:
        if not entries:
            continue  # beancount needs postings; an event that changed nothing has none
        transactions += 1
        lines.append(f'{entries[0].date.isoformat()} * "{entries[0].event_id}"')
        for entry in entries:
            amount = (
                format_minor(entry.debit, entry.currency_precision)
                if entry.debit
                else "-" + format_minor(entry.credit, entry.currency_precision)
            )
            lines.append(f"  {BEANCOUNT_ACCOUNTS[entry.account]}  {amount} {entry.currency}")
    return "\n".join(lines) + "\n", transactions


def half_refund_history(commission: int) -> list[OrderEvent]:
    """One EUR line of 2.00 sold through a collecting reseller, then half of it refunded: the
    commission falls by commission / 2, a tie for an odd commission (1 -> 0.5, 3 -> 1.5)."""
    line = LineItem(
        id="li-1",
        product="Museum",
        option="Day ticket",
        unit="Adult",
        quantity=1,
        travel_date=dt.date(2024, 11, 20),
        retail=200,
        commission=commission,
    )
    order = Order(
        id="order-1",
        version=1,
        reference="WXDAPPSQ",
        destination="Krno",
        currency="EUR",
        currency_precision=2,
        items=(line,),
        reseller=Reseller(id="r-17", name="City Tours Ltd", collects_payment=True),
    )
    cancelled = replace(order, version=2, cancellation=Cancellation(Refund.PARTIAL, 100))
    return [
        OrderEvent("evt-1", EventType.CONFIRMED, FIRST_SALE, order),
        OrderEvent("evt-2", EventType.CANCELLED, FIRST_SALE + dt.timedelta(days=1), cancelled),
    ]


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_every_event_balances_per_currency(history, timezone):
    for entries in post_history(history, timezone):
        balances: Counter[str] = Counter()
        for entry in entries:
            balances[entry.currency] += entry.debit - entry.credit

        assert {currency: 0 for currency in balances} == dict(balances)


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_every_entry_has_one_non_zero_side_in_whole_minor_units(history, timezone):
    for entries in post_history(history, timezone):
        for entry in entries:
            precision = CURRENCIES[entry.currency]

            assert type(entry.debit) is int and type(entry.credit) is int
            assert entry.debit >= 0 and entry.credit >= 0
            assert (entry.debit == 0) != (entry.credit == 0)
            assert entry.currency_precision == precision
            for amount in (entry.debit, entry.credit):
                text = format_minor(amount, precision)
                assert Decimal(text).as_tuple().exponent == -precision
                assert Decimal(text).scaleb(precision) == amount


@pytest.mark.parametrize("amount", [1.5, Decimal("1.5"), True])
def test_an_amount_that_is_not_whole_minor_units_is_rejected_not_rounded(amount):
    with pytest.raises(TypeError):
        format_minor(amount, 2)


def test_a_decimal_with_more_decimals_than_the_currency_is_rejected_not_rounded():
    with pytest.raises(ValueError, match="more than 2 decimals"):
        parse_decimal("10.005", 2)


@PROPERTY
@given(history=order_histories(endings=(Refund.FULL,)), timezone=time_zones())
def test_full_cancellation_nets_every_account_of_the_order_to_zero(history, timezone):
    balances: Counter[str] = Counter()
    for entries in post_history(history, timezone):
        for entry in entries:
            balances[entry.account] += entry.debit - entry.credit

    assert dict(balances) == {account: 0 for account in balances}


@PROPERTY
@given(
    history=order_histories(endings=(SETTLED, Refund.FULL, Refund.PARTIAL, Refund.NONE)),
    timezone=time_zones(),
)
def test_deferred_revenue_nets_to_zero_once_every_line_is_settled(history, timezone):
    so_far: list[LedgerEntry] = []
    checked = 0
    for each, entries in zip(history, post_history(history, timezone), strict=True):
        so_far.extend(entries)
        order = each.order
        if order.cancellation or all(item.status in SETTLED_STATUSES for item in order.items):
            checked += 1
            assert net(so_far, {"deferred_revenue"}) == 0

    assert checked, "every history drawn here ends settled or cancelled"


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_deferred_revenue_of_a_settled_or_removed_line_nets_to_zero(history, timezone):
    so_far: list[LedgerEntry] = []
    for each, entries in zip(history, post_history(history, timezone), strict=True):
        so_far.extend(entries)
        open_lines = {
            item.id
            for item in each.order.items
            if item.status == LineStatus.CONFIRMED and each.order.cancellation is None
        }

        for line_id in {entry.line_id for entry in so_far} - open_lines:
            assert net(so_far, {"deferred_revenue"}, line_id) == 0, line_id


@PROPERTY
@given(history=HISTORIES_WITH_REFUNDS, timezone=time_zones())
@example(history=half_refund_history(commission=1), timezone=ZoneInfo("UTC"))
@example(history=half_refund_history(commission=3), timezone=ZoneInfo("UTC"))
def test_money_collected_is_kept_totals_less_reseller_commission_and_refunds(history, timezone):
    so_far: list[LedgerEntry] = []
    for each, entries in zip(history, post_history(history, timezone), strict=True):
        so_far.extend(entries)

        assert net(so_far, COLLECTOR_ACCOUNTS) == expected_collected(each.order), each.event_id


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_reposting_a_history_in_any_split_gives_the_same_entries(history, timezone):
    whole = post_history(history, timezone)

    assert post_history(history, timezone) == whole
    for split in range(1, len(history)):
        ledger: OrderLedger | None = None
        for each in history[:split]:
            _, ledger = post_event(ledger, each, timezone=timezone)
        rest = []
        for each in history[split:]:
            entries, ledger = post_event(ledger, each, timezone=timezone)
            rest.append(entries)

        assert rest == whole[split:], f"split before event {split + 1}"


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_entry_ids_are_unique_across_a_history(history, timezone):
    ids = [entry.entry_id for entries in post_history(history, timezone) for entry in entries]

    assert len(ids) == len(set(ids))


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_every_entry_of_a_key_carries_the_code_it_was_first_posted_with(history, timezone):
    # The rules change before every event: a key first posted by event n gets code n.
    ledger: OrderLedger | None = None
    first_code: dict[str, str | None] = {}
    for number, each in enumerate(history, start=1):
        rule = f"rule-{number}"
        entries, ledger = post_event(
            ledger, each, timezone=timezone, code_for=lambda key, attributes, code=rule: code
        )
        for entry in entries:
            first_code.setdefault(entry.key, rule)

            assert entry.ledger_code == first_code[entry.key], entry


@PROPERTY
@given(history=order_histories(endings=(Refund.FULL, Refund.NONE)), timezone=time_zones())
def test_partial_refund_of_everything_posts_like_full_and_of_nothing_like_none(history, timezone):
    cancelled = history[-1]
    refund_amount = (
        cancelled.order.total if cancelled.order.cancellation.refund == Refund.FULL else 0
    )
    partial = replace(
        cancelled,
        order=replace(cancelled.order, cancellation=Cancellation(Refund.PARTIAL, refund_amount)),
    )

    assert post_history([*history[:-1], partial], timezone) == post_history(history, timezone)


@PROPERTY
@given(history=order_histories(endings=(OPEN, SETTLED)), timezone=time_zones())
def test_an_update_that_changes_nothing_posts_nothing(history, timezone):
    last = history[-1]
    same = OrderEvent(
        "evt-same",
        EventType.UPDATED,
        last.occurred_at + dt.timedelta(days=3),
        replace(last.order, version=last.order.version + 1),
    )

    assert post_history([*history, same], timezone)[-1] == []


@settings(max_examples=max(EXAMPLES // 2, 1), deadline=None)
@given(history=order_histories(), timezone=time_zones())
def test_beancount_accepts_every_event_as_one_balanced_transaction(history, timezone):
    text, transactions = beancount_ledger(post_history(history, timezone))

    entries, errors, _ = loader.load_string(text)

    assert [error.message for error in errors] == []
    assert len([entry for entry in entries if isinstance(entry, data.Transaction)]) == transactions


@pytest.mark.parametrize("currency", sorted(CURRENCIES))
@settings(max_examples=max(EXAMPLES // 5, 1), deadline=None)
@given(data=st.data(), timezone=time_zones())
def test_beancount_reports_a_transaction_one_minor_unit_off(currency, data, timezone):
    posted = post_history(data.draw(order_histories(currencies=(currency,))), timezone)
    assume(any(posted))
    index = next(index for index, entries in enumerate(posted) if entries)
    first, *others = posted[index]
    one_unit = format_minor(1, first.currency_precision)
    if first.debit:
        first, residual = replace(first, debit=first.debit + 1), one_unit
    else:
        first, residual = replace(first, credit=first.credit + 1), f"-{one_unit}"
    posted[index] = [first, *others]
    text, _ = beancount_ledger(posted)

    _, errors, _ = loader.load_string(text)

    assert [error.message for error in errors] == [
        f"Transaction does not balance: ({residual} {currency})"
    ]


@PROPERTY
@given(history=HISTORIES_WITH_REFUNDS, timezone=time_zones())
@example(history=half_refund_history(commission=1), timezone=ZoneInfo("UTC"))
@example(history=half_refund_history(commission=3), timezone=ZoneInfo("UTC"))
def test_measures_add_up_to_the_lines_the_order_keeps(history, timezone):
    so_far: list[LedgerEntry] = []
    for each, entries in zip(history, post_history(history, timezone), strict=True):
        so_far.extend(entries)
        summed: dict[str, Counter[str]] = {}
        for entry in so_far:
            measures = summed.setdefault(entry.line_id, Counter())
            for name in STATE_MEASURES:
                measures[name] += getattr(entry, name)
        # posting.py marks a Limitation: a line whose total (after refund) is all tax has no
        # income posting, so no measures. Such lines are left out here; the xfail test
        # test_a_line_whose_total_is_all_tax_keeps_its_measures pins the shortcoming.
        kept = kept_lines(each.order)
        if any(line.total and line.total == line.tax for line in kept):
            event("a line whose total is all tax left out")
        expected = {
            line.item.id: {
                "quantity": line.item.quantity,
                "size": line.item.quantity * line.item.pax_per_unit,
                "total": line.total,
                "tax_total": line.tax,
                "commission_total": line.commission,
            }
            for line in kept
            if line.total - line.tax > 0
        }

        got = {
            line_id: dict(measures)
            for line_id, measures in summed.items()
            if any(measures.values())
        }
        assert got == expected, each.event_id


@PROPERTY
@given(history=order_histories(), timezone=time_zones())
def test_measures_are_positive_on_credits_negative_on_debits_and_only_on_income(history, timezone):
    for entries in post_history(history, timezone):
        for entry in entries:
            if entry.account not in INCOME_ACCOUNTS:
                assert [getattr(entry, name) for name in ALL_MEASURES] == [0] * len(ALL_MEASURES)
            elif entry.credit:
                assert all(getattr(entry, name) >= 0 for name in SIGNED_MEASURES), entry
            else:
                assert all(getattr(entry, name) <= 0 for name in SIGNED_MEASURES), entry


@pytest.mark.xfail(
    strict=True,
    reason="posting drops an income posting of 0 with its measures (marked as a Limitation in "
    "posting.py): a line whose total is all tax is missing from quantity and total sums",
)
def test_a_line_whose_total_is_all_tax_keeps_its_measures():
    line = LineItem(
        id="li-1",
        product="Museum",
        option="Day ticket",
        unit="Adult",
        quantity=2,
        travel_date=dt.date(2024, 11, 20),
        retail=500,
        tax=500,
    )
    order = Order(
        id="order-1",
        version=1,
        reference="WXDAPPSQ",
        destination="Krno",
        currency="EUR",
        currency_precision=2,
        items=(line,),
    )
    [entries] = post_history(
        [OrderEvent("evt-1", EventType.CONFIRMED, FIRST_SALE, order)], ZoneInfo("UTC")
    )

    assert (sum(entry.quantity for entry in entries), sum(entry.total for entry in entries)) == (
        2,
        500,
    )
