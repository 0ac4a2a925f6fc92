"""The local webhook receiver: it verifies with standardwebhooks, answers, records, books each
summary once in a beancount file that beancount's own checker accepts."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest
import requests
from beancount import loader
from beancount.core import data
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.delivery.signing import webhook_headers
from ledger_pipeline.delivery.worker import deliver_pass
from ledger_pipeline.errors import ConfigurationError
from ledger_pipeline.receiver import Receiver, serve
from ledger_pipeline.storage.deliveries import DeliveryStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
KEY = "0f9e36a8-5a7e-5c4b-9b70-3f4b0e1c2d3a"


def summary(key: str = KEY, **changes) -> dict:
    """A ledger_summary of 2 Adult tickets of 11.00 EUR (tax 2.00) paid in cash."""
    return {
        "order_id": "order-1",
        "idempotency_key": key,
        "event": "confirmed",
        "order_version": 1,
        "occurred_at": "2024-11-15T08:24:00Z",
        "ledger_entries": [
            {"ledger_code": None, "account": "cash", "currency": "EUR", "quantity": 0,
             "debit": "22.00", "credit": "0.00", "description": "Cashflow"},
            {"ledger_code": "4000", "account": "deferred_revenue", "currency": "EUR",
             "quantity": 2, "debit": "0.00", "credit": "20.00", "description": "Museum Adult"},
            {"ledger_code": None, "account": "tax", "currency": "EUR", "quantity": 0,
             "debit": "0.00", "credit": "2.00", "description": "Tax"},
        ],
        **changes,
    }  # fmt: skip


def signed(
    payload: object, msg_id: str = "msg_1", secrets=(SECRET,), at: dt.datetime | None = None
):
    """A body and the headers the product's own signer gives it."""
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    moment = at or dt.datetime.now(dt.UTC)
    return body, webhook_headers(msg_id, body, list(secrets), int(moment.timestamp()))


class Running:
    """A receiver serving HTTP on a free port of 127.0.0.1, in a thread."""

    def __init__(self, receiver: Receiver):
        self.receiver = receiver
        self.server = serve(receiver, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "received.jsonl", tmp_path / "books.beancount"


@pytest.fixture
def running(files):
    out, book = files
    started = Running(Receiver([SECRET], out, beancount=book))
    yield started
    started.stop()


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def transactions_of(path: Path) -> list[data.Transaction]:
    entries, errors, _ = loader.load_file(str(path))
    assert [error.message for error in errors] == []
    return [entry for entry in entries if isinstance(entry, data.Transaction)]


def postings_of(transaction: data.Transaction) -> list[tuple[str, str, str]]:
    return [
        (posting.account, str(posting.units.number), posting.units.currency)
        for posting in transaction.postings
    ]


# Verifying and answering


def test_a_delivery_signed_by_the_product_is_accepted_and_recorded(running, files):
    body, headers = signed(summary())

    response = running.post(body, headers)

    assert (response.status_code, response.json()) == (
        200,
        {"received": "msg_1", "duplicate": False},
    )
    [record] = lines_of(files[0])
    assert record["status"] == 200
    assert record["duplicate"] is False
    assert record["body"] == summary()
    assert record["headers"]["webhook-id"] == "msg_1"
    assert record["headers"]["webhook-signature"] == headers["webhook-signature"]
    assert record["headers"]["content-type"] == "application/json"


def test_a_delivery_signed_with_another_secret_is_a_400_and_its_body_is_not_kept(running, files):
    body, headers = signed(summary(), secrets=(OTHER_SECRET,))

    response = running.post(body, headers)

    assert response.status_code == 400
    assert response.json() == {"error": "signature not verified: No matching signature found"}
    [record] = lines_of(files[0])
    assert (record["status"], "body" in record) == (400, False)
    assert transactions_of(files[1]) == []


def test_a_changed_body_is_a_400(running):
    body, headers = signed(summary())

    response = running.post(body.replace(b"22.00", b"99.00"), headers)

    assert response.status_code == 400


def test_a_timestamp_older_than_five_minutes_is_a_400(running):
    body, headers = signed(summary(), at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))

    response = running.post(body, headers)

    assert response.json() == {"error": "signature not verified: Message timestamp too old"}


def test_a_delivery_without_signature_headers_is_a_400(running):
    response = running.post(b"{}", {"content-type": "application/json"})

    assert response.json() == {"error": "signature not verified: Missing required headers"}


