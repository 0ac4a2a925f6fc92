"""The hotel bookings adapter: the mapping of each quirk, on named real rows, and counts over the
whole file (data/hotel_bookings.csv.gz, 119,390 rows)."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import io
from pathlib import Path

import pytest

from ledger_pipeline.adapters.hotel_bookings import (
    HotelBooking,
    HotelRejection,
    booking_events,
    iter_hotel_booking_events,
)
from ledger_pipeline.core.events import Reason, content_hash, parse_event
from ledger_pipeline.core.landing import (
    LandedOrder,
    LandingReason,
    Outcome,
    decide_landing,
)
from ledger_pipeline.errors import AdapterError, MalformedEvent

DATA = Path(__file__).resolve().parents[1] / "data" / "hotel_bookings.csv.gz"

# Rows named below, each one a quirk (the 1-based data row number, header not counted).
NAMED_ROWS = {1, 9, 25, 41, 123, 126, 2134, 2225, 3107, 7036, 14970, 40601, 84472}
SAMPLE_EVERY = 97

HEADER = (
    "hotel,is_canceled,lead_time,arrival_date_year,arrival_date_month,arrival_date_week_number,"
    "arrival_date_day_of_month,stays_in_weekend_nights,stays_in_week_nights,adults,children,"
    "babies,meal,country,market_segment,distribution_channel,is_repeated_guest,"
    "previous_cancellations,previous_bookings_not_canceled,reserved_room_type,"
    "assigned_room_type,booking_changes,deposit_type,agent,company,days_in_waiting_list,"
    "customer_type,adr,required_car_parking_spaces,total_of_special_requests,"
    "reservation_status,reservation_status_date"
)
# A made-up row, edited per test to make a quirk the real file does not have.
MADE_UP_ROW = (
    "City Hotel,0,10,2016,March,10,10,1,2,2,0,0,BB,PRT,Online TA,TA/TO,0,0,0,A,A,0,"
    "No Deposit,9,NULL,0,Transient,100,0,0,Check-Out,2016-03-13"
)


def expected_outcome(events: list[dict]) -> tuple[str, str | None]:
    """What landing will make of a booking's events, read off the events themselves."""
    confirmed, outcome = events
    retail = confirmed["order"]["items"][0]["retail"]
    if retail < 0:
        return "quarantined", Reason.NEGATIVE.format(path="order.items[0].retail", value=retail)
    confirmed_at = dt.datetime.fromisoformat(confirmed["occurred_at"])
    if dt.datetime.fromisoformat(outcome["occurred_at"]) < confirmed_at:
        return "quarantined", "outcome earlier than the confirmation"
    if retail == 0:
        return "total 0", None
    return "posted", None


def landed_outcome(events: list[dict]) -> tuple[str, str | None]:
    """What the event parser and the landing rules make of a booking's events."""
    landed = None
    for raw in events:
        try:
            event = parse_event(raw)
        except MalformedEvent as error:
            return "quarantined", error.reason
        decision = decide_landing(
            event, content_hash(event), landed_hash_of_same_id=None, landed_order=landed
        )
        if decision.outcome is not Outcome.ACCEPTED:
            if decision.reason.startswith("occurred_at"):
                return "quarantined", "outcome earlier than the confirmation"
            return "quarantined", decision.reason
        cancelled = event.order.cancellation is not None
        landed = LandedOrder(event.order.version, event.occurred_at, cancelled)
    if event.order.total == 0:
        return "total 0", None
    return "posted", None


@pytest.fixture(scope="module")
def whole_file() -> dict:
    """One pass over the real file: outcome counts, the named rows and a sample of rows."""
    counts: collections.Counter = collections.Counter()
    named: dict[int, HotelBooking] = {}
    sample: list[HotelBooking] = []
    for record in iter_hotel_booking_events(DATA):
        counts["rows"] += 1
        if isinstance(record, HotelRejection):
            counts["rejected"] += 1
            continue
        outcome, reason = expected_outcome(record.events)
        counts[outcome] += 1
        counts[(outcome, reason)] += 1
        counts[record.events[1]["type"]] += 1
        if record.row in NAMED_ROWS:
            named[record.row] = record
        if record.row % SAMPLE_EVERY == 0:
            sample.append(record)
    return {"counts": counts, "named": named, "sample": sample}


def read(text: str) -> list:
    return list(iter_hotel_booking_events(io.StringIO(text)))


