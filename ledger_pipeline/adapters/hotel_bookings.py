"""Hotel bookings (the "Hotel booking demand" CSV) turned into order events.

Each CSV data row is one booking of one room for one stay, and becomes one order of one line
with two versions: version 1 `confirmed` on the booking date, version 2 the outcome
(`redeemed`, `noshow` or `cancelled`). The file has no booking id and holds exact duplicate
rows, so every row is its own booking, named by its 1-based data row number `<row>` (the
header is not counted). Times are local to the hotels, in Europe/Lisbon, written with their
UTC offset (+00:00 in winter, +01:00 in summer).

Column by column:

- row number: order id `hotel-<row>`, order reference `HB<row, zero-padded to 6 digits>`,
  event ids `hb-<row>-1` and `hb-<row>-2`. The same file always gives the same ids.
- `hotel` ("Resort Hotel", "City Hotel"): the order's destination and the line's product,
  so that a registry can take one hotel.
- `arrival_date_year`, `arrival_date_month` (an English month name, "July"),
  `arrival_date_day_of_month`: the arrival date, the line's `travel_date`.
- `lead_time` (days): the booking date is the arrival date minus `lead_time` days; the order
  is confirmed at 12:00 local time that day.
- `stays_in_weekend_nights` + `stays_in_week_nights`: nights, the line's `quantity` in the
  unit "room night". A stay of zero nights (a day use) has quantity 0.
- `adults` + `children` + `babies`: the line's `pax_per_unit` ("NA" children count as 0).
- `reserved_room_type` and `meal`: the line's option, "Room A, bed and breakfast" (BB bed
  and breakfast, HB half board, FB full board, SC self catering, "Undefined" meal
  undefined; any other meal code is kept as written).
- `customer_type` (Transient, Contract, Group, Transient-Party): the line's `sale_type`.
- `adr` (average daily rate, EUR, tax included): retail = adr x nights, in euro cents,
  computed with `Decimal` from the CSV text, never through a float. The file's rates have at
  most 2 decimals, so the product is exact; a rate with more decimals is rounded half to
  even once, on the line's total. A negative `adr` is passed on as a negative retail: the
  event parser quarantines the booking with its reason (the adapter judges no amounts).
  An `adr` of 0 gives a total of 0, which posts nothing.
- no tax, discount, adjustment or commission data: all 0. Currency EUR, precision 2.
- `agent`: the reseller `{"id": "agent-<n>", "name": "Agent <n>", "band": null, "channel":
  <distribution_channel>, "tags": [], "collects_payment": false}`; "NULL" is no reseller.
- `distribution_channel`: the order's `channel`; `market_segment`: the order's `source`.
- `deposit_type`: "No Deposit" leaves the order unpaid (`paid: false`) until check-in;
  "Non Refund" and "Refundable" are paid at booking.
- `reservation_status` and `reservation_status_date`:
  - Check-Out: a `redeemed` event on the arrival date at 14:00 local (check-in time); the
    line is `redeemed` with `redeemed_at` at that time, and the order is paid.
  - No-Show: a `noshow` event on the arrival date at 23:00 local (the night audit); the line
    is `noshow`; `paid` stays as it was (the data holds no no-show charge).
  - Canceled: a `cancelled` event at 12:00 local on `reservation_status_date`, refund NONE
    for a "Non Refund" deposit and FULL otherwise; the line keeps its status.
  The status date is read only for cancellations. A cancellation dated before the booking
  is not moved: its event is earlier than the confirmation, so the landing rules quarantine
  it (the data holds none).
- `is_canceled`, `arrival_date_week_number`, `country`, `is_repeated_guest`,
  `previous_cancellations`, `previous_bookings_not_canceled`, `assigned_room_type`,
  `booking_changes`, `company`, `days_in_waiting_list`, `required_car_parking_spaces`,
  `total_of_special_requests`: not used (no ledger field holds them).

A row that cannot become events at all (a missing field, a number or date that does not
parse, an unknown month name, reservation status or deposit type) is a `HotelRejection` with
its row number and reason; the rest of the file goes on.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import gzip
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from ledger_pipeline.errors import AdapterError

HOTEL_TIME_ZONE = ZoneInfo("Europe/Lisbon")
BOOKING_TIME = dt.time(12)
CHECK_IN_TIME = dt.time(14)
NIGHT_AUDIT_TIME = dt.time(23)
CANCELLATION_TIME = dt.time(12)

CURRENCY = "EUR"
CURRENCY_PRECISION = 2
UNIT = "room night"
LINE_ID = "room"

# Spelled out, not from `calendar`, whose month names follow the locale.
MONTH_NAMES = (
    "January February March April May June July August September October November December"
).split()
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, start=1)}
MEALS = {
    "BB": "bed and breakfast",
    "HB": "half board",
    "FB": "full board",
    "SC": "self catering",
    "Undefined": "meal undefined",
}
UNPAID_DEPOSIT = "No Deposit"
NON_REFUNDABLE_DEPOSIT = "Non Refund"
DEPOSIT_TYPES = {UNPAID_DEPOSIT, NON_REFUNDABLE_DEPOSIT, "Refundable"}
STATUSES = {"Check-Out", "No-Show", "Canceled"}
NO_AGENT = {"NULL", ""}
WHOLE_NUMBER = re.compile(r"\s*-?[0-9]+\s*")

COLUMNS = (
    "hotel",
    "lead_time",
    "arrival_date_year",
    "arrival_date_month",
    "arrival_date_day_of_month",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "babies",
    "meal",
    "market_segment",
    "distribution_channel",
    "reserved_room_type",
    "deposit_type",
    "agent",
    "customer_type",
    "adr",
    "reservation_status",
    "reservation_status_date",
)


@dataclass(frozen=True)
class HotelBooking:
    """The order events of one CSV row, in order: `confirmed`, then the outcome."""

    row: int
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class HotelRejection:
    """A CSV row that cannot become order events, with the reason."""

    row: int
    reason: str


HotelRecord = HotelBooking | HotelRejection


def iter_hotel_booking_events(path_or_file: str | os.PathLike | IO) -> Iterator[HotelRecord]:
    """Streams the bookings of a hotel bookings CSV, one record per data row.

    Args:
        path_or_file: a path (gzip when it ends in `.gz`, plain CSV otherwise), a binary file
            of gzip data, or a text file of CSV.

    Raises:
        AdapterError: the header lacks a column the mapping needs, or names one twice.
    """
    with hotel_rows(path_or_file) as (header, rows):
        for row_number, values in rows:
            yield hotel_record(row_number, values, header)


@contextlib.contextmanager
def hotel_rows(
    path_or_file: str | os.PathLike | IO,
) -> Iterator[tuple[tuple[str, ...], Iterator[tuple[int, list[str]]]]]:
    """The CSV's header and its data rows, each as (row number, values as written), read as
    they are iterated; `hotel_record` makes a row's record. Parsing the rows apart from reading
    them lets a large import read them in this process and parse them in worker processes.

    Raises:
        AdapterError: the header lacks a column the mapping needs, or names one twice.
    """
    with _open_text(path_or_file) as text:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            raise AdapterError("the file is empty: expected a header row")
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise AdapterError(f"the header lacks the columns {', '.join(missing)}")
        repeated = [column for column in COLUMNS if header.count(column) > 1]
        if repeated:
            names = ", ".join(repeated)
            raise AdapterError(f"the header names the columns {names} more than once")
        yield tuple(header), enumerate(reader, start=1)


def hotel_record(row_number: int, values: Sequence[str], header: Sequence[str]) -> HotelRecord:
    """The record of one data row, given as the values of the columns the header names: its
    booking's events, or the reason it cannot become events."""
    if len(values) != len(header):
        reason = f"has {len(values)} fields where the header has {len(header)}"
        return HotelRejection(row_number, reason)
    try:
        events = booking_events(row_number, dict(zip(header, values, strict=True)))
    except AdapterError as error:
        return HotelRejection(row_number, error.reason)
    return HotelBooking(row_number, events)


