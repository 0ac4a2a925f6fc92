"""Order events in: what a valid record becomes, and the reason each malformed record is given."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_pipeline.core.events import (
    _Fields,
    _read_event,
    _read_well_formed_event,
    content_hash,
    event_document,
    parse_event,
)
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
from ledger_pipeline.errors import MalformedEvent
from ledger_pipeline_tests.strategies import order_histories

CET = dt.timezone(dt.timedelta(hours=1))


def valid_raw_event() -> dict[str, Any]:
    """A valid confirmed event, as in the contract's example; each test changes what it needs."""
    return {
        "event_id": "evt_01HV7W3K5Q",
        "type": "confirmed",
        "occurred_at": "2024-11-15T09:24:00+01:00",
        "order": {
            "id": "2e7f2d6f-0473-4935-8cfb-c11b2caa6dab",
            "version": 1,
            "reference": "WXDAPPSQ",
            "destination": "Krno",
            "test": False,
            "channel": "Terminals",
            "source": "terminal",
            "currency": "EUR",
            "currency_precision": 2,
            "paid": True,
            "reseller": {
                "id": "r-17",
                "name": "City Tours Ltd",
                "band": "Gold",
                "channel": "OTA",
                "tags": ["online"],
                "collects_payment": False,
            },
            "promotion": {"name": "WINTER10", "tags": ["seasonal"]},
            "cancellation": None,
            "items": [
                {
                    "id": "li-1",
                    "product": "Museum",
                    "product_tags": ["indoor"],
                    "option": "Day ticket",
                    "unit": "General Admission",
                    "sale_type": "individual",
                    "package_product": None,
                    "package_option": None,
                    "quantity": 2,
                    "pax_per_unit": 1,
                    "travel_date": "2024-11-20",
                    "status": "confirmed",
                    "redeemed_at": None,
                    "retail": 2200,
                    "discount": 0,
                    "adjustment": 0,
                    "tax": 0,
                    "commission": 0,
                    "commission_adjustment": 0,
                }
            ],
        },
    }


def second_line(line_id: str = "li-2") -> dict[str, Any]:
    return {
        "id": line_id,
        "product": "Museum",
        "option": "Day ticket",
        "unit": "Child Ticket",
        "quantity": 2,
        "travel_date": "2024-11-20",
        "status": "confirmed",
        "retail": 2200,
    }


def cancelled_event(cancellation: dict[str, Any]) -> dict[str, Any]:
    raw = valid_raw_event()
    raw["type"] = "cancelled"
    raw["order"]["cancellation"] = cancellation
    return raw


def reason_of(raw: Any) -> str:
    with pytest.raises(MalformedEvent) as raised:
        parse_event(raw)
    return raised.value.reason


# A valid event


def test_the_contract_example_parses_into_the_model():
    event = parse_event(json.dumps(valid_raw_event()))

    assert event == OrderEvent(
        event_id="evt_01HV7W3K5Q",
        type=EventType.CONFIRMED,
        occurred_at=dt.datetime(2024, 11, 15, 9, 24, tzinfo=CET),
        order=Order(
            id="2e7f2d6f-0473-4935-8cfb-c11b2caa6dab",
            version=1,
            reference="WXDAPPSQ",
            destination="Krno",
            currency="EUR",
            currency_precision=2,
            test=False,
            channel="Terminals",
            source="terminal",
            paid=True,
            reseller=Reseller(
                id="r-17",
                name="City Tours Ltd",
                band="Gold",
                channel="OTA",
                tags=("online",),
                collects_payment=False,
            ),
            promotion=Promotion(name="WINTER10", tags=("seasonal",)),
            cancellation=None,
            items=(
                LineItem(
                    id="li-1",
                    product="Museum",
                    product_tags=("indoor",),
                    option="Day ticket",
                    unit="General Admission",
                    sale_type="individual",
                    quantity=2,
                    pax_per_unit=1,
                    travel_date=dt.date(2024, 11, 20),
                    status=LineStatus.CONFIRMED,
                    retail=2200,
                ),
            ),
        ),
    )


def test_bytes_and_a_decoded_object_parse_like_text():
    raw = valid_raw_event()

    from_text = parse_event(json.dumps(raw))

    assert parse_event(json.dumps(raw).encode("utf-8")) == from_text
    assert parse_event(raw) == from_text


