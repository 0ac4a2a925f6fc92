"""Posting: turns an order's previous and new state into balanced ledger entries.

Every state of an order has *postings*: per line and account, an amount on the account's
normal side (see `postings_of`). An event posts the difference between the postings after it
and the postings before it, keyed by line, account and the columns that describe the order and
the line. Entries are never edited: a changed key is reversed and the new key posted.

Choices this module makes where the contract leaves room, each pinned by a test:

- The line-status columns `redeemed`, `noshow` and `redemption_date` are part of the key of the
  income posting only (deferred_revenue or revenue), where they decide revenue recognition. On
  the other accounts they are carried for grouping, with the line's status after the posting
  event, so a redemption moves income alone: Dr deferred_revenue, Cr revenue.
- The measures (quantity, size, totals) sit on income entries. When an income key's amount and
  measures move in the same direction, one entry posts the difference; when they do not (a
  quantity change at the same price, a price change with fewer units), the old posting is
  reversed whole and the new one posted whole, so that measures keep their sign rule
  (positive on a credit, negative on a debit) and always add up to the order's current state.
- A PARTIAL refund reduces `total`, `tax_total`, `commission_total` and `wholesale_total`;
  `revenue_total`, `discount_total` and `adjustment_total` stay the prices the line was sold at.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from zoneinfo import ZoneInfo

from ledger_pipeline.core.allocation import largest_remainder, scale_half_even
from ledger_pipeline.core.model import LineItem, LineStatus, Order, OrderEvent, Refund
from ledger_pipeline.errors import PostingError

DEBIT = "debit"
CREDIT = "credit"

# account -> (account type, normal side)
ACCOUNTS: dict[str, tuple[str, str]] = {
    "cash": ("asset", DEBIT),
    "customer_receivable": ("asset", DEBIT),
    "reseller_receivable": ("asset", DEBIT),
    "deferred_revenue": ("liability", CREDIT),
    "revenue": ("revenue", CREDIT),
    "tax": ("liability", CREDIT),
    "commission": ("expense", DEBIT),
    "commission_payable": ("liability", CREDIT),
}
INCOME_ACCOUNTS = ("deferred_revenue", "revenue")

DESCRIPTIONS = {
    "cash": "Cashflow",
    "customer_receivable": "Customer receivable",
    "reseller_receivable": "Reseller receivable",
    "tax": "Tax",
    "commission": "Commission",
    "commission_payable": "Commission payable",
}

# The columns a registry can group by, in the contract's order. `code` is the entry's
# `ledger_code` field; every other name is the field of the same name.
COLUMNS = (
    "destination",
    "test",
    "deferred",
    "redeemed",
    "noshow",
    "upgraded",
    "code",
    "reseller",
    "reseller_band",
    "reseller_channel",
    "reseller_tags",
    "unit",
    "option",
    "product",
    "product_tags",
    "package_product",
    "package_option",
    "promotion",
    "promotion_tags",
    "package_promotion",
    "package_promotion_tags",
    "ledger_code_account_type",
    "date",
    "travel_date",
    "redemption_date",
    "order",
    "order_channel",
    "order_source",
    "currency",
    "sale_type",
)
TAG_COLUMNS = ("reseller_tags", "product_tags", "promotion_tags", "package_promotion_tags")
MEASURES = (
    "quantity",
    "size",
    "revenue_total",
    "discount_total",
    "adjustment_total",
    "commission_adjustment_total",
    "total",
    "commission_total",
    "wholesale_total",
    "tax_total",
)
# The totals a registry can sum.
TOTALS = ("quantity", "size", "debit", "credit") + MEASURES[2:]

_STATUS_COLUMNS = ("redeemed", "noshow", "redemption_date")
_ZERO_MEASURES = (0,) * len(MEASURES)
# Adjustments may be negative on a line, so their sign says nothing about the entry's side.
_EITHER_SIGN_MEASURES = ("adjustment_total", "commission_adjustment_total")
_SIGNED_MEASURE_INDEXES = tuple(
    index for index, name in enumerate(MEASURES) if name not in _EITHER_SIGN_MEASURES
)

_ENTRY_NAMESPACE = uuid.UUID("6f1d3a52-5b8e-4c1e-9a57-0c1f4f3b7a10")

CodeLookup = Callable[[str, Mapping[str, object]], str | None]


def no_codes(key: str, attributes: Mapping[str, object]) -> None:
    """A code lookup for a ledger without ledger-code rules."""
    return None


@dataclass(frozen=True)
class LedgerEntry:
    """One journal line: exactly one of `debit` and `credit` is non-zero, in minor units."""

    entry_id: str
    event_id: str
    event_type: str
    order_id: str
    order_version: int
    line_id: str
    account: str
    account_type: str
    debit: int
    credit: int
    currency: str
    currency_precision: int
    ledger_code: str | None
    description: str
    key: str
    date: dt.date
    occurred_at: dt.datetime
    destination: str
    test: bool
    deferred: bool
    redeemed: bool
    noshow: bool
    upgraded: bool
    reseller: str | None
    reseller_band: str | None
    reseller_channel: str | None
    reseller_tags: tuple[str, ...]
    unit: str
    option: str
    product: str
    product_tags: tuple[str, ...]
    package_product: str | None
    package_option: str | None
    promotion: str | None
    promotion_tags: tuple[str, ...]
    package_promotion: str | None
    package_promotion_tags: tuple[str, ...]
    ledger_code_account_type: str
    travel_date: dt.date
    redemption_date: dt.date | None
    order: str
    order_channel: str | None
    order_source: str | None
    sale_type: str | None
    quantity: int = 0
    size: int = 0
    revenue_total: int = 0
    discount_total: int = 0
    adjustment_total: int = 0
    commission_adjustment_total: int = 0
    total: int = 0
    commission_total: int = 0
    wholesale_total: int = 0
    tax_total: int = 0

    def column(self, name: str) -> object:
        """The value of a registry column (`code` is the ledger code)."""
        return self.ledger_code if name == "code" else getattr(self, name)


@dataclass(frozen=True)
class Posting:
    """What one state of an order holds on one account for one line."""

    key: str
    line_id: str
    account: str
    amount: int
    description: str
    columns: Mapping[str, object]
    measures: tuple[int, ...] = _ZERO_MEASURES


@dataclass(frozen=True)
class LineMemory:
    """What posting remembers of a line between events of its order."""

    deferred_at_sale: bool
    status: LineStatus
    status_date: dt.date | None


@dataclass(frozen=True)
class OrderLedger:
    """The posted state of one order after its latest event; carried to the next event."""

    order_id: str
    version: int
    postings: Mapping[str, Posting]
    lines: Mapping[str, LineMemory]
    codes: Mapping[str, str | None] = field(default_factory=dict)


def accounting_date(moment: dt.datetime, timezone: ZoneInfo) -> dt.date:
    """The local date of a moment in the ledger's time zone."""
    return moment.astimezone(timezone).date()