def made_up(**changes: str) -> str:
    """The made-up row with some columns changed, as CSV text with its header."""
    values = dict(zip(HEADER.split(","), MADE_UP_ROW.split(","), strict=True))
    values.update(changes)
    return HEADER + "\n" + ",".join(values.values()) + "\n"


# Counts over the whole file


def test_every_row_of_the_file_becomes_a_booking(whole_file):
    counts = whole_file["counts"]
    assert counts["rows"] == 119_390
    assert counts["rejected"] == 0


def test_whole_file_outcomes_are_counted(whole_file):
    counts = whole_file["counts"]
    negative = Reason.NEGATIVE.format(path="order.items[0].retail", value=-6380)
    assert counts["posted"] == 117_430
    assert counts["total 0"] == 1_959
    assert counts["quarantined"] == 1
    assert counts[("quarantined", negative)] == 1
    assert counts[("quarantined", "outcome earlier than the confirmation")] == 0


def test_whole_file_outcome_events_follow_the_reservation_status(whole_file):
    counts = whole_file["counts"]
    assert counts["redeemed"] == 75_166
    assert counts["cancelled"] == 43_017
    assert counts["noshow"] == 1_207


def test_parser_and_landing_agree_with_the_counted_outcomes_on_a_sample(whole_file):
    records = whole_file["sample"] + list(whole_file["named"].values())
    assert len(records) > 1_200
    for record in records:
        assert landed_outcome(record.events) == expected_outcome(record.events), record.row


# Named real rows, one per quirk, every event asserted field by field


def test_zero_night_stay_at_zero_rate_without_agent_is_redeemed_with_total_zero(whole_file):
    # Row 1: Resort Hotel, lead_time 342, arrival 2015 July 1, 0+0 nights, 2 adults, 0 children,
    # 0 babies, BB, Direct/Direct, reserved room C, No Deposit, agent NULL, Transient, adr 0,
    # Check-Out on 2015-07-01.
    record = whole_file["named"][1]
    line = {
        "id": "room",
        "product": "Resort Hotel",
        "product_tags": [],
        "option": "Room C, bed and breakfast",
        "unit": "room night",
        "sale_type": "Transient",
        "package_product": None,
        "package_option": None,
        "quantity": 0,
        "pax_per_unit": 2,
        "travel_date": "2015-07-01",
        "status": "confirmed",
        "redeemed_at": None,
        "retail": 0,
        "discount": 0,
        "adjustment": 0,
        "tax": 0,
        "commission": 0,
        "commission_adjustment": 0,
    }
    order = {
        "id": "hotel-1",
        "version": 1,
        "reference": "HB000001",
        "destination": "Resort Hotel",
        "test": False,
        "channel": "Direct",
        "source": "Direct",
        "currency": "EUR",
        "currency_precision": 2,
        "paid": False,
        "reseller": None,
        "promotion": None,
        "cancellation": None,
        "items": [line],
    }
    assert record.events == [
        {
            "event_id": "hb-1-1",
            "type": "confirmed",
            # 2015-07-01 minus 342 days; Lisbon is on summer time (+01:00) on that day.
            "occurred_at": "2014-07-24T12:00:00+01:00",
            "order": order,
        },
        {
            "event_id": "hb-1-2",
            "type": "redeemed",
            "occurred_at": "2015-07-01T14:00:00+01:00",
            "order": {
                **order,
                "version": 2,
                "paid": True,
                "items": [
                    {**line, "status": "redeemed", "redeemed_at": "2015-07-01T14:00:00+01:00"}
                ],
            },
        },
    ]
    assert landed_outcome(record.events) == ("total 0", None)


def test_booking_made_in_winter_for_summer_carries_each_days_offset_and_exact_retail(whole_file):
    # Row 25: Resort Hotel, lead_time 127, arrival 2015 July 1, 2+5 nights, 2 adults, HB,
    # Offline TA/TO via TA/TO, room D, No Deposit, agent 115, Contract, adr 94.95, Check-Out.
    confirmed, redeemed = whole_file["named"][25].events
    # 2015-07-01 minus 127 days is 2015-02-24, on winter time (+00:00).
    assert confirmed["occurred_at"] == "2015-02-24T12:00:00+00:00"
    assert redeemed["occurred_at"] == "2015-07-01T14:00:00+01:00"
    order = confirmed["order"]
    assert order["reseller"] == {
        "id": "agent-115",
        "name": "Agent 115",
        "band": None,
        "channel": "TA/TO",
        "tags": [],
        "collects_payment": False,
    }
    assert (order["channel"], order["source"], order["paid"]) == ("TA/TO", "Offline TA/TO", False)
    line = order["items"][0]
    assert (line["option"], line["sale_type"]) == ("Room D, half board", "Contract")
    # 94.95 EUR x 7 nights = 664.65 EUR = 66465 cents.
    assert (line["quantity"], line["pax_per_unit"], line["retail"]) == (7, 2, 66465)
    assert redeemed["order"]["paid"] is True
    assert redeemed["order"]["items"][0]["retail"] == 66465