def test_a_malformed_signature_header_is_a_400(running):
    body, headers = signed(summary())

    response = running.post(body, {**headers, "webhook-signature": "v1"})

    assert response.json() == {
        "error": "signature not verified: malformed webhook-signature header"
    }


def test_a_signed_body_that_is_not_json_is_a_400(running):
    body, headers = signed(b"not json")

    response = running.post(body, headers)

    assert response.json() == {"error": "the body is not JSON"}


def test_a_delivery_signed_with_the_previous_secret_too_verifies_with_either(files):
    out, _ = files
    body, headers = signed(summary(), secrets=(OTHER_SECRET, SECRET))

    assert Receiver([SECRET], out).receive(body, headers).status == 200
    assert Receiver([OTHER_SECRET], out).receive(body, headers).status == 200


@pytest.mark.parametrize(
    "secret", ["whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64"]
)
def test_a_secret_that_is_not_one_is_refused_without_showing_it(files, secret):
    with pytest.raises(ConfigurationError) as error:
        Receiver([secret], files[0])

    assert str(error.value) == (
        "a --secret is not a webhook secret: give the registry's whsec_... secret"
    )


def test_get_is_a_405(running):
    assert requests.get(running.url, timeout=10).status_code == 405


# Failing on purpose


def test_a_fail_rate_of_one_answers_503_and_books_nothing(files):
    out, book = files
    receiver = Receiver([SECRET], out, beancount=book, fail_rate=1.0)

    reply = receiver.receive(*signed(summary()))

    assert reply.status == 503
    assert lines_of(out)[0]["failed_on_purpose"] is True
    assert transactions_of(book) == []


def test_the_same_seed_fails_the_same_deliveries(files, tmp_path):
    def answers(seed: int, out: Path) -> list[int]:
        receiver = Receiver([SECRET], out, fail_rate=0.5, seed=seed)
        return [receiver.receive(*signed(summary(), f"msg_{n}")).status for n in range(20)]

    first = answers(7, tmp_path / "a.jsonl")
    second = answers(7, tmp_path / "b.jsonl")

    assert first == second
    assert set(first) == {200, 503}


def test_a_retry_after_a_failure_on_purpose_is_booked_once(files):
    out, book = files
    receiver = Receiver([SECRET], out, beancount=book, fail_rate=0.5, seed=7)

    statuses = [receiver.receive(*signed(summary())).status for _ in range(8)]

    assert 503 in statuses and 200 in statuses
    assert len(transactions_of(book)) == 1


# Booking


def test_a_summary_is_booked_with_its_exact_amounts(running, files):
    running.post(*signed(summary()))

    [transaction] = transactions_of(files[1])

    assert transaction.date == dt.date(2024, 11, 15)
    assert transaction.flag == "*"
    assert transaction.narration == "confirmed order order-1 version 1"
    assert transaction.meta["idempotency_key"] == KEY
    assert transaction.meta["webhook_id"] == "msg_1"
    assert postings_of(transaction) == [
        ("Assets:Cash", "22.00", "EUR"),
        ("Liabilities:DeferredRevenue", "-20.00", "EUR"),
        ("Liabilities:Tax", "-2.00", "EUR"),
    ]
    assert transaction.postings[1].meta["ledger_code"] == "4000"
    assert transaction.postings[1].meta["description"] == "Museum Adult"


def test_the_same_webhook_id_twice_is_accepted_twice_and_booked_once(running, files):
    body, headers = signed(summary())

    first = running.post(body, headers)
    second = running.post(body, headers)

    assert first.json()["duplicate"] is False
    assert (second.status_code, second.json()["duplicate"]) == (200, True)
    assert len(transactions_of(files[1])) == 1
    assert [record["duplicate"] for record in lines_of(files[0])] == [False, True]


def test_the_same_idempotency_key_under_another_webhook_id_is_booked_once(files):
    out, book = files
    receiver = Receiver([SECRET], out, beancount=book)

    receiver.receive(*signed(summary(), "msg_1"))
    reply = receiver.receive(*signed(summary(), "msg_2"))

    assert reply.body["duplicate"] is True
    assert len(transactions_of(book)) == 1