def booking_events(row_number: int, row: Mapping[str, str]) -> list[dict[str, Any]]:
    """The order events of one CSV row, given as a mapping of column name to text.

    Raises:
        AdapterError: the row cannot become events (see the module's docstring).
    """
    status = row["reservation_status"]
    if status not in STATUSES:
        raise AdapterError(f"unknown reservation_status {status!r}", f"row {row_number}")
    deposit_type = row["deposit_type"]
    if deposit_type not in DEPOSIT_TYPES:
        raise AdapterError(f"unknown deposit_type {deposit_type!r}", f"row {row_number}")

    arrival_date = _arrival_date(row, row_number)
    confirmed = _confirmed_event(
        row_number, row, arrival_date=arrival_date, paid=deposit_type != UNPAID_DEPOSIT
    )

    if status == "Check-Out":
        checked_in_at = _local(arrival_date, CHECK_IN_TIME)
        outcome = _next_event(
            row_number,
            confirmed,
            type_="redeemed",
            occurred_at=checked_in_at,
            paid=True,
            line_status="redeemed",
            redeemed_at=checked_in_at,
        )
    elif status == "No-Show":
        outcome = _next_event(
            row_number,
            confirmed,
            type_="noshow",
            occurred_at=_local(arrival_date, NIGHT_AUDIT_TIME),
            line_status="noshow",
        )
    else:
        cancelled_on = _date(row, "reservation_status_date", row_number)
        refund = "NONE" if deposit_type == NON_REFUNDABLE_DEPOSIT else "FULL"
        outcome = _next_event(
            row_number,
            confirmed,
            type_="cancelled",
            occurred_at=_local(cancelled_on, CANCELLATION_TIME),
            cancellation={"refund": refund, "refund_amount": None},
        )
    return [confirmed, outcome]


