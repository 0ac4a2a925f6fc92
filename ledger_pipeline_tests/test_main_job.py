"""The main job end to end on a slice of the real hotel bookings (issue 7).

The slice is the header and real rows of `data/hotel_bookings.csv.gz` whose bookings were made
from 2017-06-01 on, so that every event falls in 2017-06-01..2017-08-31 and Dagster has about
90 dates to materialize. The go-live date is 2017-07-10: the registries receive the events
from that date on, and the history before it is posted without deliveries.

Six named rows come first, so their order ids are `hotel-1` to `hotel-6` (the adapter numbers
the rows of the file it reads); the real file's row number of each is in `NAMED_ROWS`. Every
expected payload below is worked out by hand from the row's values written beside it, with
the posting rules of docs/ledger.md: no tax, no commission and no reseller collecting, so an
event posts only the collector (cash if paid, customer_receivable if not) and the income
account (deferred_revenue while the stay is ahead, revenue once served or kept).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
import socket
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from beancount import loader
from beancount.core import data as beancount_data
from standardwebhooks import Webhook
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.errors import ConfigurationError
from ledger_pipeline.main_job import run_main_job
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore

REPO_ROOT = Path(__file__).resolve().parents[1]
HOTEL_FILE = REPO_ROOT / "data" / "hotel_bookings.csv.gz"
GO_LIVE = dt.date(2017, 7, 10)
FIRST_BOOKING_DATE = dt.date(2017, 6, 1)
# Every FILLER_EVERY-th other booking made from FIRST_BOOKING_DATE on joins the slice: 30 rows.
FILLER_EVERY = 123
MONTHS = {
    name: number
    for number, name in enumerate(
        "January February March April May June July August September October November "
        "December".split(),
        start=1,
    )
}

# Real row number (1-based data row of the real file) -> the columns the expectations below
# are worked out from. The slice puts these rows first, in this order: slice row n is hotel-n.
NAMED_ROWS = {
    # hotel-1: City Hotel, No Deposit, checked out. Booked 2017-07-26 (arrival 2017-08-09,
    # lead_time 14), 0 weekend + 3 week nights at adr 275.9: 3 x 275.90 = 827.70 EUR.
    117922: {
        "hotel": "City Hotel",
        "lead_time": "14",
        "arrival_date_year": "2017",
        "arrival_date_month": "August",
        "arrival_date_day_of_month": "9",
        "stays_in_weekend_nights": "0",
        "stays_in_week_nights": "3",
        "adr": "275.9",
        "deposit_type": "No Deposit",
        "reservation_status": "Check-Out",
        "distribution_channel": "TA/TO",
    },
    # hotel-2: City Hotel, No Deposit, checked out; booked 2017-06-29 (arrival 2017-08-13,
    # lead_time 45), before the go-live date, so only its check-in reaches the registries.
    # 2 weekend + 2 week nights at adr 109.44: 4 x 109.44 = 437.76 EUR.
    118265: {
        "hotel": "City Hotel",
        "lead_time": "45",
        "arrival_date_year": "2017",
        "arrival_date_month": "August",
        "arrival_date_day_of_month": "13",
        "stays_in_weekend_nights": "2",
        "stays_in_week_nights": "2",
        "adr": "109.44",
        "deposit_type": "No Deposit",
        "reservation_status": "Check-Out",
        "distribution_channel": "TA/TO",
    },
    # hotel-3: City Hotel, "Non Refund" deposit (paid at booking), cancelled: refund NONE.
    # Booked 2017-07-10 (arrival 2017-07-16, lead_time 6), cancelled 2017-07-13.
    # 1 weekend + 0 week nights at adr 135: 135.00 EUR.
    71953: {
        "hotel": "City Hotel",
        "lead_time": "6",
        "arrival_date_year": "2017",
        "arrival_date_month": "July",
        "arrival_date_day_of_month": "16",
        "stays_in_weekend_nights": "1",
        "stays_in_week_nights": "0",
        "adr": "135",
        "deposit_type": "Non Refund",
        "reservation_status": "Canceled",
        "reservation_status_date": "2017-07-13",
        "distribution_channel": "TA/TO",
    },
    # hotel-4: City Hotel, "Refundable" deposit (paid at booking), cancelled: refund FULL.
    # Booked 2017-07-17 (arrival 2017-07-30, lead_time 13), cancelled 2017-07-27.
    # 2 weekend + 1 week nights at adr 162.67: 3 x 162.67 = 488.01 EUR.
    72533: {
        "hotel": "City Hotel",
        "lead_time": "13",
        "arrival_date_year": "2017",
        "arrival_date_month": "July",
        "arrival_date_day_of_month": "30",
        "stays_in_weekend_nights": "2",
        "stays_in_week_nights": "1",
        "adr": "162.67",
        "deposit_type": "Refundable",
        "reservation_status": "Canceled",
        "reservation_status_date": "2017-07-27",
        "distribution_channel": "TA/TO",
    },
    # hotel-5: City Hotel, No Deposit (unpaid), cancelled: refund FULL.
    # Booked 2017-07-29 (arrival 2017-08-26, lead_time 28), cancelled 2017-08-07.
    # 1 weekend + 1 week night at adr 114.5: 2 x 114.50 = 229.00 EUR.
    73556: {
        "hotel": "City Hotel",
        "lead_time": "28",
        "arrival_date_year": "2017",
        "arrival_date_month": "August",
        "arrival_date_day_of_month": "26",
        "stays_in_weekend_nights": "1",
        "stays_in_week_nights": "1",
        "adr": "114.5",
        "deposit_type": "No Deposit",
        "reservation_status": "Canceled",
        "reservation_status_date": "2017-08-07",
        "distribution_channel": "TA/TO",
    },
    # hotel-6: Resort Hotel, "Non Refund" deposit (paid at booking), cancelled: refund NONE.
    # Booked 2017-07-28 (arrival 2017-08-05, lead_time 8), cancelled 2017-08-01.
    # 0 weekend + 1 week night at adr 330: 330.00 EUR. Not for city-hotel; channels takes it.
    13213: {
        "hotel": "Resort Hotel",
        "lead_time": "8",
        "arrival_date_year": "2017",
        "arrival_date_month": "August",
        "arrival_date_day_of_month": "5",
        "stays_in_weekend_nights": "0",
        "stays_in_week_nights": "1",
        "adr": "330",
        "deposit_type": "Non Refund",
        "reservation_status": "Canceled",
        "reservation_status_date": "2017-08-01",
        "distribution_channel": "TA/TO",
    },
}


def _city(account, quantity, debit, credit, description):
    """An entry of a city-hotel summary: grouped by product and currency."""
    return {
        "ledger_code": None,
        "account": account,
        "currency": "EUR",
        "quantity": quantity,
        "debit": debit,
        "credit": credit,
        "description": description,
        "product": "City Hotel",
    }


def _channel(account, quantity, debit, credit, description, date):
    """An entry of a channels summary: grouped by order channel and accounting date."""
    return {
        "ledger_code": None,
        "account": account,
        "currency": "EUR",
        "quantity": quantity,
        "debit": debit,
        "credit": credit,
        "description": description,
        "order_channel": "TA/TO",
        "date": date,
    }


STAY = "City Hotel room night"
RESORT_STAY = "Resort Hotel room night"

# The city-hotel summaries of the named bookings: (order, event) -> (order_version,
# occurred_at in UTC, entries). Lisbon is UTC+1 in summer: a booking at 12:00 local is 11:00Z,
# a check-in at 14:00 local is 13:00Z, a cancellation at 12:00 local is 11:00Z. The stays are
# ahead of every booking date (lead_time > 0), so a booking credits deferred_revenue.
CITY_HOTEL_SUMMARIES = {
    # hotel-1 booked unpaid: Dr customer_receivable 827.70, Cr deferred_revenue 827.70 (3).
    ("hotel-1", "confirmed"): (
        1,
        "2017-07-26T11:00:00Z",
        [
            _city("customer_receivable", 0, "827.70", "0.00", "Customer receivable"),
            _city("deferred_revenue", 3, "0.00", "827.70", STAY),
        ],
    ),
    # hotel-1 checked in (paid, served): the receivable becomes cash, the deferral revenue.
    ("hotel-1", "redeemed"): (
        2,
        "2017-08-09T13:00:00Z",
        [
            _city("cash", 0, "827.70", "0.00", "Cashflow"),
            _city("customer_receivable", 0, "0.00", "827.70", "Customer receivable"),
            _city("deferred_revenue", -3, "827.70", "0.00", STAY),
            _city("revenue", 3, "0.00", "827.70", STAY),
        ],
    ),
    # hotel-2 checked in; its booking (2017-06-29) was history, posted before the registry.
    ("hotel-2", "redeemed"): (
        2,
        "2017-08-13T13:00:00Z",
        [
            _city("cash", 0, "437.76", "0.00", "Cashflow"),
            _city("customer_receivable", 0, "0.00", "437.76", "Customer receivable"),
            _city("deferred_revenue", -4, "437.76", "0.00", STAY),
            _city("revenue", 4, "0.00", "437.76", STAY),
        ],
    ),
    # hotel-3 booked and paid: Dr cash 135.00, Cr deferred_revenue 135.00 (1 night).
    ("hotel-3", "confirmed"): (
        1,
        "2017-07-10T11:00:00Z",
        [
            _city("cash", 0, "135.00", "0.00", "Cashflow"),
            _city("deferred_revenue", 1, "0.00", "135.00", STAY),
        ],
    ),
    # hotel-3 cancelled, refund NONE: the hotel keeps the money, the stay becomes revenue;
    # cash stays as it is.
    ("hotel-3", "cancelled"): (
        2,
        "2017-07-13T11:00:00Z",
        [
            _city("deferred_revenue", -1, "135.00", "0.00", STAY),
            _city("revenue", 1, "0.00", "135.00", STAY),
        ],
    ),
    # hotel-4 booked and paid: Dr cash 488.01, Cr deferred_revenue 488.01 (3 nights).
    ("hotel-4", "confirmed"): (
        1,
        "2017-07-17T11:00:00Z",
        [
            _city("cash", 0, "488.01", "0.00", "Cashflow"),
            _city("deferred_revenue", 3, "0.00", "488.01", STAY),
        ],
    ),
    # hotel-4 cancelled, refund FULL: everything reversed, the cash goes back.
    ("hotel-4", "cancelled"): (
        2,
        "2017-07-27T11:00:00Z",
        [
            _city("cash", 0, "0.00", "488.01", "Cashflow"),
            _city("deferred_revenue", -3, "488.01", "0.00", STAY),
        ],
    ),
    # hotel-5 booked unpaid: Dr customer_receivable 229.00, Cr deferred_revenue 229.00 (2).
    ("hotel-5", "confirmed"): (
        1,
        "2017-07-29T11:00:00Z",
        [
            _city("customer_receivable", 0, "229.00", "0.00", "Customer receivable"),
            _city("deferred_revenue", 2, "0.00", "229.00", STAY),
        ],
    ),
    # hotel-5 cancelled, refund FULL: the receivable and the deferral are reversed.
    ("hotel-5", "cancelled"): (
        2,
        "2017-08-07T11:00:00Z",
        [
            _city("customer_receivable", 0, "0.00", "229.00", "Customer receivable"),
            _city("deferred_revenue", -2, "229.00", "0.00", STAY),
        ],
    ),
}

# The channels summaries of the Resort Hotel booking (hotel-6), which city-hotel never gets:
# booked and paid 2017-07-28 12:00 local, cancelled 2017-08-01 12:00 local with refund NONE.
RESORT_CHANNEL_SUMMARIES = {
    ("hotel-6", "confirmed"): (
        1,
        "2017-07-28T11:00:00Z",
        [
            _channel("cash", 0, "330.00", "0.00", "Cashflow", "2017-07-28"),
            _channel("deferred_revenue", 1, "0.00", "330.00", RESORT_STAY, "2017-07-28"),
        ],
    ),
    ("hotel-6", "cancelled"): (
        2,
        "2017-08-01T11:00:00Z",
        [
            _channel("deferred_revenue", -1, "330.00", "0.00", RESORT_STAY, "2017-08-01"),
            _channel("revenue", 1, "0.00", "330.00", RESORT_STAY, "2017-08-01"),
        ],
    ),
}


# Fixtures


def _booking_date(row: dict[str, str]) -> dt.date:
    arrival = dt.date(
        int(row["arrival_date_year"]),
        MONTHS[row["arrival_date_month"]],
        int(row["arrival_date_day_of_month"]),
    )
    return arrival - dt.timedelta(days=int(row["lead_time"]))


@pytest.fixture(scope="module")
def hotel_slice(tmp_path_factory) -> Path:
    """The header, the named rows (in NAMED_ROWS' order), then every FILLER_EVERY-th other
    booking made from FIRST_BOOKING_DATE on, as written in the real file."""
    named: dict[int, list[str]] = {}
    fillers: list[list[str]] = []
    candidates = 0
    with gzip.open(HOTEL_FILE, "rt", encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        for number, values in enumerate(reader, start=1):
            row = dict(zip(header, values, strict=True))
            if number in NAMED_ROWS:
                named[number] = values
                expected = NAMED_ROWS[number]
                assert {name: row[name] for name in expected} == expected, number
            elif _booking_date(row) >= FIRST_BOOKING_DATE:
                candidates += 1
                if candidates % FILLER_EVERY == 0:
                    fillers.append(values)
    assert len(named) == len(NAMED_ROWS)

    path = tmp_path_factory.mktemp("slice") / "hotel_slice.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(named[number] for number in NAMED_ROWS)
        writer.writerows(fillers)
    return path


def _live_events(path: Path) -> dict[str, int]:
    """Per hotel, the events of the slice on or after the go-live date that post entries,
    read from the CSV here, not from the ledger: of a stay whose adr x nights is not 0, the
    booking (on its booking date), and the check-in or no-show (on the arrival date) or the
    cancellation (on its status date). The one outcome that posts nothing is a "Non Refund"
    cancellation of a stay booked on its arrival date: revenue from the booking on, it stays
    revenue."""
    counts = {"City Hotel": 0, "Resort Hotel": 0}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as source:
        for row in csv.DictReader(source):
            nights = int(row["stays_in_weekend_nights"]) + int(row["stays_in_week_nights"])
            if Decimal(row["adr"]) * nights == 0:
                continue
            booked = _booking_date(row)
            outcome = booked + dt.timedelta(days=int(row["lead_time"]))
            outcome_posts = True
            if row["reservation_status"] == "Canceled":
                outcome = dt.date.fromisoformat(row["reservation_status_date"])
                outcome_posts = row["deposit_type"] != "Non Refund" or row["lead_time"] != "0"
            counts[row["hotel"]] += (booked >= GO_LIVE) + (outcome_posts and outcome >= GO_LIVE)
    return counts


def _free_ports(count: int) -> tuple[int, ...]:
    """Ports the system hands out for port 0, held open together so that they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for held in sockets:
            held.bind(("127.0.0.1", 0))
        return tuple(held.getsockname()[1] for held in sockets)
    finally:
        for held in sockets:
            held.close()


@pytest.fixture
def environment(tmp_path, monkeypatch) -> Settings:
    """A SQLite ledger in Europe/Lisbon and a Dagster home set up as scripts/demo-env does for
    SQLite (deploy/dagster.yaml, telemetry off)."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with (home / "dagster.yaml").open("a", encoding="utf-8") as config:
        config.write("\ntelemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("LEDGER_TIMEZONE", "Europe/Lisbon")
    # The job lets its own deliveries reach its loopback receivers, whatever this says.
    monkeypatch.delenv("LEDGER_ALLOW_PRIVATE_URLS", raising=False)
    return Settings.from_environment()


def _received(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _summaries_of(records: list[dict], orders: set[str]) -> dict[tuple[str, str], dict]:
    """The summaries received for those orders, by (order, event); each received once."""
    found: dict[tuple[str, str], dict] = {}
    for record in records:
        body = record["body"]
        if body["order_id"] in orders:
            key = (body["order_id"], body["event"])
            assert key not in found, f"{key} received twice"
            found[key] = body
    return found


def _transactions(path: Path) -> dict[str, beancount_data.Transaction]:
    """The beancount file's transactions by narration, after checking it loads cleanly."""
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    transactions = [entry for entry in entries if isinstance(entry, beancount_data.Transaction)]
    by_narration = {transaction.narration: transaction for transaction in transactions}
    assert len(by_narration) == len(transactions), "a summary was booked twice"
    return by_narration


def _postings(transaction: beancount_data.Transaction) -> list[tuple[str, Decimal, str]]:
    return sorted(
        (posting.account, posting.units.number, posting.units.currency)
        for posting in transaction.postings
    )


# The test


def test_main_job_delivers_hand_worked_summaries_and_a_second_run_changes_nothing(
    hotel_slice, environment, tmp_path
):
    out = tmp_path / "out"
    ports = _free_ports(2)

    def run():
        return run_main_job(
            environment, hotel_slice, out, go_live=GO_LIVE, receiver_ports=ports, days_per_run=400
        )

    first = run()

    # 36 bookings, two events each; every event lands, and the run wrote the ledger.
    assert first.landing.bookings == 36
    assert first.landing.landing.accepted == 72
    assert first.first_date >= FIRST_BOOKING_DATE
    assert first.last_date <= dt.date(2017, 8, 31)
    assert first.changed_tables != []
    assert [change.action for change in first.registry_changes] == ["created", "created"]

    city = _received(first.received["city-hotel"])
    channels = _received(first.received["channels"])
    # One summary per event from the go-live date on: city-hotel gets the City Hotel's,
    # channels every hotel's.
    live = _live_events(hotel_slice)
    assert len(city) == live["City Hotel"]
    assert len(channels) == live["City Hotel"] + live["Resort Hotel"]
    # Every delivery verified (the receiver checks the signature with standardwebhooks) and
    # was accepted once.
    assert {record["status"] for record in city + channels} == {200}
    assert not any(record["duplicate"] for record in city + channels)

    # city-hotel takes only City Hotel orders, and only their events from the go-live date on.
    assert {record["body"]["order_id"] for record in city} >= {f"hotel-{n}" for n in range(1, 6)}
    assert "hotel-6" not in {record["body"]["order_id"] for record in city}
    for record in city:
        assert record["body"]["occurred_at"] >= "2017-07-09T23:00:00Z"  # 2017-07-10 in Lisbon
        assert {entry["product"] for entry in record["body"]["ledger_entries"]} == {"City Hotel"}

    named_city = _summaries_of(city, {f"hotel-{n}" for n in range(1, 7)})
    assert set(named_city) == set(CITY_HOTEL_SUMMARIES)  # not hotel-2's history booking
    for (order, event), (version, occurred_at, entries) in CITY_HOTEL_SUMMARIES.items():
        summary = named_city[order, event]
        assert summary["order_version"] == version, (order, event)
        assert summary["occurred_at"] == occurred_at, (order, event)
        assert summary["ledger_entries"] == entries, (order, event)

    named_channels = _summaries_of(channels, {"hotel-6"})
    assert set(named_channels) == set(RESORT_CHANNEL_SUMMARIES)
    for (order, event), (version, occurred_at, entries) in RESORT_CHANNEL_SUMMARIES.items():
        summary = named_channels[order, event]
        assert summary["order_version"] == version, (order, event)
        assert summary["occurred_at"] == occurred_at, (order, event)
        assert summary["ledger_entries"] == entries, (order, event)
    # channels takes the City Hotel events too.
    assert set(_summaries_of(channels, {"hotel-1"})) == {
        ("hotel-1", "confirmed"),
        ("hotel-1", "redeemed"),
    }

    # Each delivery's stored body, signed as the receiver recorded its headers, verifies with
    # the registry's secret under the reference implementation; the receiver got that body;
    # and every delivery of the ledger succeeded, once.
    with LedgerStore.from_settings(environment) as store:
        registries = RegistryStore(store)
        secrets = {name: registries.get(name).secret for name in ("city-hotel", "channels")}
        with store.engine.connect() as connection:
            stored = connection.execute(
                sa.select(
                    tables.deliveries.c.registry,
                    tables.deliveries.c.webhook_id,
                    tables.deliveries.c.body,
                    tables.deliveries.c.status,
                    tables.deliveries.c.attempts,
                )
            ).all()
    assert {(row.status, row.attempts) for row in stored} == {("succeeded", 1)}
    bodies = {(row.registry, row.webhook_id): row.body for row in stored}
    assert len(bodies) == len(city) + len(channels)
    for name, records in (("city-hotel", city), ("channels", channels)):
        webhook = Webhook(secrets[name])
        for record in records:
            body = bodies[name, record["headers"]["webhook-id"]]
            assert json.loads(body) == record["body"]
            webhook.verify(body, record["headers"])

    # The beancount files load without an error and hold the named bookings at their amounts.
    city_book = _transactions(first.beancount["city-hotel"])
    assert _postings(city_book["redeemed order hotel-1 version 2"]) == [
        ("Assets:Cash", Decimal("827.70"), "EUR"),
        ("Assets:CustomerReceivable", Decimal("-827.70"), "EUR"),
        ("Income:Revenue", Decimal("-827.70"), "EUR"),
        ("Liabilities:DeferredRevenue", Decimal("827.70"), "EUR"),
    ]
    assert city_book["redeemed order hotel-1 version 2"].date == dt.date(2017, 8, 9)
    assert _postings(city_book["cancelled order hotel-4 version 2"]) == [
        ("Assets:Cash", Decimal("-488.01"), "EUR"),
        ("Liabilities:DeferredRevenue", Decimal("488.01"), "EUR"),
    ]
    assert _postings(city_book["cancelled order hotel-3 version 2"]) == [
        ("Income:Revenue", Decimal("-135.00"), "EUR"),
        ("Liabilities:DeferredRevenue", Decimal("135.00"), "EUR"),
    ]
    assert "confirmed order hotel-2 version 1" not in city_book
    assert "cancelled order hotel-6 version 2" not in city_book
    channels_book = _transactions(first.beancount["channels"])
    assert _postings(channels_book["cancelled order hotel-6 version 2"]) == [
        ("Income:Revenue", Decimal("-330.00"), "EUR"),
        ("Liabilities:DeferredRevenue", Decimal("330.00"), "EUR"),
    ]
    assert channels_book["cancelled order hotel-6 version 2"].date == dt.date(2017, 8, 1)

    files = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}

    again = run()

    assert again.changed_tables == []
    assert again.landing.landing.accepted == 0
    assert again.landing.landing.duplicate == 72
    assert sum(delivery_pass.sent for delivery_pass in again.delivery_passes) == 0
    assert [change.action for change in again.registry_changes] == ["unchanged", "unchanged"]
    assert again.history_runs and again.live_runs  # every step ran again
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == files

    # The command, a third time with the same arguments, says so. One Dagster run of the
    # ledger for the history (June 2017 to 2017-07-09, under 400 dates), one from the go-live
    # date followed by one of both registries' aggregates, and one of each registry's
    # aggregates of the history.
    result = CliRunner().invoke(
        app,
        [
            "main-job",
            "--data",
            str(hotel_slice),
            "--out",
            str(out),
            "--go-live",
            GO_LIVE.isoformat(),
            "--receiver-ports",
            str(ports[0]),
            str(ports[1]),
        ],
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    landed = "bookings: 36 read; events 0 accepted, 72 already landed, 0 stale, 0 quarantined"
    assert landed in lines
    runs = "Dagster runs: 5 (ledger: 1 history, 1 from the go-live date; 3 of registry aggregates)"
    assert runs in lines
    assert "registry city-hotel: unchanged" in lines
    assert "deliveries this run: 0 sent, 0 succeeded" in lines
    assert "this run changed nothing in the ledger database (every table as it was)" in lines
    assert f"  city-hotel: {live['City Hotel']} succeeded" in lines
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == files


def test_main_job_command_has_help():
    result = CliRunner().invoke(app, ["main-job", "--help"])

    assert result.exit_code == 0, result.output
    assert "--go-live" in result.output
    assert "--receiver-ports" in result.output


def test_main_job_refuses_a_ledger_with_registries_of_its_own(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = Settings(database_url=database_url, timezone=ZoneInfo("Europe/Lisbon"))
    with LedgerStore.from_settings(settings) as store:
        RegistryStore(store).create(Registry(name="books", url="https://books.example/hooks"))

    with pytest.raises(ConfigurationError, match=r"registries of its own \(books\)"):
        run_main_job(settings, HOTEL_FILE, tmp_path / "out", receiver_ports=(1, 2))

    with LedgerStore.from_settings(settings) as store:
        assert store.earliest_event_date() is None
