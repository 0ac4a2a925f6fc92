"""The OCTO adapter: the example bodies in data/octo, each with its mistakes, and bookings
corrected from them that map field by field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ledger_pipeline.adapters.octo import check_octo_product, octo_booking_events
from ledger_pipeline.core.events import parse_event
from ledger_pipeline.errors import AdapterError

OCTO = Path(__file__).resolve().parents[1] / "data" / "octo"
BOOKING_ID = "bbbb6227-54fc-4c32-9ed7-dc3eb99966ea"
ADULT = "adult_697e3ce8-1860-4cbf-80ad-95857df1f640"
CHILD = "child_797e3ce8-1860-4cbf-80ad-95857df1f640"
INFANT = "infant_897e3ce8-1860-4cbf-80ad-95857df1f640"
RESELLER = {
    "id": "r-17",
    "name": "City Tours Ltd",
    "band": "Gold",
    "channel": "OTA",
    "tags": ["online"],
    "collects_payment": True,
}


def load(name: str) -> dict:
    return json.loads((OCTO / name).read_text())


def price(retail: int, net: int | None, *taxes: int, original: int | None = None) -> dict:
    return {
        "original": retail if original is None else original,
        "retail": retail,
        "net": net,
        "currency": "EUR",
        "currencyPrecision": 2,
        "includedTaxes": [
            {"name": "VAT", "retail": tax, "original": tax, "net": None} for tax in taxes
        ],
    }


def confirmed_booking() -> dict:
    """The CONFIRMED example with its mistakes corrected, and a pricing on every unit item
    (the prices of the per-unit product example, with the adult's net below its retail)."""
    booking = load("post_bookings_uuid_confirm_confirmed_booking_example.json")
    for units in (booking["option"]["units"], booking["product"]["options"][0]["units"]):
        units[1]["id"] = CHILD
    adult, child, infant = booking["unitItems"]
    adult["status"] = "CONFIRMED"
    child["uuid"] = "3b1bc2ee-3155-4738-9471-f49842a07328"
    child["unit"]["id"] = CHILD
    infant["uuid"] = "3b1bc2ee-3155-4738-9471-f49842a07329"
    adult["pricing"] = price(1000, 800, 167)
    child["pricing"] = price(500, 400, 83)
    infant["pricing"] = price(0, 0)
    return booking


def cancelled_booking(refund: str = "FULL") -> dict:
    """The CANCELLED example given the unit items it cancels."""
    booking = load("post_bookings_uuid_cancel_cancelled_booking_example.json")
    booking["unitItems"] = confirmed_booking()["unitItems"]
    booking["option"] = confirmed_booking()["option"]
    booking["cancellation"]["refund"] = refund
    return booking


def reason_of(snapshots, **options) -> str:
    with pytest.raises(AdapterError) as error:
        octo_booking_events(snapshots, destination="London", **options)
    assert error.value.source == f"OCTO booking {BOOKING_ID}"
    return error.value.reason


# The example bodies as they are


def test_on_hold_example_is_not_posted():
    booking = load("post_bookings_on_hold_booking_example.json")
    assert octo_booking_events(booking, destination="London") == []


def test_on_hold_example_with_a_cancellation_is_rejected():
    booking = load("ventrata_get_booking_example.json")
    assert reason_of(booking) == "a booking that is ON_HOLD cannot carry a cancellation"


def test_cancelled_example_without_unit_items_is_rejected():
    reason = reason_of(load("post_bookings_uuid_cancel_cancelled_booking_example.json"))
    assert "a CANCELLED booking has no unitItems: its lines are unknown" in reason


def test_confirmed_example_names_each_of_its_mistakes():
    reason = reason_of(load("post_bookings_uuid_confirm_confirmed_booking_example.json"))
    assert reason.split("; ") == [
        f"unit id {ADULT!r} is repeated in option DEFAULT (Adult, Child)",
        "unit item uuid '3b1bc2ee-3155-4738-9471-f49842a07327' is used by unitItems [0, 1, 2]",
        "unitItems[0] is ON_HOLD in a CONFIRMED booking (expected CONFIRMED, REDEEMED, CANCELLED)",
        "unitItems[0] has no pricing: ask for bookings with the octo/pricing capability",
        f"unitItems[1].unitId {CHILD!r} is not its unit's id {ADULT!r}",
        "unitItems[1] has no pricing: ask for bookings with the octo/pricing capability",
        "unitItems[2] has no pricing: ask for bookings with the octo/pricing capability",
    ]


def test_per_unit_product_example_has_net_above_retail_and_a_repeated_unit_id():
    with pytest.raises(AdapterError) as error:
        check_octo_product(load("get_products_id_product_with_octo_pricng_pricing_per_unit.json"))
    assert error.value.reason.split("; ") == [
        f"unit id {ADULT!r} is repeated in options[0] DEFAULT (Adult, Child)",
        "options[0].units[0].pricingFrom[0] net 8000 is above retail 1000",
        "options[0].units[0].pricingFrom[1] net 8000 is above retail 1000",
    ]


def test_per_booking_product_example_has_a_repeated_unit_id():
    product = load("get_products_id_product_with_octo_pricng_pricing_per_booking.json")
    with pytest.raises(AdapterError) as error:
        check_octo_product(product)
    assert (
        error.value.reason == f"unit id {ADULT!r} is repeated in options[0] DEFAULT (Adult, Child)"
    )


def test_product_with_unique_units_and_net_below_retail_passes():
    product = load("get_products_id_product_with_octo_pricng_pricing_per_unit.json")
    product["options"][0]["units"][1]["id"] = CHILD
    for unit_price in product["options"][0]["units"][0]["pricingFrom"]:
        unit_price["net"] = 800
    check_octo_product(product)


# Corrected bookings, field by field


def test_confirmed_booking_maps_each_unit_item_to_a_line():
    [event] = octo_booking_events(confirmed_booking(), destination="London")
    line = {
        "product": "London Eye General Admission",
        "product_tags": [],
        "option": "DEFAULT",
        "sale_type": None,
        "package_product": None,
        "package_option": None,
        "quantity": 1,
        "pax_per_unit": 1,
        "travel_date": "2022-05-23",
        "status": "confirmed",
        "redeemed_at": None,
        "discount": 0,
        "adjustment": 0,
        "commission": 0,
        "commission_adjustment": 0,
    }
    assert event == {
        "event_id": f"octo-{BOOKING_ID}-1",
        "type": "confirmed",
        "occurred_at": "2022-05-25T11:00:22+00:00",
        "order": {
            "id": BOOKING_ID,
            "version": 1,
            "reference": "XOPSUT",
            "destination": "London",
            "test": False,
            "channel": "OCTO",
            "source": "octo",
            "currency": "EUR",
            "currency_precision": 2,
            "paid": True,
            "reseller": None,
            "promotion": None,
            "cancellation": None,
            "items": [
                {
                    **line,
                    "id": "3b1bc2ee-3155-4738-9471-f49842a07327",
                    "unit": "Adult",
                    "retail": 1000,
                    "tax": 167,
                },
                {
                    **line,
                    "id": "3b1bc2ee-3155-4738-9471-f49842a07328",
                    "unit": "Child",
                    "retail": 500,
                    "tax": 83,
                },
                {
                    **line,
                    "id": "3b1bc2ee-3155-4738-9471-f49842a07329",
                    "unit": "Infant",
                    "retail": 0,
                    "tax": 0,
                },
            ],
        },
    }
    parsed = parse_event(event)
    assert parsed.order.total == 1500


def test_reseller_commission_is_retail_minus_net():
    [event] = octo_booking_events(confirmed_booking(), destination="London", reseller=RESELLER)
    order = event["order"]
    assert order["reseller"] == RESELLER
    assert [line["commission"] for line in order["items"]] == [200, 100, 0]
    assert parse_event(event).order.reseller.collects_payment is True


def test_original_above_retail_is_a_discount():
    booking = confirmed_booking()
    booking["unitItems"][0]["pricing"] = price(900, 700, 150, original=1000)
    [event] = octo_booking_events(booking, destination="London", reseller=RESELLER)
    adult = event["order"]["items"][0]
    assert (adult["retail"], adult["discount"], adult["tax"], adult["commission"]) == (
        1000,
        100,
        150,
        200,
    )
    assert parse_event(event).order.items[0].total == 900


def test_taxes_are_summed():
    booking = confirmed_booking()
    booking["unitItems"][0]["pricing"] = price(1000, 800, 100, 67)
    [event] = octo_booking_events(booking, destination="London")
    assert event["order"]["items"][0]["tax"] == 167


def test_confirmed_then_cancelled_gives_versions_one_and_two():
    events = octo_booking_events([confirmed_booking(), cancelled_booking()], destination="London")
    assert [(e["event_id"], e["type"], e["order"]["version"]) for e in events] == [
        (f"octo-{BOOKING_ID}-1", "confirmed", 1),
        (f"octo-{BOOKING_ID}-2", "cancelled", 2),
    ]
    cancelled = events[1]
    assert cancelled["occurred_at"] == "2022-05-25T11:00:22+00:00"
    assert cancelled["order"]["cancellation"] == {"refund": "FULL", "refund_amount": None}
    assert [line["status"] for line in cancelled["order"]["items"]] == ["confirmed"] * 3
    for event in events:
        parse_event(event)


def test_no_refund_cancellation_keeps_the_lines():
    [_, cancelled] = octo_booking_events(cancelled_booking("NONE"), destination="London")
    assert cancelled["order"]["cancellation"] == {"refund": "NONE", "refund_amount": None}
    assert parse_event(cancelled).order.total == 1500


def test_booking_first_seen_cancelled_is_confirmed_first():
    confirmed, cancelled = octo_booking_events(cancelled_booking(), destination="London")
    assert (confirmed["type"], confirmed["order"]["version"]) == ("confirmed", 1)
    assert confirmed["occurred_at"] == "2022-05-25T11:00:22+00:00"
    assert confirmed["order"]["cancellation"] is None
    assert (cancelled["type"], cancelled["order"]["version"]) == ("cancelled", 2)


def test_booking_cancelled_while_on_hold_is_not_posted():
    booking = cancelled_booking()
    booking["utcConfirmedAt"] = None
    assert octo_booking_events(booking, destination="London") == []


def test_on_hold_snapshot_before_confirmation_is_skipped():
    on_hold = load("post_bookings_on_hold_booking_example.json")
    events = octo_booking_events([on_hold, confirmed_booking()], destination="London")
    assert [(e["type"], e["order"]["version"]) for e in events] == [("confirmed", 1)]


def test_snapshot_that_changes_nothing_is_skipped_and_history_converts_again_identically():
    history = [confirmed_booking(), confirmed_booking(), cancelled_booking()]
    events = octo_booking_events(history, destination="London")
    assert [e["type"] for e in events] == ["confirmed", "cancelled"]
    assert octo_booking_events(history[:1], destination="London") == events[:1]


def test_redeemed_unit_item_gives_a_redeemed_version():
    redeemed = confirmed_booking()
    redeemed["unitItems"][0]["status"] = "REDEEMED"
    redeemed["unitItems"][0]["utcRedeemedAt"] = "2022-05-23T09:15:00Z"
    redeemed["unitItems"][1]["utcRedeemedAt"] = "2022-05-23T09:16:00Z"
    events = octo_booking_events([confirmed_booking(), redeemed], destination="London")
    second = events[1]
    assert (second["type"], second["order"]["version"]) == ("redeemed", 2)
    assert second["occurred_at"] == "2022-05-23T09:16:00+00:00"
    assert [(line["status"], line["redeemed_at"]) for line in second["order"]["items"]] == [
        ("redeemed", "2022-05-23T09:15:00+00:00"),
        ("redeemed", "2022-05-23T09:16:00+00:00"),
        ("confirmed", None),
    ]


def test_redeemed_booking_redeems_every_line_at_its_time():
    redeemed = confirmed_booking()
    redeemed["status"] = "REDEEMED"
    redeemed["utcRedeemedAt"] = "2022-05-23 10:00:00Z"
    redeemed["unitItems"][2]["status"] = "CANCELLED"
    confirmed, second = octo_booking_events(redeemed, destination="London")
    assert [line["status"] for line in confirmed["order"]["items"]] == [
        "confirmed",
        "confirmed",
        "cancelled",
    ]
    assert second["type"] == "redeemed"
    assert [(line["status"], line["redeemed_at"]) for line in second["order"]["items"]] == [
        ("redeemed", "2022-05-23T10:00:00+00:00"),
        ("redeemed", "2022-05-23T10:00:00+00:00"),
        ("cancelled", None),
    ]
    parse_event(second)


# Mistakes, one at a time


def test_net_above_retail_in_a_booking_is_rejected():
    booking = confirmed_booking()
    booking["unitItems"][1]["pricing"] = price(500, 800)
    assert reason_of(booking) == "unitItems[1].pricing net 800 is above retail 500"


def test_original_below_retail_is_rejected():
    booking = confirmed_booking()
    booking["unitItems"][0]["pricing"] = price(1000, 800, original=900)
    assert reason_of(booking) == "unitItems[0].pricing original 900 is below retail 1000"


def test_float_price_is_rejected():
    booking = confirmed_booking()
    booking["unitItems"][0]["pricing"]["retail"] = 10.0
    assert reason_of(booking) == "unitItems[0].pricing.retail must be an integer, got 10.0"


def test_reseller_without_net_is_rejected():
    booking = confirmed_booking()
    booking["unitItems"][0]["pricing"] = price(1000, None)
    assert reason_of(booking, reseller=RESELLER) == (
        "unitItems[0].pricing has no net, so the reseller's commission is unknown"
    )


def test_unit_items_in_two_currencies_are_rejected():
    booking = confirmed_booking()
    booking["unitItems"][2]["pricing"]["currency"] = "USD"
    assert reason_of(booking) == (
        "unit items are priced in more than one currency: EUR (2), USD (2)"
    )


def test_partial_refund_is_rejected_for_want_of_an_amount():
    reason = reason_of(cancelled_booking("PARTIAL"))
    assert reason == "cancellation.refund is PARTIAL, and OCTO gives no refund amount"


def test_cancelled_booking_without_cancellation_is_rejected():
    booking = cancelled_booking()
    booking["cancellation"] = None
    assert reason_of(booking) == "a CANCELLED booking has no cancellation"


def test_confirmed_booking_with_a_cancellation_is_rejected():
    booking = confirmed_booking()
    booking["cancellation"] = copy.deepcopy(cancelled_booking()["cancellation"])
    assert reason_of(booking) == "a booking that is CONFIRMED cannot carry a cancellation"


def test_unknown_status_is_rejected():
    booking = confirmed_booking()
    booking["status"] = "BOOKED"
    assert reason_of(booking) == "status 'BOOKED' is not an OCTO booking status"


def test_redeemed_booking_never_confirmed_is_rejected():
    booking = confirmed_booking()
    booking["status"] = "REDEEMED"
    booking["utcRedeemedAt"] = "2022-05-23T10:00:00Z"
    booking["utcConfirmedAt"] = None
    assert reason_of(booking) == "utcConfirmedAt is missing"


def test_missing_confirmation_time_is_rejected():
    booking = confirmed_booking()
    booking["utcConfirmedAt"] = None
    assert reason_of(booking) == "utcConfirmedAt is missing"


def test_snapshots_of_two_bookings_are_rejected():
    other = confirmed_booking()
    other["id"] = "another"
    with pytest.raises(AdapterError, match="a snapshot of booking 'another' among those of"):
        octo_booking_events([confirmed_booking(), other], destination="London")