def test_absent_optional_fields_take_their_defaults():
    raw = valid_raw_event()
    order = raw["order"]
    for key in ("test", "channel", "source", "paid", "reseller", "promotion", "cancellation"):
        del order[key]
    order["items"] = [second_line()]

    event = parse_event(raw)

    assert event.order.test is False
    assert event.order.paid is True
    assert (event.order.channel, event.order.source) == (None, None)
    assert (event.order.reseller, event.order.promotion, event.order.cancellation) == (
        None,
        None,
        None,
    )
    item = event.order.items[0]
    assert item.product_tags == ()
    assert item.pax_per_unit == 1
    assert (item.discount, item.adjustment, item.tax, item.commission) == (0, 0, 0, 0)
    assert item.commission_adjustment == 0
    assert (item.sale_type, item.package_product, item.package_option) == (None, None, None)
    assert item.redeemed_at is None


def test_an_order_without_lines_is_valid():
    raw = valid_raw_event()
    raw["order"]["items"] = []

    assert parse_event(raw).order.items == ()


def test_tags_become_sorted_tuples_without_repeats():
    raw = valid_raw_event()
    raw["order"]["reseller"]["tags"] = ["online", "b2b", "online"]
    raw["order"]["promotion"]["tags"] = ["winter", "seasonal"]
    raw["order"]["items"][0]["product_tags"] = ["outdoor", "indoor", "outdoor"]

    order = parse_event(raw).order

    assert order.reseller.tags == ("b2b", "online")
    assert order.promotion.tags == ("seasonal", "winter")
    assert order.items[0].product_tags == ("indoor", "outdoor")


def test_adjustment_and_commission_adjustment_may_be_negative():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(adjustment=-200, commission_adjustment=-50)

    item = parse_event(raw).order.items[0]

    assert (item.adjustment, item.commission_adjustment, item.total) == (-200, -50, 2000)


def test_a_line_total_of_zero_is_valid():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(retail=2200, discount=2200)

    assert parse_event(raw).order.items[0].total == 0


def test_a_utc_timestamp_may_end_in_z():
    raw = valid_raw_event()
    raw["occurred_at"] = "2024-11-15T08:24:00Z"

    assert parse_event(raw).occurred_at == dt.datetime(2024, 11, 15, 8, 24, tzinfo=dt.UTC)


def test_redeemed_at_is_read_with_its_offset():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(status="redeemed", redeemed_at="2024-11-20T10:00:00+01:00")

    item = parse_event(raw).order.items[0]

    assert item.status is LineStatus.REDEEMED
    assert item.redeemed_at == dt.datetime(2024, 11, 20, 10, 0, tzinfo=CET)


def test_a_cancelled_event_reads_its_partial_refund():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": 1000})

    assert parse_event(raw).order.cancellation == Cancellation(Refund.PARTIAL, 1000)


def test_a_full_refund_may_leave_out_the_refund_amount():
    raw = cancelled_event({"refund": "FULL"})

    assert parse_event(raw).order.cancellation == Cancellation(Refund.FULL, None)


# Currencies and their precision


def test_eur_has_two_decimals():
    assert parse_event(valid_raw_event()).order.currency_precision == 2


def test_jpy_has_no_decimals():
    raw = valid_raw_event()
    raw["order"].update(currency="JPY", currency_precision=0)

    assert parse_event(raw).order.currency_precision == 0


def test_kwd_has_three_decimals():
    raw = valid_raw_event()
    raw["order"].update(currency="KWD", currency_precision=3)

    assert parse_event(raw).order.currency_precision == 3


def test_eur_with_three_decimals_is_malformed():
    raw = valid_raw_event()
    raw["order"]["currency_precision"] = 3

    assert reason_of(raw) == "order.currency_precision 3 does not match EUR (2)"


def test_jpy_with_two_decimals_is_malformed():
    raw = valid_raw_event()
    raw["order"].update(currency="JPY", currency_precision=2)

    assert reason_of(raw) == "order.currency_precision 2 does not match JPY (0)"


def test_kwd_with_two_decimals_is_malformed():
    raw = valid_raw_event()
    raw["order"].update(currency="KWD", currency_precision=2)

    assert reason_of(raw) == "order.currency_precision 2 does not match KWD (3)"