def _confirmed_event(
    row_number: int, row: Mapping[str, str], *, arrival_date: dt.date, paid: bool
) -> dict[str, Any]:
    """Version 1 of the order, confirmed at noon on the booking date."""
    hotel = row["hotel"].strip()
    if not hotel:
        raise AdapterError("hotel is empty", f"row {row_number}")

    booking_date = arrival_date - dt.timedelta(days=_whole_number(row, "lead_time", row_number))
    nights = _whole_number(row, "stays_in_weekend_nights", row_number) + _whole_number(
        row, "stays_in_week_nights", row_number
    )
    children = 0 if row["children"] == "NA" else _whole_number(row, "children", row_number)
    pax = (
        _whole_number(row, "adults", row_number)
        + children
        + _whole_number(row, "babies", row_number)
    )
    meal = MEALS.get(row["meal"], row["meal"])
    channel = row["distribution_channel"]

    reseller = None
    if row["agent"] not in NO_AGENT:
        reseller = {
            "id": f"agent-{row['agent']}",
            "name": f"Agent {row['agent']}",
            "band": None,
            "channel": channel,
            "tags": [],
            "collects_payment": False,
        }
    line = {
        "id": LINE_ID,
        "product": hotel,
        "product_tags": [],
        "option": f"Room {row['reserved_room_type']}, {meal}",
        "unit": UNIT,
        "sale_type": row["customer_type"],
        "package_product": None,
        "package_option": None,
        "quantity": nights,
        "pax_per_unit": pax,
        "travel_date": arrival_date.isoformat(),
        "status": "confirmed",
        "redeemed_at": None,
        "retail": _retail(row, nights, row_number),
        "discount": 0,
        "adjustment": 0,
        "tax": 0,
        "commission": 0,
        "commission_adjustment": 0,
    }
    order = {
        "id": f"hotel-{row_number}",
        "version": 1,
        "reference": f"HB{row_number:06d}",
        "destination": hotel,
        "test": False,
        "channel": channel,
        "source": row["market_segment"],
        "currency": CURRENCY,
        "currency_precision": CURRENCY_PRECISION,
        "paid": paid,
        "reseller": reseller,
        "promotion": None,
        "cancellation": None,
        "items": [line],
    }
    return {
        "event_id": f"hb-{row_number}-1",
        "type": "confirmed",
        "occurred_at": _local(booking_date, BOOKING_TIME),
        "order": order,
    }