def test_rate_with_one_decimal_times_nights_is_exact_in_cents(whole_file):
    # Row 84472: City Hotel, lead_time 38, arrival 2016 February 24, 0+3 nights, 2 adults, BB,
    # Direct/Direct, room A, No Deposit, agent 14, Transient, adr 75.5, Check-Out.
    confirmed, redeemed = whole_file["named"][84472].events
    line = confirmed["order"]["items"][0]
    # 75.5 EUR x 3 nights = 226.50 EUR = 22650 cents.
    assert (line["product"], line["quantity"], line["retail"]) == ("City Hotel", 3, 22650)
    assert confirmed["occurred_at"] == "2016-01-17T12:00:00+00:00"
    assert redeemed["occurred_at"] == "2016-02-24T14:00:00+00:00"
    assert landed_outcome([confirmed, redeemed]) == ("posted", None)


def test_negative_rate_is_passed_on_and_quarantined_by_the_parser(whole_file):
    # Row 14970: Resort Hotel, lead_time 195, arrival 2017 March 5, 4+6 nights, 2 adults, BB,
    # Groups via Direct, room A, No Deposit, agent 273, Transient-Party, adr -6.38, Check-Out.
    confirmed, redeemed = whole_file["named"][14970].events
    # -6.38 EUR x 10 nights = -63.80 EUR = -6380 cents.
    assert confirmed["order"]["items"][0]["retail"] == -6380
    assert redeemed["order"]["items"][0]["retail"] == -6380
    with pytest.raises(MalformedEvent) as error:
        parse_event(confirmed)
    assert error.value.reason == "order.items[0].retail is negative (-6380)"
    assert error.value.event_id == "hb-14970-1"


def test_zero_rate_with_nights_has_total_zero(whole_file):
    # Row 126: Resort Hotel, lead_time 32, arrival 2015 July 4, 0+1 nights, 4 adults, FB,
    # Complementary via Direct, room H, No Deposit, agent NULL, Transient, adr 0, Check-Out.
    confirmed, _ = whole_file["named"][126].events
    line = confirmed["order"]["items"][0]
    assert (line["option"], line["quantity"], line["pax_per_unit"], line["retail"]) == (
        "Room H, full board",
        1,
        4,
        0,
    )
    assert confirmed["order"]["source"] == "Complementary"
    assert landed_outcome(whole_file["named"][126].events) == ("total 0", None)


def test_children_na_count_as_no_child(whole_file):
    # Row 40601: City Hotel, 2 adults, children NA, 0 babies.
    line = whole_file["named"][40601].events[0]["order"]["items"][0]
    assert line["pax_per_unit"] == 2


def test_booking_without_guests_has_zero_pax(whole_file):
    # Row 2225: Resort Hotel, lead_time 1, arrival 2015 October 6, 0+3 nights, 0 adults,
    # 0 children, 0 babies, SC, Corporate/Corporate, room A, agent NULL, company 174, adr 0.
    line = whole_file["named"][2225].events[0]["order"]["items"][0]
    assert (line["pax_per_unit"], line["quantity"], line["option"]) == (
        0,
        3,
        "Room A, self catering",
    )


def test_undefined_meal_is_named_in_the_option(whole_file):
    # Row 3107: Resort Hotel, room A, meal Undefined, adr 69, 2+4 nights.
    line = whole_file["named"][3107].events[0]["order"]["items"][0]
    # 69 EUR x 6 nights = 414.00 EUR = 41400 cents.
    assert (line["option"], line["retail"]) == ("Room A, meal undefined", 41400)


def test_no_show_is_marked_on_the_arrival_date_at_the_night_audit(whole_file):
    # Row 123: Resort Hotel, lead_time 36, arrival 2015 July 4, 0+1 nights, 1 adult, BB,
    # Direct/Direct, room E, No Deposit, agent 250, adr 123, No-Show on 2015-07-04.
    confirmed, noshow = whole_file["named"][123].events
    assert confirmed["occurred_at"] == "2015-05-29T12:00:00+01:00"
    assert noshow["event_id"] == "hb-123-2"
    assert noshow["type"] == "noshow"
    assert noshow["occurred_at"] == "2015-07-04T23:00:00+01:00"
    assert noshow["order"]["version"] == 2
    assert noshow["order"]["paid"] is False
    assert noshow["order"]["cancellation"] is None
    line = noshow["order"]["items"][0]
    assert (line["status"], line["redeemed_at"], line["retail"]) == ("noshow", None, 12300)