def post_event(
    previous: OrderLedger | None,
    event: OrderEvent,
    *,
    timezone: ZoneInfo,
    code_for: CodeLookup = no_codes,
) -> tuple[list[LedgerEntry], OrderLedger]:
    """Posts one event of an order: the entries it makes and the order's state after it.

    Args:
        previous: the state after the order's previous event, None for its first event.
        event: the event to post; its version must be above the previous one's.
        timezone: the ledger's accounting time zone.
        code_for: gives the ledger code of a posting key that has none yet.
    """
    order = event.order
    if previous is not None:
        if previous.order_id != order.id:
            raise PostingError(f"event {event.event_id} is not of order {previous.order_id}")
        if order.version <= previous.version:
            raise PostingError(
                f"event {event.event_id} has version {order.version}, "
                f"not above the posted version {previous.version}"
            )

    event_date = accounting_date(event.occurred_at, timezone)
    lines = _remember_lines(previous, order, event_date, timezone)
    before = previous.postings if previous else {}
    after = postings_of(order, lines, timezone)

    codes = dict(previous.codes) if previous else {}
    for key in after.keys() - codes.keys():
        codes[key] = code_for(key, _code_attributes(after[key]))

    status_now = _line_status_columns(order, lines)
    entries = _difference(before, after, codes, status_now, event, event_date)
    ledger = OrderLedger(order.id, order.version, after, lines, codes)
    return entries, ledger