def _next_event(
    row_number: int,
    confirmed: dict[str, Any],
    *,
    type_: str,
    occurred_at: str,
    paid: bool | None = None,
    line_status: str = "confirmed",
    redeemed_at: str | None = None,
    cancellation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Version 2 of the order: a copy of version 1 with the outcome; no dict is shared."""
    first = confirmed["order"]
    line = {
        **first["items"][0],
        "product_tags": [],
        "status": line_status,
        "redeemed_at": redeemed_at,
    }
    reseller = first["reseller"] and {**first["reseller"], "tags": []}
    order = {
        **first,
        "version": 2,
        "paid": first["paid"] if paid is None else paid,
        "reseller": reseller,
        "cancellation": cancellation,
        "items": [line],
    }
    return {
        "event_id": f"hb-{row_number}-2",
        "type": type_,
        "occurred_at": occurred_at,
        "order": order,
    }


@functools.lru_cache(maxsize=4096)
def _local(day: dt.date, time: dt.time) -> str:
    """A local time of the hotels, with its UTC offset of that day."""
    return dt.datetime.combine(day, time, tzinfo=HOTEL_TIME_ZONE).isoformat()


def _whole_number(row: Mapping[str, str], column: str, row_number: int) -> int:
    text = row[column]
    if not (text.isdigit() and text.isascii()) and not WHOLE_NUMBER.fullmatch(text):
        raise AdapterError(f"{column} {row[column]!r} is not a whole number", f"row {row_number}")
    return int(text)


def _arrival_date(row: Mapping[str, str], row_number: int) -> dt.date:
    month_name = row["arrival_date_month"]
    if month_name not in MONTHS:
        raise AdapterError(
            f"arrival_date_month {month_name!r} is not an English month name", f"row {row_number}"
        )
    year = _whole_number(row, "arrival_date_year", row_number)
    day = _whole_number(row, "arrival_date_day_of_month", row_number)
    try:
        return dt.date(year, MONTHS[month_name], day)
    except ValueError:
        raise AdapterError(
            f"arrival date {year} {month_name} {day} does not exist", f"row {row_number}"
        ) from None


def _date(row: Mapping[str, str], column: str, row_number: int) -> dt.date:
    try:
        return dt.date.fromisoformat(row[column])
    except ValueError:
        raise AdapterError(
            f"{column} {row[column]!r} is not a date (YYYY-MM-DD)", f"row {row_number}"
        ) from None


def _retail(row: Mapping[str, str], nights: int, row_number: int) -> int:
    """adr x nights in minor units, exact; more than 2 decimals round half to even, once."""
    try:
        rate = Decimal(row["adr"].strip())
    except InvalidOperation:
        raise AdapterError(f"adr {row['adr']!r} is not a number", f"row {row_number}") from None
    if not rate.is_finite():
        raise AdapterError(f"adr {row['adr']!r} is not a finite number", f"row {row_number}")
    minor = (rate * nights).scaleb(CURRENCY_PRECISION)
    return int(minor.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@contextlib.contextmanager
def _open_text(path_or_file: str | os.PathLike | IO) -> Iterator[IO[str]]:
    """The CSV as text, whatever was given, less a UTF-8 byte order mark at its start (as
    spreadsheet programs write); a file the caller passed is left open."""
    if isinstance(path_or_file, str | os.PathLike):
        path = Path(path_or_file)
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as text:
                yield text
        else:
            with path.open(encoding="utf-8-sig", newline="") as text:
                yield text
        return

    if isinstance(path_or_file.read(0), bytes):
        # Closing the wrapper closes the GzipFile, which leaves the caller's file open.
        binary = gzip.GzipFile(fileobj=path_or_file)
        with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
            yield text
        return

    yield path_or_file