def test_no_show_ignores_a_status_date_long_before_arrival(whole_file):
    # Row 7036: Resort Hotel, lead_time 181, arrival 2016 July 17, 2+5 nights, adr 152.86,
    # No-Show with reservation_status_date 2016-03-28, 111 days before arrival.
    _, noshow = whole_file["named"][7036].events
    assert noshow["occurred_at"] == "2016-07-17T23:00:00+01:00"
    # 152.86 EUR x 7 nights = 1070.02 EUR = 107002 cents.
    assert noshow["order"]["items"][0]["retail"] == 107002


def test_cancelled_non_refund_deposit_keeps_everything(whole_file):
    # Row 2134: Resort Hotel, lead_time 87, arrival 2015 October 3, 0+1 nights, 2 adults, BB,
    # Groups via TA/TO, room A, Non Refund, agent 96, adr 36.05, Canceled on 2015-08-12.
    confirmed, cancelled = whole_file["named"][2134].events
    assert confirmed["occurred_at"] == "2015-07-08T12:00:00+01:00"
    assert confirmed["order"]["paid"] is True
    assert cancelled["type"] == "cancelled"
    assert cancelled["occurred_at"] == "2015-08-12T12:00:00+01:00"
    assert cancelled["order"]["cancellation"] == {"refund": "NONE", "refund_amount": None}
    assert cancelled["order"]["paid"] is True
    line = cancelled["order"]["items"][0]
    assert (line["status"], line["retail"]) == ("confirmed", 3605)


def test_cancelled_without_deposit_is_a_full_refund_of_an_unpaid_order(whole_file):
    # Row 9: Resort Hotel, lead_time 85, arrival 2015 July 1, 0+3 nights, 2 adults, BB,
    # Online TA via TA/TO, room A, No Deposit, agent 240, adr 82, Canceled on 2015-05-06.
    confirmed, cancelled = whole_file["named"][9].events
    assert confirmed["occurred_at"] == "2015-04-07T12:00:00+01:00"
    assert cancelled["occurred_at"] == "2015-05-06T12:00:00+01:00"
    assert cancelled["order"]["cancellation"] == {"refund": "FULL", "refund_amount": None}
    assert cancelled["order"]["paid"] is False
    # 82 EUR x 3 nights = 246.00 EUR = 24600 cents.
    assert cancelled["order"]["items"][0]["retail"] == 24600


def test_cancellation_on_the_booking_day_lands_at_the_same_instant(whole_file):
    # Row 41: Resort Hotel, lead_time 45, arrival 2015 July 2, adr 117.81, Canceled on
    # 2015-05-18, which is the booking date (2015-07-02 minus 45 days).
    confirmed, cancelled = whole_file["named"][41].events
    assert confirmed["occurred_at"] == cancelled["occurred_at"] == "2015-05-18T12:00:00+01:00"
    assert landed_outcome([confirmed, cancelled]) == ("posted", None)


# Made-up rows: quirks the real file lacks, and the input forms


def test_cancellation_dated_before_the_booking_is_not_moved_and_landing_quarantines_it():
    # Booked 2016-02-29 (2016-03-10 minus 10 days), cancelled 2016-02-01.
    [record] = read(made_up(reservation_status="Canceled", reservation_status_date="2016-02-01"))
    confirmed, cancelled = record.events
    assert confirmed["occurred_at"] == "2016-02-29T12:00:00+00:00"
    assert cancelled["occurred_at"] == "2016-02-01T12:00:00+00:00"

    first = parse_event(confirmed)
    landed = LandedOrder(1, first.occurred_at, False)
    second = parse_event(cancelled)
    decision = decide_landing(
        second, content_hash(second), landed_hash_of_same_id=None, landed_order=landed
    )
    assert decision.outcome is Outcome.QUARANTINED
    assert decision.reason == LandingReason.EARLIER_THAN_LANDED.format(
        occurred_at="2016-02-01T12:00:00+00:00",
        last_occurred_at="2016-02-29T12:00:00+00:00",
        highest=1,
    )