def test_an_unknown_currency_is_malformed():
    raw = valid_raw_event()
    raw["order"]["currency"] = "EUX"

    assert reason_of(raw) == "order.currency 'EUX' is not an ISO 4217 currency with a minor unit"


def test_a_currency_without_a_minor_unit_is_malformed():
    raw = valid_raw_event()
    raw["order"]["currency"] = "XAU"

    assert reason_of(raw) == "order.currency 'XAU' is not an ISO 4217 currency with a minor unit"


def test_a_lowercase_currency_code_is_malformed():
    raw = valid_raw_event()
    raw["order"]["currency"] = "eur"

    assert reason_of(raw) == "order.currency 'eur' is not an ISO 4217 currency with a minor unit"


# Bad JSON


def test_text_that_is_not_json_is_malformed():
    assert reason_of("not json") == "bad JSON: Expecting value at column 1"


def test_a_cut_record_is_malformed():
    assert reason_of('{"event_id": "evt_1", ') == (
        "bad JSON: Expecting property name enclosed in double quotes at column 23"
    )


def test_bad_json_on_a_later_line_names_the_line():
    assert reason_of('{\n  "event_id": }') == "bad JSON: Expecting value at line 2 column 15"


def test_bytes_that_are_not_utf8_are_malformed():
    assert reason_of(b'{"event_id": "\xff"}') == "bad JSON: not UTF-8 (byte 14)"


def test_a_key_given_twice_is_malformed():
    text = json.dumps(valid_raw_event())[:-1] + ', "event_id": "evt_other"}'

    assert reason_of(text) == "bad JSON: key 'event_id' appears twice in one object"


def test_nan_is_malformed():
    text = json.dumps(valid_raw_event()).replace('"retail": 2200', '"retail": NaN')

    assert reason_of(text) == "bad JSON: NaN is not a JSON number"


def test_a_record_that_is_not_an_object_is_malformed():
    assert reason_of("[1, 2]") == "the event must be a JSON object, got list"


# Missing and mistyped fields


@pytest.mark.parametrize(
    ("location", "key", "path"),
    [
        ("event", "event_id", "event_id"),
        ("event", "type", "type"),
        ("event", "occurred_at", "occurred_at"),
        ("event", "order", "order"),
        ("order", "id", "order.id"),
        ("order", "version", "order.version"),
        ("order", "reference", "order.reference"),
        ("order", "destination", "order.destination"),
        ("order", "currency", "order.currency"),
        ("order", "currency_precision", "order.currency_precision"),
        ("order", "items", "order.items"),
        ("item", "id", "order.items[0].id"),
        ("item", "product", "order.items[0].product"),
        ("item", "option", "order.items[0].option"),
        ("item", "unit", "order.items[0].unit"),
        ("item", "quantity", "order.items[0].quantity"),
        ("item", "travel_date", "order.items[0].travel_date"),
        ("item", "status", "order.items[0].status"),
        ("item", "retail", "order.items[0].retail"),
    ],
)
def test_a_missing_required_field_is_malformed(location, key, path):
    raw = valid_raw_event()
    container = {"event": raw, "order": raw["order"], "item": raw["order"]["items"][0]}
    del container[location][key]

    assert reason_of(raw) == f"missing field {path}"


def test_a_reseller_without_an_id_is_malformed():
    raw = valid_raw_event()
    del raw["order"]["reseller"]["id"]

    assert reason_of(raw) == "missing field order.reseller.id"


def test_a_promotion_without_a_name_is_malformed():
    raw = valid_raw_event()
    del raw["order"]["promotion"]["name"]

    assert reason_of(raw) == "missing field order.promotion.name"


def test_a_quantity_that_is_a_float_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"].append(second_line())
    raw["order"]["items"][1]["quantity"] = 2.5

    assert reason_of(raw) == "order.items[1].quantity must be an integer, got float 2.5"


def test_a_float_amount_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["retail"] = 12.5

    assert reason_of(raw) == (
        "order.items[0].retail is a float (12.5): amounts are integers in minor units"
    )


def test_a_float_amount_with_no_fraction_is_malformed_too():
    raw = valid_raw_event()
    raw["order"]["items"][0]["tax"] = 100.0

    assert reason_of(raw) == (
        "order.items[0].tax is a float (100.0): amounts are integers in minor units"
    )