def _remember_lines(
    previous: OrderLedger | None, order: Order, event_date: dt.date, timezone: ZoneInfo
) -> dict[str, LineMemory]:
    """Deferral is fixed by the event that added a line; a status change dates the line."""
    known = previous.lines if previous else {}
    lines = {}
    for item in order.items:
        memory = known.get(item.id)
        if memory is None:
            memory = LineMemory(item.travel_date > event_date, LineStatus.CONFIRMED, None)
        if item.status != memory.status:
            status_date = event_date if item.status in _RECOGNISED_STATUSES else None
            if item.status == LineStatus.REDEEMED and item.redeemed_at is not None:
                status_date = accounting_date(item.redeemed_at, timezone)
            memory = replace(memory, status=item.status, status_date=status_date)
        lines[item.id] = memory
    return lines


_RECOGNISED_STATUSES = (LineStatus.REDEEMED, LineStatus.NOSHOW)


def postings_of(
    order: Order, lines: Mapping[str, LineMemory], timezone: ZoneInfo
) -> dict[str, Posting]:
    """The postings of one state of an order, keyed by posting key."""
    cancellation = order.cancellation
    if cancellation is not None and cancellation.refund == Refund.FULL:
        return {}

    kept = [item for item in order.items if item.status != LineStatus.CANCELLED]
    refunds = _refund_shares(order, kept)
    postings: dict[str, Posting] = {}
    for item in kept:
        refund_net, refund_tax = refunds.get(item.id, (0, 0))
        for posting in _line_postings(order, item, lines[item.id], refund_net, refund_tax):
            postings[posting.key] = posting
    return postings


def _refund_shares(order: Order, kept: list[LineItem]) -> dict[str, tuple[int, int]]:
    """A PARTIAL refund split over every kept line's net (t - x) and tax (x) parts."""
    cancellation = order.cancellation
    if cancellation is None or cancellation.refund != Refund.PARTIAL:
        return {}
    refund = cancellation.refund_amount or 0
    parts = [amount for item in kept for amount in (item.total - item.tax, item.tax)]
    if refund > sum(parts):
        raise PostingError(
            f"order {order.id}: PARTIAL refund {refund} is above the order total {sum(parts)}"
        )
    shares = largest_remainder(refund, parts)
    return {item.id: (shares[2 * i], shares[2 * i + 1]) for i, item in enumerate(kept)}


def _line_postings(
    order: Order, item: LineItem, memory: LineMemory, refund_net: int, refund_tax: int
) -> list[Posting]:
    total = item.total - refund_net - refund_tax
    tax = item.tax - refund_tax
    commission = item.commission
    if refund_net or refund_tax:
        commission -= scale_half_even(item.commission, refund_net + refund_tax, item.total)
    if total == 0:
        return []

    columns = _line_columns(order, item, memory)
    recognised = (
        memory.status in _RECOGNISED_STATUSES
        or order.cancellation is not None
        or not memory.deferred_at_sale
    )
    income_account = "revenue" if recognised else "deferred_revenue"
    reseller_collects = order.reseller is not None and order.reseller.collects_payment
    if reseller_collects:
        collector, collected = "reseller_receivable", total - commission
    else:
        collector, collected = ("cash" if order.paid else "customer_receivable"), total

    measures = (
        item.quantity,
        item.quantity * item.pax_per_unit,
        item.retail,
        item.discount,
        item.adjustment,
        item.commission_adjustment,
        total,
        commission,
        total - commission,
        tax,
    )
    amounts = [
        (income_account, total - tax, measures),
        ("tax", tax, _ZERO_MEASURES),
        (collector, collected, _ZERO_MEASURES),
        ("commission", commission, _ZERO_MEASURES),
    ]
    if not reseller_collects:
        amounts.append(("commission_payable", commission, _ZERO_MEASURES))

    postings = []
    for account, amount, account_measures in amounts:
        # Limitation: an income posting of 0 (a line whose total is all tax) is dropped with
        # its measures, so that line's quantity and totals are missing from reports.
        if amount == 0:
            continue
        account_columns = _account_columns(columns, account)
        description = (
            f"{item.product} {item.unit}" if account in INCOME_ACCOUNTS else DESCRIPTIONS[account]
        )
        key = _posting_key(item.id, account, account_columns)
        postings.append(
            Posting(key, item.id, account, amount, description, account_columns, account_measures)
        )
    return postings


