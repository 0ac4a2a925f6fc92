"""Landing: whether an imported order event is accepted, a duplicate, stale or quarantined.

The decision is taken once, when the event is imported, from what had already landed then, so
the order in which partitions are processed later changes nothing. It is a pure function: the
caller looks up the facts (the content hash stored for the same event id, and what landed for
the order) and stores the decision.

Checks, in this order; the first that applies decides:

1. Same `event_id` already landed: a duplicate (a no-op) when its content hash is the same,
   quarantined when it differs. An event that was stale or quarantined did not land: imported
   again, it is decided again (the same way while nothing else changed, so importing a batch
   again changes nothing; but a cancellation quarantined because its order had not landed yet
   lands once the order has).
2. First event of the order: accepted when it is `confirmed`, quarantined otherwise (an order
   starts with the version it was confirmed in; an update without it cannot be posted as a
   difference).
3. `order.version` not above the highest landed version: stale, kept for inspection and not
   posted. This comes before the rules below, so a late copy of an old version is stale even
   when the order has been cancelled since or its time is earlier.
4. The order was cancelled by a landed event: quarantined, nothing may follow a cancellation.
5. A `confirmed` event for an order that already landed: quarantined.
6. `occurred_at` earlier than that of the highest landed version: quarantined (the same
   instant is allowed).
7. Otherwise accepted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ledger_pipeline.core.model import EventType, OrderEvent


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    QUARANTINED = "quarantined"


class LandingReason:
    """The wording of every reason `decide_landing` gives, in one place."""

    SAME_CONTENT = "event_id {event_id} already landed with the same content"
    DIFFERENT_CONTENT = "event_id {event_id} already landed with different content"
    FIRST_NOT_CONFIRMED = (
        "order {order_id} has no landed event: its first event must be confirmed, got {type}"
    )
    NOT_ABOVE_HIGHEST = "order.version {version} is not above the highest landed version {highest}"
    AFTER_CANCELLATION = "order {order_id} was cancelled: no event may follow a cancellation"
    CONFIRMED_AGAIN = "order {order_id} already landed: confirmed may only be its first event"
    EARLIER_THAN_LANDED = (
        "occurred_at {occurred_at} is earlier than {last_occurred_at} "
        "of the highest landed version {highest}"
    )


class OrderHead(NamedTuple):
    id: str
    version: int


class EventHead(NamedTuple):
    """The fields of an order event that landing decides on and stores beside its document,
    named as on `OrderEvent`: `decide_landing` takes either."""

    event_id: str
    type: EventType
    occurred_at: dt.datetime
    order: OrderHead

    @classmethod
    def of(cls, event: OrderEvent) -> EventHead:
        order = OrderHead(event.order.id, event.order.version)
        return cls(event.event_id, event.type, event.occurred_at, order)


@dataclass(frozen=True)
class LandedOrder:
    """What had already landed (been accepted) for an order.

    Attributes:
        highest_version: the highest `order.version` accepted.
        last_occurred_at: the `occurred_at` of the event of that version (timezone-aware).
        cancelled: whether an accepted event cancelled the order.
    """

    highest_version: int
    last_occurred_at: dt.datetime
    cancelled: bool


@dataclass(frozen=True)
class LandingDecision:
    """The outcome of landing one event; `reason` is None only when it is accepted."""

    outcome: Outcome
    reason: str | None


def decide_landing(
    event: OrderEvent | EventHead,
    content_hash: str,
    *,
    landed_hash_of_same_id: str | None,
    landed_order: LandedOrder | None,
) -> LandingDecision:
    """Decides whether an order event lands, by the checks listed in this module's docstring.

    Args:
        event: the parsed event, or its `EventHead`.
        content_hash: `ledger_pipeline.core.events.content_hash(event)`.
        landed_hash_of_same_id: the content hash of the landed (accepted) event of
            `event.event_id`; None when no event of that id landed.
        landed_order: what was accepted for `event.order.id` so far; None when nothing was.
    """
    order = event.order

    if landed_hash_of_same_id is not None:
        if landed_hash_of_same_id == content_hash:
            reason = LandingReason.SAME_CONTENT.format(event_id=event.event_id)
            return LandingDecision(Outcome.DUPLICATE, reason)
        reason = LandingReason.DIFFERENT_CONTENT.format(event_id=event.event_id)
        return LandingDecision(Outcome.QUARANTINED, reason)

    if landed_order is None:
        if event.type is not EventType.CONFIRMED:
            reason = LandingReason.FIRST_NOT_CONFIRMED.format(order_id=order.id, type=event.type)
            return LandingDecision(Outcome.QUARANTINED, reason)
        return LandingDecision(Outcome.ACCEPTED, None)

    if order.version <= landed_order.highest_version:
        reason = LandingReason.NOT_ABOVE_HIGHEST.format(
            version=order.version, highest=landed_order.highest_version
        )
        return LandingDecision(Outcome.STALE, reason)

    if landed_order.cancelled:
        reason = LandingReason.AFTER_CANCELLATION.format(order_id=order.id)
        return LandingDecision(Outcome.QUARANTINED, reason)

    if event.type is EventType.CONFIRMED:
        reason = LandingReason.CONFIRMED_AGAIN.format(order_id=order.id)
        return LandingDecision(Outcome.QUARANTINED, reason)

    if event.occurred_at < landed_order.last_occurred_at:
        reason = LandingReason.EARLIER_THAN_LANDED.format(
            occurred_at=event.occurred_at.isoformat(),
            last_occurred_at=landed_order.last_occurred_at.isoformat(),
            highest=landed_order.highest_version,
        )
        return LandingDecision(Outcome.QUARANTINED, reason)

    return LandingDecision(Outcome.ACCEPTED, None)