def test_a_boolean_amount_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["retail"] = True

    assert reason_of(raw) == "order.items[0].retail must be an integer, got boolean true"


def test_an_amount_given_as_a_string_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["discount"] = "100"

    assert reason_of(raw) == "order.items[0].discount must be an integer, got string '100'"


def test_a_null_amount_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["commission"] = None

    assert reason_of(raw) == "order.items[0].commission must be an integer, got null"


def test_a_boolean_given_as_a_string_is_malformed():
    raw = valid_raw_event()
    raw["order"]["paid"] = "true"

    assert reason_of(raw) == "order.paid must be a boolean, got string 'true'"


def test_a_boolean_given_as_a_number_is_malformed():
    raw = valid_raw_event()
    raw["order"]["test"] = 0

    assert reason_of(raw) == "order.test must be a boolean, got integer 0"


def test_a_version_given_as_a_string_is_malformed():
    raw = valid_raw_event()
    raw["order"]["version"] = "1"

    assert reason_of(raw) == "order.version must be an integer, got string '1'"


def test_a_version_below_one_is_malformed():
    raw = valid_raw_event()
    raw["order"]["version"] = 0

    assert reason_of(raw) == "order.version must be at least 1, got 0"


def test_a_version_beyond_32_bits_is_malformed():
    raw = valid_raw_event()
    raw["order"]["version"] = 2**31

    assert reason_of(raw) == "order.version must be at most 2147483647, got 2147483648"


# Amounts and counts past these would overflow the ledger's 64-bit sums and stop posting.
@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("retail", 10**15 + 1, "retail is beyond 1000000000000000 (1000000000000001)"),
        ("retail", 10**30, "retail is beyond 1000000000000000 (1000000000000000000000000000000)"),
        ("tax", 10**45, "tax is beyond 1000000000000000 (an integer of 46 digits)"),
        (
            "adjustment",
            -(10**15) - 1,
            "adjustment is beyond -1000000000000000..1000000000000000 (-1000000000000001)",
        ),
        ("quantity", 10**6 + 1, "quantity is beyond 1000000 (1000001)"),
        ("pax_per_unit", 10**7, "pax_per_unit is beyond 1000000 (10000000)"),
    ],
)
def test_an_amount_or_count_too_large_for_the_ledger_is_malformed(key, value, reason):
    raw = valid_raw_event()
    raw["order"]["items"][0][key] = value
    if key == "retail":
        raw["order"]["items"][0]["tax"] = 0

    assert reason_of(raw) == f"order.items[0].{reason}"


def test_the_largest_amount_and_count_are_valid():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(
        retail=10**15, discount=0, adjustment=-(10**15), tax=0, commission=0, quantity=10**6
    )

    [line] = parse_event(raw).order.items
    assert (line.retail, line.adjustment, line.quantity) == (10**15, -(10**15), 10**6)


def test_an_order_that_is_not_an_object_is_malformed():
    raw = valid_raw_event()
    raw["order"] = ["not", "an", "object"]

    assert reason_of(raw) == "order must be an object, got list"


def test_items_that_are_not_a_list_are_malformed():
    raw = valid_raw_event()
    raw["order"]["items"] = {"id": "li-1"}

    assert reason_of(raw) == "order.items must be a list, got object"


def test_an_item_that_is_not_an_object_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"].append("li-2")

    assert reason_of(raw) == "order.items[1] must be an object, got string 'li-2'"


def test_a_reseller_that_is_not_an_object_is_malformed():
    raw = valid_raw_event()
    raw["order"]["reseller"] = "r-17"

    assert reason_of(raw) == "order.reseller must be an object or null, got string 'r-17'"


def test_an_optional_string_of_another_type_is_malformed():
    raw = valid_raw_event()
    raw["order"]["channel"] = 7

    assert reason_of(raw) == "order.channel must be a string or null, got integer 7"


def test_tags_that_are_not_a_list_are_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["product_tags"] = "indoor"

    assert reason_of(raw) == (
        "order.items[0].product_tags must be a list of strings, got string 'indoor'"
    )


def test_a_tag_that_is_not_a_string_is_malformed():
    raw = valid_raw_event()
    raw["order"]["reseller"]["tags"] = ["online", 3]

    assert reason_of(raw) == "order.reseller.tags[1] must be a string, got integer 3"