def test_a_restarted_receiver_remembers_what_the_book_holds(files):
    out, book = files
    Receiver([SECRET], out, beancount=book).receive(*signed(summary()))

    again = Receiver([SECRET], out, beancount=book).receive(*signed(summary()))

    assert again.body["duplicate"] is True
    assert len(transactions_of(book)) == 1


def test_two_currencies_are_declared_once_each(files):
    out, book = files
    receiver = Receiver([SECRET], out, beancount=book)
    jpy = summary("1b6f8d3e-0000-5000-8000-000000000002")
    jpy["ledger_entries"] = [
        {**jpy["ledger_entries"][0], "currency": "JPY", "debit": "5000"},
        {**jpy["ledger_entries"][1], "currency": "JPY", "credit": "5000"},
    ]

    receiver.receive(*signed(summary(), "msg_1"))
    receiver.receive(*signed(jpy, "msg_2"))
    receiver.receive(*signed(summary("1b6f8d3e-0000-5000-8000-000000000003"), "msg_3"))

    text = book.read_text()
    assert text.count("commodity EUR") == 1
    assert text.count("commodity JPY") == 1
    assert len(transactions_of(book)) == 3


def test_a_summary_of_part_of_the_entries_balances_on_an_equity_account(files):
    out, book = files
    only_income = summary(ledger_entries=summary()["ledger_entries"][1:2])

    Receiver([SECRET], out, beancount=book).receive(*signed(only_income))

    [transaction] = transactions_of(book)
    assert transaction.flag == "!"
    assert postings_of(transaction) == [
        ("Liabilities:DeferredRevenue", "-20.00", "EUR"),
        ("Equity:OutsideRegistry", "20.00", "EUR"),
    ]


def test_the_transaction_is_dated_in_the_receivers_time_zone(files):
    from zoneinfo import ZoneInfo

    out, book = files
    late = summary(occurred_at="2024-11-15T23:30:00Z")

    Receiver([SECRET], out, beancount=book, timezone=ZoneInfo("Europe/Vienna")).receive(
        *signed(late)
    )

    assert transactions_of(book)[0].date == dt.date(2024, 11, 16)


def test_a_summary_grouped_by_date_is_dated_by_that_date(files):
    out, book = files
    dated = summary()
    dated["ledger_entries"] = [{**entry, "date": "2024-11-14"} for entry in dated["ledger_entries"]]

    Receiver([SECRET], out, beancount=book).receive(*signed(dated))

    assert transactions_of(book)[0].date == dt.date(2024, 11, 14)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"debit": "0.00"}, "cannot book the summary: every amount is zero"),
        ({"debit": 22.0}, "cannot book the summary: debit 22.0 is not a decimal string"),
        ({"debit": "-22.00"}, "cannot book the summary: debit '-22.00' is not a decimal string"),
        ({"account": "bank"}, "cannot book the summary: unknown account 'bank'"),
        ({"currency": "eur"}, "cannot book the summary: currency 'eur' is not an ISO 4217 code"),
    ],
)
def test_a_summary_that_cannot_be_booked_is_a_422_and_books_nothing(files, change, problem):
    out, book = files
    broken = summary()
    broken["ledger_entries"] = [{**broken["ledger_entries"][0], **change}]

    reply = Receiver([SECRET], out, beancount=book).receive(*signed(broken))

    assert (reply.status, reply.body) == (422, {"error": problem})
    assert transactions_of(book) == []


def test_a_payload_that_is_not_a_summary_is_accepted_and_not_booked(files):
    out, book = files

    reply = Receiver([SECRET], out, beancount=book).receive(*signed({"ping": True}))

    assert reply.status == 200
    assert transactions_of(book) == []


def test_without_a_beancount_file_only_the_out_file_is_written(tmp_path):
    out = tmp_path / "received.jsonl"

    Receiver([SECRET], out).receive(*signed(summary()))

    assert sorted(path.name for path in tmp_path.iterdir()) == ["received.jsonl"]


# Real deliveries from the product