@pytest.mark.parametrize(
    ("adr", "nights", "cents"),
    [
        ("75.5", "3", 22650),
        ("10.005", "1", 1000),  # 1000.5 cents: half to even gives 1000
        ("10.015", "1", 1002),  # 1001.5 cents: half to even gives 1002
        ("0.3333", "3", 100),  # 99.99 cents rounds once, on the total, to 100
        ("0", "5", 0),
    ],
)
def test_retail_is_rate_times_nights_rounded_half_even_once(adr, nights, cents):
    [record] = read(made_up(adr=adr, stays_in_weekend_nights="0", stays_in_week_nights=nights))
    assert record.events[0]["order"]["items"][0]["retail"] == cents


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"arrival_date_month": "Jul"}, "arrival_date_month 'Jul' is not an English month name"),
        ({"arrival_date_month": "7"}, "arrival_date_month '7' is not an English month name"),
        ({"arrival_date_day_of_month": "30", "arrival_date_month": "February"},
         "arrival date 2016 February 30 does not exist"),
        ({"adr": "abc"}, "adr 'abc' is not a number"),
        ({"adr": "NaN"}, "adr 'NaN' is not a finite number"),
        ({"adults": "two"}, "adults 'two' is not a whole number"),
        ({"children": ""}, "children '' is not a whole number"),
        ({"reservation_status": "Waiting"}, "unknown reservation_status 'Waiting'"),
        ({"deposit_type": "Partial"}, "unknown deposit_type 'Partial'"),
        ({"reservation_status": "Canceled", "reservation_status_date": "2016-13-01"},
         "reservation_status_date '2016-13-01' is not a date (YYYY-MM-DD)"),
        ({"hotel": " "}, "hotel is empty"),
    ],
)  # fmt: skip
def test_row_that_cannot_become_events_is_rejected_with_its_reason(changes, reason):
    assert read(made_up(**changes)) == [HotelRejection(1, reason)]


def test_row_with_too_few_fields_is_rejected_and_the_next_row_goes_on():
    text = made_up() + "City Hotel,0,10\n" + MADE_UP_ROW + "\n"
    records = read(text)
    assert [type(record) for record in records] == [HotelBooking, HotelRejection, HotelBooking]
    assert records[1] == HotelRejection(2, "has 3 fields where the header has 32")
    assert records[2].events[0]["order"]["id"] == "hotel-3"


def test_header_without_a_needed_column_stops_the_file():
    text = HEADER.replace(",adr,", ",rate,") + "\n" + MADE_UP_ROW + "\n"
    with pytest.raises(AdapterError, match="the header lacks the columns adr"):
        read(text)


def test_header_naming_a_needed_column_twice_stops_the_file():
    text = HEADER.replace(",adr,", ",adr,adr,") + "\n" + MADE_UP_ROW + "\n"
    with pytest.raises(AdapterError, match="the header names the columns adr more than once"):
        read(text)


def test_byte_order_mark_before_the_header_is_not_part_of_its_first_column(tmp_path):
    path = tmp_path / "bookings.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (made_up() + MADE_UP_ROW + "\n").encode())
    records = list(iter_hotel_booking_events(path))
    assert [record.events[0]["order"]["destination"] for record in records] == [
        "City Hotel",
        "City Hotel",
    ]


def test_gzip_file_object_and_path_give_the_same_events(tmp_path):
    text = made_up() + MADE_UP_ROW + "\n"
    path = tmp_path / "bookings.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    from_path = list(iter_hotel_booking_events(path))
    with path.open("rb") as binary:
        from_binary = list(iter_hotel_booking_events(binary))
        assert not binary.closed
    assert from_path == from_binary == read(text)
    assert [record.events[0]["event_id"] for record in from_path] == ["hb-1-1", "hb-2-1"]


def test_exact_duplicate_rows_are_separate_bookings_with_their_own_ids():
    first, second = read(made_up() + MADE_UP_ROW + "\n")
    assert first.events[0]["order"]["id"] == "hotel-1"
    assert second.events[0]["order"]["id"] == "hotel-2"
    assert second.events[1]["event_id"] == "hb-2-2"
    assert second.events[0]["order"]["reference"] == "HB000002"


def test_events_of_a_row_share_no_dict():
    row = dict(zip(HEADER.split(","), MADE_UP_ROW.split(","), strict=True))
    confirmed, redeemed = booking_events(7, row)
    redeemed["order"]["reseller"]["tags"].append("changed")
    redeemed["order"]["items"][0]["product_tags"].append("changed")
    assert confirmed["order"]["reseller"]["tags"] == []
    assert confirmed["order"]["items"][0]["product_tags"] == []