def _line_columns(order: Order, item: LineItem, memory: LineMemory) -> dict[str, object]:
    reseller = order.reseller
    promotion = order.promotion
    return {
        "destination": order.destination,
        "test": order.test,
        "redeemed": item.status == LineStatus.REDEEMED,
        "noshow": item.status == LineStatus.NOSHOW,
        "upgraded": False,
        "reseller": reseller.name if reseller else None,
        "reseller_band": reseller.band if reseller else None,
        "reseller_channel": reseller.channel if reseller else None,
        "reseller_tags": tuple(sorted(reseller.tags)) if reseller else (),
        "unit": item.unit,
        "option": item.option,
        "product": item.product,
        "product_tags": tuple(sorted(item.product_tags)),
        "package_product": item.package_product,
        "package_option": item.package_option,
        "promotion": promotion.name if promotion else None,
        "promotion_tags": tuple(sorted(promotion.tags)) if promotion else (),
        "package_promotion": None,
        "package_promotion_tags": (),
        "travel_date": item.travel_date,
        "redemption_date": memory.status_date,
        "order": order.reference,
        "order_channel": order.channel,
        "order_source": order.source,
        "currency": order.currency,
        "currency_precision": order.currency_precision,
        "sale_type": item.sale_type,
    }


def _account_columns(columns: Mapping[str, object], account: str) -> dict[str, object]:
    account_type, _ = ACCOUNTS[account]
    return {
        **columns,
        "deferred": account == "deferred_revenue",
        "ledger_code_account_type": account_type,
    }


def _posting_key(line_id: str, account: str, columns: Mapping[str, object]) -> str:
    """A stable hash of line, account and the key columns of that account."""
    names = _key_names(tuple(columns), account in INCOME_ACCOUNTS)
    keyed = {name: columns[name] for name in names}
    text = _KEY_ENCODER.encode([line_id, account, keyed])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=64)
def _key_names(names: tuple[str, ...], income: bool) -> tuple[str, ...]:
    """The key columns among an account's columns, sorted: every posting has the same columns,
    so they are sorted once, not by the encoder on each posting."""
    return tuple(sorted(name for name in names if income or name not in _STATUS_COLUMNS))


# `json.dumps(value, sort_keys=True, default=str)` for a value whose dicts have sorted keys
# already and hold no reference cycle, built once rather than for each call.
_KEY_ENCODER = json.JSONEncoder(default=str, check_circular=False)


def _code_attributes(posting: Posting) -> dict[str, object]:
    account_type, _ = ACCOUNTS[posting.account]
    return {**posting.columns, "account": posting.account, "account_type": account_type}


def _difference(
    before: Mapping[str, Posting],
    after: Mapping[str, Posting],
    codes: Mapping[str, str | None],
    status_now: Mapping[str, Mapping[str, object]],
    event: OrderEvent,
    event_date: dt.date,
) -> list[LedgerEntry]:
    """The entries that take the postings `before` to the postings `after`."""
    entries = []
    occurred_at = event.occurred_at.astimezone(dt.UTC)
    for key in _ordered_keys(before, after):
        old, new = before.get(key), after.get(key)
        for posting, amount, measures, part in _moves(old, new):
            columns = posting.columns
            if posting.account not in INCOME_ACCOUNTS:
                columns = {**columns, **status_now.get(posting.line_id, {})}
            entries.append(
                _entry(
                    posting,
                    amount,
                    measures,
                    part,
                    columns,
                    codes[key],
                    event,
                    event_date,
                    occurred_at,
                )
            )
    return entries


def _line_status_columns(
    order: Order, lines: Mapping[str, LineMemory]
) -> dict[str, dict[str, object]]:
    """Each line's status after an event, as carried by entries outside income."""
    return {
        item.id: {
            "redeemed": item.status == LineStatus.REDEEMED,
            "noshow": item.status == LineStatus.NOSHOW,
            "redemption_date": lines[item.id].status_date,
        }
        for item in order.items
    }