def test_a_long_string_is_cut_in_the_reason():
    raw = valid_raw_event()
    raw["order"]["version"] = "x" * 100

    assert reason_of(raw) == ("order.version must be an integer, got string '" + "x" * 40 + "...'")


# Empty identifiers


def test_an_empty_order_id_is_malformed():
    raw = valid_raw_event()
    raw["order"]["id"] = ""

    assert reason_of(raw) == "order.id is empty or blank"


def test_a_blank_event_id_is_malformed():
    raw = valid_raw_event()
    raw["event_id"] = "   "

    assert reason_of(raw) == "event_id is empty or blank"


def test_an_empty_line_id_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["id"] = ""

    assert reason_of(raw) == "order.items[0].id is empty or blank"


# Event types, line statuses, refunds


def test_an_unknown_event_type_is_malformed():
    raw = valid_raw_event()
    raw["type"] = "shipped"

    assert reason_of(raw) == (
        "type 'shipped' is not one of confirmed, updated, cancelled, redeemed, noshow"
    )


def test_an_unknown_line_status_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["status"] = "pending"

    assert reason_of(raw) == (
        "order.items[0].status 'pending' is not one of confirmed, redeemed, noshow, cancelled"
    )


def test_an_unknown_refund_is_malformed():
    raw = cancelled_event({"refund": "SOME"})

    assert reason_of(raw) == "order.cancellation.refund 'SOME' is not one of FULL, PARTIAL, NONE"


# Dates and timestamps


def test_a_travel_date_in_another_format_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["travel_date"] = "20/11/2024"

    assert reason_of(raw) == (
        "order.items[0].travel_date must be a date as YYYY-MM-DD, got string '20/11/2024'"
    )


def test_a_travel_date_that_does_not_exist_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["travel_date"] = "2024-02-30"

    assert reason_of(raw) == (
        "order.items[0].travel_date must be a date as YYYY-MM-DD, got string '2024-02-30'"
    )


def test_an_occurred_at_that_is_not_a_timestamp_is_malformed():
    raw = valid_raw_event()
    raw["occurred_at"] = "yesterday"

    assert reason_of(raw) == (
        "occurred_at must be an ISO 8601 timestamp with a UTC offset, got string 'yesterday'"
    )


@pytest.mark.parametrize(
    "moment",
    ["9999-12-31T23:59:59+00:00", "1899-12-31T23:59:59+00:00", "2200-01-01T01:30:00+01:00"],
)
def test_an_occurred_at_outside_the_dates_taken_is_malformed(moment):
    raw = valid_raw_event()
    raw["occurred_at"] = moment

    assert reason_of(raw) == (
        f"occurred_at '{moment}' is out of range: dates from 1900 to 2199 are taken"
    )


@pytest.mark.parametrize("day", ["2300-01-02", "1677-09-21"])
def test_a_travel_date_outside_the_dates_taken_is_malformed(day):
    raw = valid_raw_event()
    raw["order"]["items"][0]["travel_date"] = day

    assert reason_of(raw) == (
        f"order.items[0].travel_date '{day}' is out of range: dates from 1900 to 2199 are taken"
    )


def test_the_first_and_last_dates_taken_are_valid():
    raw = valid_raw_event()
    raw["occurred_at"] = "2199-12-31T23:59:59Z"
    raw["order"]["items"][0]["travel_date"] = "1900-01-01"

    event = parse_event(raw)
    assert (event.occurred_at.year, event.order.items[0].travel_date.year) == (2199, 1900)


def test_an_occurred_at_without_a_utc_offset_is_malformed():
    raw = valid_raw_event()
    raw["occurred_at"] = "2024-11-15T09:24:00"

    assert reason_of(raw) == "occurred_at has no UTC offset: '2024-11-15T09:24:00'"


def test_a_redeemed_at_without_a_utc_offset_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(status="redeemed", redeemed_at="2024-11-20T10:00:00")

    assert reason_of(raw) == "order.items[0].redeemed_at has no UTC offset: '2024-11-20T10:00:00'"


def test_an_occurred_at_given_as_a_number_is_malformed():
    raw = valid_raw_event()
    raw["occurred_at"] = 1731659040

    assert reason_of(raw) == (
        "occurred_at must be an ISO 8601 timestamp with a UTC offset, got integer 1731659040"
    )


# Negative values


