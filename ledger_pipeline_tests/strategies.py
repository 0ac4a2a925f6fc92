"""Hypothesis strategies of valid order histories, for the property tests of posting.

A history is the list of events of one order as landing accepts it: a `confirmed` event first,
versions increasing (they may skip numbers), `occurred_at` never going back, nothing after a
cancellation, and every line within the input rules: retail, discount, tax, commission and
quantity at least 0, a total (`retail - discount + adjustment`) of at least 0 with tax and
commission at most the total, and an adjustment that may be negative.

What a strategy draws is labelled with `hypothesis.event`, so that
`pytest --hypothesis-show-statistics` shows which kinds of histories the examples covered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from hypothesis import event
from hypothesis import strategies as st

from ledger_pipeline.core.model import (
    Cancellation,
    EventType,
    LineItem,
    LineStatus,
    Order,
    OrderEvent,
    Promotion,
    Refund,
    Reseller,
)

CURRENCIES = {"EUR": 2, "JPY": 0, "KWD": 3}
TIME_ZONES = ("UTC", "Asia/Tokyo", "America/Los_Angeles")

# How a history ends: still open, every open line served, or a cancellation of the order.
OPEN = "open"
SETTLED = "settled"
ENDINGS = (OPEN, SETTLED, Refund.FULL, Refund.PARTIAL, Refund.NONE)

FIRST_SALE = dt.datetime(2024, 11, 15, 9, 0, tzinfo=dt.UTC)
PRODUCTS = ("Museum", "Tower", "Harbour cruise", "Desert safari")
OPTIONS = ("Day ticket", "Evening")
UNITS = ("Adult", "Child", "General Admission")

# Small amounts reach the rounding ties of splits; large ones the usual prices.
_AMOUNTS = st.one_of(st.integers(0, 20), st.integers(0, 1_000_000))
# Between two events: often the same moment or minutes, sometimes days.
_PAUSES = st.one_of(
    st.just(dt.timedelta(0)),
    st.integers(1, 600).map(lambda minutes: dt.timedelta(minutes=minutes)),
    st.integers(1, 20).map(lambda days: dt.timedelta(days=days)),
)
_UPDATE_CHANGES = (
    "line added",
    "line removed",
    "line cancelled",
    "price changed",
    "tax changed",
    "commission changed",
    "quantity changed",
    "product renamed",
    "travel date moved",
    "unpaid became paid",
    "reseller switched who collects",
)
_LINE_DESCRIPTIONS = st.fixed_dictionaries(
    {
        "product": st.sampled_from(PRODUCTS),
        "option": st.sampled_from(OPTIONS),
        "unit": st.sampled_from(UNITS),
        "quantity": st.integers(0, 10),
        "pax_per_unit": st.integers(1, 4),
        "days_to_travel": st.integers(-2, 20),
        "product_tags": st.lists(st.sampled_from(("family", "indoor")), unique=True).map(tuple),
        "sale_type": st.sampled_from((None, "individual", "package")),
    }
)
_AMOUNT_CHANGES = ("price changed", "tax changed", "commission changed", "quantity changed")
_SERVED = (LineStatus.REDEEMED, LineStatus.NOSHOW)


def time_zones() -> st.SearchStrategy[ZoneInfo]:
    """The ledger's accounting time zone: UTC, or one far either side of it."""
    return st.sampled_from(TIME_ZONES).map(ZoneInfo)


def _draw_line_amounts(draw: st.DrawFn) -> dict[str, int]:
    """The money fields of one line, within the input rules."""
    retail = draw(_AMOUNTS)
    discount = draw(st.integers(0, retail)) if draw(st.booleans()) else 0
    adjustment = draw(st.integers(discount - retail, 10_000)) if draw(st.booleans()) else 0
    total = retail - discount + adjustment
    tax = draw(st.integers(0, total))
    commission = draw(st.integers(0, total)) if draw(st.booleans()) else 0
    commission_adjustment = draw(st.integers(min(adjustment, 0), max(adjustment, 0)))

    if total == 0:
        event("line with a total of 0")
    elif tax == total:
        event("line whose total is all tax")
    if adjustment < 0:
        event("line with a negative adjustment")
    if commission and commission == total:
        event("line whose total is all commission")
    return {
        "retail": retail,
        "discount": discount,
        "adjustment": adjustment,
        "tax": tax,
        "commission": commission,
        "commission_adjustment": commission_adjustment,
    }


def _draw_line(draw: st.DrawFn, line_id: str, sale_date: dt.date) -> LineItem:
    """A confirmed line sold on `sale_date`, travelling before, on or after that date."""
    described = draw(_LINE_DESCRIPTIONS)
    days_to_travel = described.pop("days_to_travel")
    if days_to_travel <= 0:
        event("line sold on or after its travel date")
    return LineItem(
        id=line_id,
        travel_date=sale_date + dt.timedelta(days=days_to_travel),
        **described,
        **_draw_line_amounts(draw),
    )


