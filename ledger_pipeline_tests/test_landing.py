"""Landing: which imported order events are accepted, duplicates, stale or quarantined."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger_pipeline.core.events import content_hash, parse_event
from ledger_pipeline.core.landing import (
    LandedOrder,
    LandingDecision,
    Outcome,
    decide_landing,
)
from ledger_pipeline.core.model import OrderEvent

ORDER_ID = "2e7f2d6f-0473-4935-8cfb-c11b2caa6dab"


def valid_raw_event() -> dict[str, Any]:
    """A valid confirmed event of version 1; each test changes what it needs."""
    return {
        "event_id": "evt_1",
        "type": "confirmed",
        "occurred_at": "2024-11-15T09:24:00+01:00",
        "order": {
            "id": ORDER_ID,
            "version": 1,
            "reference": "WXDAPPSQ",
            "destination": "Krno",
            "currency": "EUR",
            "currency_precision": 2,
            "items": [
                {
                    "id": "li-1",
                    "product": "Museum",
                    "option": "Day ticket",
                    "unit": "General Admission",
                    "quantity": 2,
                    "travel_date": "2024-11-20",
                    "status": "confirmed",
                    "retail": 2200,
                }
            ],
        },
    }


def event_of(
    *,
    event_id: str = "evt_2",
    type: str = "updated",
    version: int = 2,
    occurred_at: str = "2024-11-16T10:00:00+01:00",
    cancellation: dict[str, Any] | None = None,
) -> OrderEvent:
    raw = valid_raw_event()
    raw.update(event_id=event_id, type=type, occurred_at=occurred_at)
    raw["order"].update(version=version, cancellation=cancellation)
    return parse_event(raw)


def landed(
    highest_version: int = 1,
    last_occurred_at: str = "2024-11-15T09:24:00+01:00",
    cancelled: bool = False,
) -> LandedOrder:
    return LandedOrder(
        highest_version=highest_version,
        last_occurred_at=dt.datetime.fromisoformat(last_occurred_at),
        cancelled=cancelled,
    )


def decide(
    event: OrderEvent,
    *,
    landed_hash_of_same_id: str | None = None,
    landed_order: LandedOrder | None = None,
) -> LandingDecision:
    return decide_landing(
        event,
        content_hash(event),
        landed_hash_of_same_id=landed_hash_of_same_id,
        landed_order=landed_order,
    )


# The same event id


def test_the_same_event_id_with_the_same_content_is_a_duplicate():
    event = event_of()

    decision = decide(event, landed_hash_of_same_id=content_hash(event), landed_order=landed(2))

    assert decision == LandingDecision(
        Outcome.DUPLICATE, "event_id evt_2 already landed with the same content"
    )


def test_the_same_event_id_with_other_content_is_quarantined():
    other_content = content_hash(event_of(version=3))

    decision = decide(event_of(), landed_hash_of_same_id=other_content, landed_order=landed(2))

    assert decision == LandingDecision(
        Outcome.QUARANTINED, "event_id evt_2 already landed with different content"
    )


def test_the_duplicate_check_comes_before_every_other_rule():
    event = event_of()

    decision = decide(
        event,
        landed_hash_of_same_id=content_hash(event),
        landed_order=landed(highest_version=5, cancelled=True),
    )

    assert decision.outcome is Outcome.DUPLICATE


# The first event of an order


def test_a_confirmed_first_event_is_accepted():
    decision = decide(event_of(event_id="evt_1", type="confirmed", version=1))

    assert decision == LandingDecision(Outcome.ACCEPTED, None)


def test_a_first_event_may_have_any_version():
    decision = decide(event_of(type="confirmed", version=4))

    assert decision == LandingDecision(Outcome.ACCEPTED, None)


def test_a_first_event_that_is_not_confirmed_is_quarantined():
    decision = decide(event_of(type="updated"))

    assert decision == LandingDecision(
        Outcome.QUARANTINED,
        f"order {ORDER_ID} has no landed event: its first event must be confirmed, got updated",
    )


# Versions


def test_a_higher_version_is_accepted():
    decision = decide(event_of(version=2), landed_order=landed(highest_version=1))

    assert decision == LandingDecision(Outcome.ACCEPTED, None)


def test_versions_may_skip_numbers():
    decision = decide(event_of(version=7), landed_order=landed(highest_version=1))

    assert decision == LandingDecision(Outcome.ACCEPTED, None)


def test_a_version_equal_to_the_highest_landed_is_stale():
    decision = decide(event_of(version=2), landed_order=landed(highest_version=2))

    assert decision == LandingDecision(
        Outcome.STALE, "order.version 2 is not above the highest landed version 2"
    )


def test_a_version_below_the_highest_landed_is_stale():
    decision = decide(event_of(version=2), landed_order=landed(highest_version=3))

    assert decision == LandingDecision(
        Outcome.STALE, "order.version 2 is not above the highest landed version 3"
    )


def test_an_old_version_arriving_after_a_cancellation_is_stale_not_quarantined():
    decision = decide(event_of(version=2), landed_order=landed(highest_version=3, cancelled=True))

    assert decision.outcome is Outcome.STALE


# Cancellation


def test_an_event_after_a_cancellation_is_quarantined():
    decision = decide(event_of(version=3), landed_order=landed(highest_version=2, cancelled=True))

    assert decision == LandingDecision(
        Outcome.QUARANTINED,
        f"order {ORDER_ID} was cancelled: no event may follow a cancellation",
    )


def test_a_second_cancellation_is_quarantined():
    event = event_of(type="cancelled", version=3, cancellation={"refund": "FULL"})

    decision = decide(event, landed_order=landed(highest_version=2, cancelled=True))

    assert decision.outcome is Outcome.QUARANTINED


def test_a_cancellation_of_a_landed_order_is_accepted():
    event = event_of(type="cancelled", version=2, cancellation={"refund": "NONE"})

    decision = decide(event, landed_order=landed(highest_version=1))

    assert decision == LandingDecision(Outcome.ACCEPTED, None)


# Confirmed again


def test_a_confirmed_event_for_a_landed_order_is_quarantined():
    decision = decide(event_of(type="confirmed", version=2), landed_order=landed(1))

    assert decision == LandingDecision(
        Outcome.QUARANTINED,
        f"order {ORDER_ID} already landed: confirmed may only be its first event",
    )


# Time


def test_an_event_earlier_than_the_highest_landed_version_is_quarantined():
    event = event_of(version=3, occurred_at="2024-11-15T08:00:00+00:00")

    decision = decide(
        event, landed_order=landed(highest_version=2, last_occurred_at="2024-11-15T09:00:00+00:00")
    )

    assert decision == LandingDecision(
        Outcome.QUARANTINED,
        "occurred_at 2024-11-15T08:00:00+00:00 is earlier than 2024-11-15T09:00:00+00:00 "
        "of the highest landed version 2",
    )


def test_an_event_at_the_same_instant_as_the_highest_landed_version_is_accepted():
    event = event_of(version=3, occurred_at="2024-11-15T10:00:00+01:00")

    decision = decide(
        event, landed_order=landed(highest_version=2, last_occurred_at="2024-11-15T09:00:00Z")
    )

    assert decision == LandingDecision(Outcome.ACCEPTED, None)


def test_times_are_compared_as_instants_not_as_local_clocks():
    event = event_of(version=3, occurred_at="2024-11-15T09:30:00+01:00")

    decision = decide(
        event, landed_order=landed(highest_version=2, last_occurred_at="2024-11-15T09:00:00Z")
    )

    assert decision.outcome is Outcome.QUARANTINED