@pytest.mark.parametrize("key", ["retail", "discount", "tax", "commission"])
def test_a_negative_amount_is_malformed(key):
    raw = valid_raw_event()
    raw["order"]["items"][0][key] = -5

    assert reason_of(raw) == f"order.items[0].{key} is negative (-5)"


def test_a_negative_quantity_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["quantity"] = -1

    assert reason_of(raw) == "order.items[0].quantity is negative (-1)"


def test_a_negative_pax_per_unit_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0]["pax_per_unit"] = -2

    assert reason_of(raw) == "order.items[0].pax_per_unit is negative (-2)"


def test_a_negative_refund_amount_is_malformed():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": -1})

    assert reason_of(raw) == "order.cancellation.refund_amount is negative (-1)"


# Rules between amounts


def test_a_negative_line_total_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(retail=100, discount=300, adjustment=100)

    assert reason_of(raw) == (
        "order.items[0] total is negative (-100): retail 100 - discount 300 + adjustment 100"
    )


def test_tax_above_the_line_total_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(retail=100, tax=120)

    assert reason_of(raw) == "order.items[0].tax 120 is above the line total 100"


def test_commission_above_the_line_total_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"][0].update(retail=100, commission=150)

    assert reason_of(raw) == "order.items[0].commission 150 is above the line total 100"


def test_a_repeated_line_id_is_malformed():
    raw = valid_raw_event()
    raw["order"]["items"].extend([second_line("li-2"), second_line("li-1")])

    assert reason_of(raw) == "order.items[2].id 'li-1' repeats order.items[0].id"


# Cancellation


def test_a_cancelled_event_without_a_cancellation_is_malformed():
    raw = valid_raw_event()
    raw["type"] = "cancelled"

    assert reason_of(raw) == "order.cancellation is required when the event type is cancelled"


def test_a_cancellation_on_another_event_type_is_malformed():
    raw = valid_raw_event()
    raw["type"] = "updated"
    raw["order"]["cancellation"] = {"refund": "FULL"}

    assert reason_of(raw) == "order.cancellation must be null unless the event type is cancelled"


def test_a_partial_refund_without_an_amount_is_malformed():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": None})

    assert reason_of(raw) == "order.cancellation.refund_amount is required for a PARTIAL refund"


def test_a_full_refund_with_an_amount_is_malformed():
    raw = cancelled_event({"refund": "FULL", "refund_amount": 2200})

    assert reason_of(raw) == (
        "order.cancellation.refund_amount must be null for a FULL refund, got 2200"
    )


def test_a_float_refund_amount_is_malformed():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": 10.5})

    assert reason_of(raw) == (
        "order.cancellation.refund_amount is a float (10.5): amounts are integers in minor units"
    )


def test_a_partial_refund_above_the_order_total_is_malformed():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": 5000})
    cancelled_line = second_line("li-3")
    cancelled_line.update(status="cancelled", retail=9999)
    raw["order"]["items"].extend([second_line("li-2"), cancelled_line])

    assert reason_of(raw) == "order.cancellation.refund_amount 5000 is above the order total 4400"


def test_a_partial_refund_of_the_whole_total_is_valid():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": 2200})

    assert parse_event(raw).order.cancellation.refund_amount == 2200


# The malformed event keeps its id


def test_a_malformed_event_carries_its_event_id():
    raw = valid_raw_event()
    raw["order"]["items"][0]["retail"] = 12.5

    with pytest.raises(MalformedEvent) as raised:
        parse_event(raw)

    assert raised.value.event_id == "evt_01HV7W3K5Q"


def test_bad_json_has_no_event_id():
    with pytest.raises(MalformedEvent) as raised:
        parse_event("{")

    assert raised.value.event_id is None


# Personal data and the canonical document


def test_personal_fields_are_left_out_of_the_event_document():
    raw = valid_raw_event()
    personal = {
        "name": "Jana Novak",
        "email": "jana@example.com",
        "phone": "+420 601 234 567",
        "notes": "allergic to cats",
    }
    raw.update(personal)
    raw["order"].update(personal, contact={"name": "Jana Novak", "email": "jana@example.com"})
    raw["order"]["items"][0].update(personal)
    raw["order"]["reseller"].update(
        {key: value for key, value in personal.items() if key != "name"},
        contact_name="Petr Svoboda",
    )

    document = json.dumps(event_document(parse_event(raw)))

    for value in ("Jana", "jana@example.com", "+420", "cats", "Petr", "email", "phone", "notes"):
        assert value not in document
    assert '"contact' not in document