def test_the_products_deliveries_with_retries_are_booked_once_each_and_check(files, sqlite_url):
    out, book = files
    receiver = Running(Receiver([SECRET], out, beancount=book, fail_rate=0.3, seed=3))
    try:
        with LedgerStore(sqlite_url) as store:
            RegistryStore(store).create(Registry(name="books", url=receiver.url, secret=SECRET))
            store.land(
                records(
                    jsonl(
                        raw_event("evt-1", "order-1"),
                        raw_event("evt-2", "order-1", 2, "updated", "2024-11-15T10:00:00+01:00",
                                  retail=2400),
                        raw_event("evt-3", "order-2", currency="JPY", currency_precision=0,
                                  retail=5000, tax=454),
                    )
                )
            )  # fmt: skip
            store.post()

            # Retries are due 5 s (give or take 10 %) after a failure: each pass runs 6 s
            # later, well within the 5 minutes of timestamp tolerance.
            start = dt.datetime.now(dt.UTC)
            for number in range(4):
                moment = start + dt.timedelta(seconds=6 * number)
                deliver_pass(
                    store, workers=1, allow_private=True, clock=lambda moment=moment: moment
                )
            statuses = {delivery.status for delivery in DeliveryStore(store).list()}
    finally:
        receiver.stop()

    assert statuses == {"succeeded"}
    answers = [record["status"] for record in lines_of(out)]
    assert answers.count(200) == 3
    assert 503 in answers
    transactions = transactions_of(book)
    assert sorted((t.narration, postings_of(t)) for t in transactions) == [
        (
            "confirmed order order-1 version 1",
            [
                ("Assets:Cash", "22.00", "EUR"),
                ("Liabilities:DeferredRevenue", "-20.00", "EUR"),
                ("Liabilities:Tax", "-2.00", "EUR"),
            ],
        ),
        (
            "confirmed order order-2 version 1",
            [
                ("Assets:Cash", "5000", "JPY"),
                ("Liabilities:DeferredRevenue", "-4546", "JPY"),
                ("Liabilities:Tax", "-454", "JPY"),
            ],
        ),
        (
            "updated order order-1 version 2",
            [
                ("Assets:Cash", "2.00", "EUR"),
                ("Liabilities:DeferredRevenue", "-2.00", "EUR"),
            ],
        ),
    ]


# The receive command


def test_receive_with_a_bad_secret_exits_with_one_line(tmp_path):
    result = CliRunner().invoke(
        app, ["receive", "--secret", "nope", "--out", str(tmp_path / "out.jsonl"), "--port", "0"]
    )

    assert result.exit_code == 1
    assert result.stderr == (
        "error: a --secret is not a webhook secret: give the registry's whsec_... secret\n"
    )


def test_receive_with_an_unknown_time_zone_names_the_option(tmp_path):
    out = str(tmp_path / "out.jsonl")

    result = CliRunner().invoke(
        app, ["receive", "--secret", SECRET, "--out", out, "--timezone", "Mars/Olympus"]
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: --timezone='Mars/Olympus' is not an IANA time zone name"
    )


def test_receive_with_an_out_file_it_cannot_write_does_not_start(tmp_path):
    out = tmp_path / "missing" / "out.jsonl"

    result = CliRunner().invoke(
        app, ["receive", "--secret", SECRET, "--out", str(out), "--port", "0"]
    )

    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write {out}: No such file or directory\n"


def test_receive_refuses_a_beancount_file_another_program_wrote(tmp_path):
    book = tmp_path / "books.beancount"
    book.write_text("2020-01-01 open Assets:Bank\n")
    out = str(tmp_path / "out.jsonl")

    result = CliRunner().invoke(
        app, ["receive", "--secret", SECRET, "--out", out, "--beancount", str(book), "--port", "0"]
    )

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {book} was not written by `ledger-pipeline receive`: give a new file, so that "
        "what the receiver books checks on its own\n"
    )
    assert book.read_text() == "2020-01-01 open Assets:Bank\n"


def test_receive_serves_until_interrupted_and_prints_the_counts(tmp_path, monkeypatch):
    import http.server

    def interrupted(self, poll_interval=0.5):
        raise KeyboardInterrupt

    monkeypatch.setattr(http.server.HTTPServer, "serve_forever", interrupted)
    started = time.monotonic()

    result = CliRunner().invoke(
        app, ["receive", "--secret", SECRET, "--out", str(tmp_path / "out.jsonl"), "--port", "0"]
    )

    assert result.exit_code == 0
    assert "receiving deliveries at http://127.0.0.1:" in result.stderr
    assert result.stderr.endswith("received: 0 accepted, 0 duplicate, 0 refused, 0 failed\n")
    assert time.monotonic() - started < 10