def _ordered_keys(before: Mapping[str, Posting], after: Mapping[str, Posting]) -> list[str]:
    """Reversals first, then what the new state posts, each in the order the state lists."""
    gone_or_changed = [key for key in before if key not in after]
    return gone_or_changed + list(after)


def _moves(old: Posting | None, new: Posting | None):
    """(posting, signed amount, measures, id part) for each entry one key needs."""
    old_amount = old.amount if old else 0
    new_amount = new.amount if new else 0
    old_measures = old.measures if old else _ZERO_MEASURES
    new_measures = new.measures if new else _ZERO_MEASURES
    change = new_amount - old_amount
    measure_changes = tuple(map(operator.sub, new_measures, old_measures))
    posting = new or old

    signed = [measure_changes[index] for index in _SIGNED_MEASURE_INDEXES]

    if change == 0 and not any(measure_changes):
        return []
    if change > 0 and min(signed) >= 0:
        return [(posting, change, measure_changes, "difference")]
    if change < 0 and max(signed) <= 0:
        return [(posting, change, measure_changes, "difference")]
    return [
        (old, -old_amount, tuple(-m for m in old_measures), "reversal"),
        (new, new_amount, new_measures, "posting"),
    ]


def _entry(
    posting: Posting,
    amount: int,
    measures: tuple[int, ...],
    part: str,
    columns: Mapping[str, object],
    ledger_code: str | None,
    event: OrderEvent,
    event_date: dt.date,
    occurred_at: dt.datetime,
) -> LedgerEntry:
    """An entry on the account's normal side for a positive amount, the other for a negative."""
    account_type, normal_side = ACCOUNTS[posting.account]
    on_normal_side = amount > 0
    debit_side = (normal_side == DEBIT) == on_normal_side
    order = event.order
    values = {
        "entry_id": _entry_id(f"{event.event_id}/{posting.key}/{part}"),
        "event_id": event.event_id,
        "event_type": str(event.type),
        "order_id": order.id,
        "order_version": order.version,
        "line_id": posting.line_id,
        "account": posting.account,
        "account_type": account_type,
        "debit": abs(amount) if debit_side else 0,
        "credit": 0 if debit_side else abs(amount),
        "currency": columns["currency"],
        "currency_precision": columns["currency_precision"],
        "ledger_code": ledger_code,
        "description": posting.description,
        "key": posting.key,
        "date": event_date,
        "occurred_at": occurred_at,
    }
    values.update(zip(_ENTRY_COLUMN_FIELDS, _entry_column_values(columns), strict=True))
    values.update(zip(MEASURES, measures, strict=True))
    return _ledger_entry(values)


def _entry_id(name: str) -> str:
    """`str(uuid.uuid5(_ENTRY_NAMESPACE, name))`, without building a `uuid.UUID` on the way."""
    hashed = _ENTRY_NAMESPACE.bytes + name.encode()
    digest = bytearray(hashlib.sha1(hashed, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _ledger_entry(values: dict[str, object]) -> LedgerEntry:
    """`LedgerEntry(**values)` for values of every field, in field order.

    A frozen dataclass's `__init__` sets its fields one `object.__setattr__` at a time, which for
    the 54 fields of an entry costs more than working the entry out; the instance's dict is
    filled at once instead, which gives the same entry (fields, equality, hash and repr).
    """
    if len(values) != len(_ENTRY_FIELDS):
        raise TypeError(f"a ledger entry needs the values of {len(_ENTRY_FIELDS)} fields")
    entry = object.__new__(LedgerEntry)
    entry.__dict__.update(values)
    return entry


_ENTRY_FIELDS = tuple(entry_field.name for entry_field in fields(LedgerEntry))
_ENTRY_COLUMN_FIELDS = _ENTRY_FIELDS[_ENTRY_FIELDS.index("occurred_at") + 1 : -len(MEASURES)]
"""The fields an entry takes from its posting's columns, after the event's own ones."""
_entry_column_values = operator.itemgetter(*_ENTRY_COLUMN_FIELDS)