def _draw_reseller(draw: st.DrawFn) -> Reseller | None:
    if not draw(st.booleans()):
        event("no reseller")
        return None
    collects_payment = draw(st.booleans())
    event("reseller collects" if collects_payment else "reseller does not collect")
    return Reseller(
        id="r-17",
        name="City Tours Ltd",
        band="Gold",
        channel="OTA",
        tags=("online",),
        collects_payment=collects_payment,
    )


@st.composite
def order_histories(
    draw: st.DrawFn,
    currencies: tuple[str, ...] = tuple(CURRENCIES),
    endings: tuple[object, ...] = ENDINGS,
    max_middle_events: int = 6,
) -> list[OrderEvent]:
    """The events of one order, from its confirmation to how it ends (one of `endings`).

    Between the confirmation and the ending come updates, redemptions and no-shows.
    """
    currency = draw(st.sampled_from(currencies))
    event(f"currency {currency}")
    at = FIRST_SALE + draw(_PAUSES)
    line_count = draw(st.integers(1, 3))
    items = [_draw_line(draw, f"li-{number}", at.date()) for number in range(1, line_count + 1)]
    paid = draw(st.booleans())
    if not paid:
        event("confirmed unpaid")
    reseller = _draw_reseller(draw)
    order = Order(
        id="order-1",
        version=draw(st.integers(1, 3)),
        reference="WXDAPPSQ",
        destination=draw(st.sampled_from(("Krno", "Tokyo", "Kuwait City"))),
        currency=currency,
        currency_precision=CURRENCIES[currency],
        items=tuple(items),
        channel="Terminals",
        source="terminal",
        paid=paid,
        reseller=reseller,
        promotion=draw(st.one_of(st.none(), st.just(Promotion("WINTER10", ("seasonal",))))),
    )
    history = [OrderEvent("evt-1", EventType.CONFIRMED, at, order)]
    next_line = line_count + 1

    for _ in range(draw(st.integers(0, max_middle_events))):
        at = at + draw(_PAUSES)
        kind = draw(st.sampled_from((EventType.UPDATED, EventType.REDEEMED, EventType.NOSHOW)))
        if kind != EventType.UPDATED and not _open_lines(order):
            kind = EventType.UPDATED
        if kind == EventType.UPDATED:
            items, changes = _updated_items(draw, order, at, next_line)
            next_line += changes.count("line added")
            order = _with_changes(order, items, changes)
        else:
            order = _with_served_lines(draw, order, history[0].occurred_at, at, kind)
        history.append(_next_event(draw, history, kind, at, order))

    ending = draw(st.sampled_from(endings))
    if ending == SETTLED and _open_lines(order):
        at = at + draw(_PAUSES)
        order = _with_served_lines(
            draw, order, history[0].occurred_at, at, EventType.REDEEMED, every_line=True
        )
        history.append(_next_event(draw, history, EventType.REDEEMED, at, order))
        event("every line settled")
    elif isinstance(ending, Refund):
        at = at + draw(_PAUSES)
        order = replace(order, cancellation=_cancellation(draw, order, ending))
        history.append(_next_event(draw, history, EventType.CANCELLED, at, order))

    for each in history:
        event(f"event {each.type}")
    event(f"{len(history)} events")
    return history


def _next_event(
    draw: st.DrawFn, history: list[OrderEvent], kind: EventType, at: dt.datetime, order: Order
) -> OrderEvent:
    step = draw(st.integers(1, 3))
    if step > 1:
        event("version numbers skipped")
    version = history[-1].order.version + step
    return OrderEvent(f"evt-{len(history) + 1}", kind, at, replace(order, version=version))


def _open_lines(order: Order) -> list[LineItem]:
    return [item for item in order.items if item.status == LineStatus.CONFIRMED]


def _updated_items(
    draw: st.DrawFn, order: Order, at: dt.datetime, next_line: int
) -> tuple[list[LineItem], list[str]]:
    """One to three changes of an update; the order-level ones are applied by the caller."""
    items = list(order.items)
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        change = draw(st.sampled_from(_applicable_changes(order, items)))
        changes.append(change)
        event(change)

        if change == "line added":
            items.append(_draw_line(draw, f"li-{next_line}", at.date()))
            next_line += 1
            continue
        if change in ("unpaid became paid", "reseller switched who collects"):
            continue

        index = draw(st.sampled_from(_lines_open_to(change, items)))
        if items[index].status in _SERVED:
            event("served line changed")
        if change == "line removed":
            del items[index]
        else:
            items[index] = _changed_line(draw, items[index], change)
    return items, changes