def test_the_event_document_has_the_shape_of_the_input():
    raw = valid_raw_event()

    assert event_document(parse_event(raw)) == raw


def test_the_event_document_parses_back_into_the_same_event():
    raw = cancelled_event({"refund": "PARTIAL", "refund_amount": 700})
    raw["occurred_at"] = "2024-11-16T10:00:00.250000-05:00"
    raw["order"]["items"].append(second_line())
    raw["order"]["items"][1].update(status="redeemed", redeemed_at="2024-11-20T10:00:00Z")
    raw["order"]["items"][0].update(discount=100, adjustment=-50, tax=180, commission=300)
    event = parse_event(raw)

    document = event_document(event)

    assert parse_event(document) == event
    assert parse_event(json.dumps(document)) == event
    assert document["occurred_at"] == "2024-11-16T10:00:00.250000-05:00"
    assert document["order"]["items"][1]["redeemed_at"] == "2024-11-20T10:00:00+00:00"


def test_the_content_hash_is_the_sha256_of_the_canonical_json():
    event = parse_event(valid_raw_event())
    canonical = json.dumps(
        event_document(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )

    assert content_hash(event) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_the_content_hash_ignores_key_order_defaults_and_personal_fields():
    raw = valid_raw_event()
    reordered = dict(reversed(list(raw.items())))
    reordered["order"] = dict(raw["order"], email="jana@example.com")
    del reordered["order"]["paid"]

    assert content_hash(parse_event(reordered)) == content_hash(parse_event(raw))


def test_the_content_hash_changes_with_an_amount():
    raw = valid_raw_event()
    changed = valid_raw_event()
    changed["order"]["items"][0]["retail"] = 2300

    assert content_hash(parse_event(changed)) != content_hash(parse_event(raw))


# The one-pass reader of well-formed events and the field-by-field reader


class _Missing:
    """A mutation that removes the key."""


_ODD_VALUES = (
    _Missing(),
    None,
    "",
    " ",
    "x",
    "EUR",
    "FULL",
    "PARTIAL",
    "cancelled",
    "confirmed",
    "2024-11-15",
    "2024-11-15T10:00:00",
    "2024-11-15T10:00:00Z",
    0,
    1,
    -1,
    2,
    10**9,
    1.5,
    2.0,
    True,
    False,
    [],
    ["b", "a", "b"],
    [1],
    {},
    {"refund": "NONE"},
    {"refund": "PARTIAL", "refund_amount": 1},
)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every key path into a JSON document, the document's own fields and every nested one."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*path, key))
            found.extend(_paths(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*path, index))
            found.extend(_paths(child, (*path, index)))
    return found


def _mutated(document: Any, path: tuple, value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(value, _Missing):
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    return copy


def _field_by_field(document: Any) -> OrderEvent | MalformedEvent:
    try:
        return _read_event(_Fields(document, ""))
    except MalformedEvent as error:
        return error


def _assert_the_readers_agree(document: Any) -> None:
    fast = _read_well_formed_event(document)
    careful = _field_by_field(document)

    if isinstance(careful, MalformedEvent):
        assert fast is None, careful.reason
    else:
        assert fast == careful


@settings(max_examples=25, deadline=None)
@given(history=order_histories(), index=st.integers(0, 20))
def test_the_one_pass_reader_agrees_with_the_field_by_field_reader(history, index):
    """Every value of a valid event changed to each odd value, or removed, in turn: what the
    one-pass reader accepts, the field-by-field reader accepts as the very same event, and
    what the field-by-field reader rejects, the one-pass reader gives up on."""
    document = event_document(history[index % len(history)])
    _assert_the_readers_agree(document)

    for path in _paths(document):
        for value in _ODD_VALUES:
            _assert_the_readers_agree(_mutated(document, path, value))


@settings(max_examples=100, deadline=None)
@given(history=order_histories())
def test_the_one_pass_reader_reads_every_valid_event_itself(history):
    for event in history:
        document = event_document(event)

        fast = _read_well_formed_event(document)
        assert fast is not None
        assert fast == _read_event(_Fields(document, ""))