def _applicable_changes(order: Order, items: list[LineItem]) -> list[str]:
    applicable = []
    for change in _UPDATE_CHANGES:
        if change == "unpaid became paid":
            applicable += [change] if not order.paid else []
        elif change == "reseller switched who collects":
            applicable += [change] if order.reseller is not None else []
        elif change == "line added" or _lines_open_to(change, items):
            applicable.append(change)
    return applicable


def _lines_open_to(change: str, items: list[LineItem]) -> list[int]:
    """The indexes of the lines a change can apply to: open lines, and for a new price also
    lines already served; a line can be removed while open or cancelled, if another is left."""
    if change == "line removed":
        statuses = {LineStatus.CONFIRMED, LineStatus.CANCELLED} if len(items) > 1 else set()
    elif change in _AMOUNT_CHANGES:
        statuses = {LineStatus.CONFIRMED, *_SERVED}
    else:
        statuses = {LineStatus.CONFIRMED}
    return [index for index, item in enumerate(items) if item.status in statuses]


def _changed_line(draw: st.DrawFn, item: LineItem, change: str) -> LineItem:
    if change == "line cancelled":
        return replace(item, status=LineStatus.CANCELLED)
    if change == "price changed":
        return replace(item, **_draw_line_amounts(draw))
    if change == "tax changed":
        return replace(item, tax=draw(st.integers(0, item.total)))
    if change == "commission changed":
        return replace(item, commission=draw(st.integers(0, item.total)))
    if change == "quantity changed":
        return replace(item, quantity=draw(st.integers(0, 10)))
    if change == "product renamed":
        others = [product for product in PRODUCTS if product != item.product]
        return replace(item, product=draw(st.sampled_from(others)))
    if change == "travel date moved":
        moved = item.travel_date + dt.timedelta(days=draw(st.integers(-10, 10)))
        return replace(item, travel_date=moved)
    raise AssertionError(f"unknown change {change}")


def _with_changes(order: Order, items: list[LineItem], changes: list[str]) -> Order:
    changed = replace(order, items=tuple(items))
    if "unpaid became paid" in changes:
        changed = replace(changed, paid=True)
    if changes.count("reseller switched who collects") % 2 and order.reseller is not None:
        collects = not order.reseller.collects_payment
        changed = replace(changed, reseller=replace(order.reseller, collects_payment=collects))
    return changed


def _with_served_lines(
    draw: st.DrawFn,
    order: Order,
    sold_at: dt.datetime,
    at: dt.datetime,
    kind: EventType,
    every_line: bool = False,
) -> Order:
    """Some open lines (or every one) redeemed between the sale and `at`, or marked no-show;
    an event that settles every line mixes both."""
    open_ids = [item.id for item in _open_lines(order)]
    if every_line:
        served = open_ids
    else:
        served = draw(st.lists(st.sampled_from(open_ids), min_size=1, unique=True))

    items = []
    for item in order.items:
        if item.id not in served:
            items.append(item)
            continue
        redeemed = kind == EventType.REDEEMED and (not every_line or draw(st.booleans()))
        if redeemed:
            earlier = dt.timedelta(minutes=draw(st.integers(0, 24 * 60)))
            redeemed_at = max(at - earlier, sold_at)
            items.append(replace(item, status=LineStatus.REDEEMED, redeemed_at=redeemed_at))
        else:
            items.append(replace(item, status=LineStatus.NOSHOW))
    return replace(order, items=tuple(items))


def _cancellation(draw: st.DrawFn, order: Order, refund: Refund) -> Cancellation:
    if any(item.status in (LineStatus.REDEEMED, LineStatus.NOSHOW) for item in order.items):
        event(f"cancellation {refund} after a line was served")
    if refund != Refund.PARTIAL:
        event(f"cancellation {refund}")
        return Cancellation(refund)

    # Mostly a refund strictly between the edges, where shares and rounding happen; half the
    # total often makes a commission reduction end in exactly one half (rounded half to even).
    size = draw(st.sampled_from(("nothing", "everything", "half", "some", "some")))
    if size == "nothing" or order.total == 0:
        amount = 0
        event("cancellation PARTIAL of 0")
    elif size == "everything" or order.total == 1:
        amount = order.total
        event("cancellation PARTIAL of the whole total")
    elif size == "half":
        amount = order.total // 2
        event("cancellation PARTIAL of half the total")
    else:
        amount = draw(st.integers(1, order.total - 1))
        event("cancellation PARTIAL between 0 and the total")
    return Cancellation(Refund.PARTIAL, amount)
