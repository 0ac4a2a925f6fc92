"""Delivery passes against a real HTTP server on loopback: retries, the schedule, 410, timeouts,
version order, dead deliveries, overlapping passes and a worker killed mid-batch. Every test
runs on SQLite and on PostgreSQL. Signatures are checked with the `standardwebhooks` package."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.delivery.sending import AttemptResult
from ledger_pipeline.delivery.worker import deliver_pass
from ledger_pipeline.storage.deliveries import DeliveryStore, Outcome, SentAttempt
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import history, jsonl, raw_event, records
from ledger_pipeline_tests.webhook_receiver import (  # noqa: F401 (the fixture)
    Reply,
    WebhookReceiver,
    webhook_receiver_fixture,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NAMESPACE = uuid.UUID("0b7c6e1e-3c1f-5d5e-9a34-2f6f1d8e4a90")
PROJECT = Path(__file__).resolve().parents[1]


class Clock:
    """The system's clock in UTC, moved by `offset`."""

    def __init__(self, offset: dt.timedelta = dt.timedelta(0)):
        self.offset = offset

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@pytest.fixture
def store(database_url):
    with LedgerStore(database_url) as opened:
        yield opened


def create(store: LedgerStore, receiver: WebhookReceiver, name: str = "books", **fields) -> None:
    url = fields.pop("url", None) or receiver.url("/hooks")
    RegistryStore(store).create(Registry(name, url=url, secret=SECRET, **fields))


def land_and_post(store: LedgerStore, *events) -> None:
    store.land(records(jsonl(*events), source=f"{uuid.uuid4().hex}.jsonl"))
    store.post()


def deliver(store: LedgerStore, clock: Clock | None = None, **options):
    options.setdefault("timeout", 5.0)
    return deliver_pass(store, allow_private=True, clock=clock, random=random.Random(7), **options)


def assert_signed(request, secret: str = SECRET) -> None:
    """The request's signature is the one `standardwebhooks` computes for its id, timestamp
    and body (for a moment the test moved the clock to, where `verify` would call it stale)."""
    moment = dt.datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), dt.UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], moment, request.body.decode())
    assert expected in request.headers["webhook-signature"].split(" ")


def version_of(request) -> tuple[str, int]:
    body = json.loads(request.body)
    return body["order_id"], body["order_version"]


def only(store: LedgerStore):
    [delivery] = DeliveryStore(store).list()
    return delivery


# One delivery


def test_a_due_delivery_is_posted_once_signed_as_standard_webhooks(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, raw_event("evt-1"))

    report = deliver(store)

    [request] = webhook_receiver.requests()
    key = str(uuid.uuid5(NAMESPACE, "books/evt-1"))
    assert request.method == "POST"
    assert request.path == "/hooks"
    assert request.headers["webhook-id"] == "msg_" + uuid.UUID(key).hex
    assert request.headers["content-type"] == "application/json"
    verified = Webhook(SECRET).verify(request.body, request.headers)
    assert verified["idempotency_key"] == key
    assert verified["ledger_entries"][0]["debit"] == "22.00"
    assert request.body == DeliveryStore(store).body(only(store).id)

    delivery = only(store)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.delivered_at is not None
    [attempt] = DeliveryStore(store).get(delivery.id).attempts
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, None)
    assert attempt.response_excerpt == "{}"
    assert (report.totals.sent, report.totals.succeeded) == (1, 1)
    assert deliver(store).sent == 0


def test_a_500_then_success_sends_the_same_bytes_key_and_webhook_id(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, raw_event("evt-1"))
    webhook_receiver.reply("/hooks", Reply(500, body=b"upstream down"))

    first = deliver(store)
    delivery = only(store)
    assert (first.totals.retried, delivery.status, delivery.attempts) == (1, "pending", 1)
    assert delivery.last_error == "status 500"
    assert deliver(store).sent == 0  # not due before the first retry delay (5 s)

    second = deliver(store, Clock(dt.timedelta(minutes=1)))

    failed, succeeded = webhook_receiver.requests()
    assert succeeded.body == failed.body
    assert succeeded.headers["webhook-id"] == failed.headers["webhook-id"]
    assert json.loads(succeeded.body)["idempotency_key"] == str(
        uuid.uuid5(NAMESPACE, "books/evt-1")
    )
    assert int(succeeded.headers["webhook-timestamp"]) - int(
        failed.headers["webhook-timestamp"]
    ) in range(59, 62)
    assert succeeded.headers["webhook-signature"] != failed.headers["webhook-signature"]
    assert_signed(failed)
    assert_signed(succeeded)
    assert second.totals.succeeded == 1
    attempts = DeliveryStore(store).get(delivery.id).attempts
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert attempts[0].response_excerpt == "upstream down"


def test_the_first_retry_comes_5_seconds_later_give_or_take_10_percent(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, raw_event("evt-1"))
    webhook_receiver.reply("/hooks", Reply(503))
    before = dt.datetime.now(dt.UTC)

    deliver(store)

    delay = only(store).next_attempt_at - before
    assert (
        dt.timedelta(seconds=4.5)
        <= delay
        <= dt.timedelta(seconds=5.5) + (dt.datetime.now(dt.UTC) - before)
    )


def test_a_429_waits_as_long_as_retry_after_asks(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, raw_event("evt-1"))
    webhook_receiver.reply("/hooks", Reply(429, headers={"Retry-After": "120"}))
    before = dt.datetime.now(dt.UTC)

    deliver(store)

    delivery = only(store)
    # 120 s asked, with up to 10 % of jitter added, never less.
    delay = delivery.next_attempt_at - before
    elapsed = dt.datetime.now(dt.UTC) - before
    assert dt.timedelta(seconds=120) <= delay <= dt.timedelta(seconds=132) + elapsed
    assert (delivery.status, delivery.last_status_code) == ("pending", 429)
    assert deliver(store, Clock(dt.timedelta(seconds=60))).sent == 0
    assert deliver(store, Clock(dt.timedelta(seconds=140))).totals.succeeded == 1


def test_a_410_disables_the_registry_and_its_deliveries_wait(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, raw_event("evt-1"), raw_event("evt-2", "order-2"))
    webhook_receiver.reply("/hooks", Reply(410))

    report = deliver(store, batch_size=1)

    assert report.totals.gone == 1
    assert RegistryStore(store).get("books").enabled is False
    assert len(webhook_receiver.requests()) == 1
    assert DeliveryStore(store).counts() == {"books": {"pending": 2}}
    assert DeliveryStore(store).due_count() == 0

    RegistryStore(store).enable("books")
    assert deliver(store).totals.succeeded == 2
    assert len(webhook_receiver.requests()) == 3


def test_a_timeout_is_recorded_without_a_status_and_retried(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, raw_event("evt-1"))
    webhook_receiver.reply("/hooks", Reply(200, delay=2.0))

    report = deliver(store, timeout=0.3)

    delivery = only(store)
    [attempt] = DeliveryStore(store).get(delivery.id).attempts
    assert (attempt.status_code, attempt.error) == (None, "timeout after 0.3 s")
    assert 250 <= attempt.latency_ms < 2000
    assert (report.totals.retried, delivery.status) == (1, "pending")


def test_a_registry_url_with_a_token_is_reported_by_host_only(store, webhook_receiver, caplog):
    # Limitation: urllib3's own DEBUG log shows the request line, query included; only the
    # product's loggers are checked here.
    caplog.set_level(logging.DEBUG, logger="ledger_pipeline")
    create(store, webhook_receiver, url=webhook_receiver.url("/hooks?token=s3cr3t-t0ken"))
    land_and_post(store, raw_event("evt-1"))

    report = deliver(store)

    assert list(report.endpoints) == [f"127.0.0.1:{webhook_receiver.port}"]
    assert "s3cr3t-t0ken" not in caplog.text
    assert SECRET not in caplog.text
    assert "Museum" not in caplog.text  # no payload body in a log


# Order


def test_versions_of_an_order_go_out_in_version_order(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, *history("a", 3), *history("b", 3), *history("c", 2))

    report = deliver(store, batch_size=100, workers=8)

    arrived = [version_of(request) for request in webhook_receiver.requests()]
    assert len(arrived) == 8
    for order, versions in (("a", [1, 2, 3]), ("b", [1, 2, 3]), ("c", [1, 2])):
        assert [v for o, v in arrived if o == order] == versions
    assert report.batches == 3


def test_a_disabled_registry_sends_its_waiting_deliveries_in_order_when_enabled(
    store, webhook_receiver
):
    create(store, webhook_receiver, enabled=False)
    land_and_post(store, *history("a", 3))
    assert deliver(store).sent == 0

    RegistryStore(store).enable("books")
    deliver(store)

    assert [version_of(r) for r in webhook_receiver.requests()] == [("a", 1), ("a", 2), ("a", 3)]


def fail_until_dead(store, receiver) -> None:
    """Answers 500 to every try of the next delivery until it is dead: the reference schedule
    has 7 retries, so 8 attempts, moved a day apart."""
    receiver.reply("/hooks", *[Reply(500)] * 8)
    for day in range(8):
        deliver(store, Clock(dt.timedelta(days=day)))


def test_after_its_last_try_a_delivery_is_dead_and_holds_back_its_order(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, *history("a", 2))

    fail_until_dead(store, webhook_receiver)

    deliveries = DeliveryStore(store)
    first, second = sorted(deliveries.list(), key=lambda d: d.order_version)
    assert (first.status, first.attempts) == ("dead", 8)
    assert second.status == "pending"
    assert [version_of(r) for r in webhook_receiver.requests()] == [("a", 1)] * 8
    assert deliveries.due_count(Clock(dt.timedelta(days=30))()) == 0
    assert deliver(store, Clock(dt.timedelta(days=30))).sent == 0


def test_replaying_a_dead_delivery_sends_it_then_the_rest_of_its_order(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, *history("a", 2))
    fail_until_dead(store, webhook_receiver)
    deliveries = DeliveryStore(store)
    dead = deliveries.list(status="dead")

    assert deliveries.replay([d.id for d in dead]) == 1
    deliver(store)

    requests = webhook_receiver.requests()
    assert [version_of(r) for r in requests[8:]] == [("a", 1), ("a", 2)]
    assert requests[8].body == requests[0].body
    assert requests[8].headers["webhook-id"] == requests[0].headers["webhook-id"]
    assert deliveries.counts() == {"books": {"succeeded": 2}}
    assert [a.number for a in deliveries.get(dead[0].id).attempts] == list(range(1, 10))


def test_skipping_a_dead_delivery_lets_the_rest_of_its_order_go(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, *history("a", 3))
    fail_until_dead(store, webhook_receiver)
    deliveries = DeliveryStore(store)
    [dead] = deliveries.list(status="dead")

    assert deliveries.skip([dead.id]) == 1
    deliver(store)

    assert [version_of(r) for r in webhook_receiver.requests()[8:]] == [("a", 2), ("a", 3)]
    assert deliveries.counts() == {"books": {"skipped": 1, "succeeded": 2}}


def test_a_dead_delivery_holds_back_only_its_own_order(store, webhook_receiver):
    create(store, webhook_receiver)
    land_and_post(store, *history("a", 2))
    fail_until_dead(store, webhook_receiver)

    land_and_post(store, raw_event("evt-b", "b"))
    deliver(store)

    assert version_of(webhook_receiver.requests()[-1]) == ("b", 1)


# Workers at once, and a worker that dies


def test_two_overlapping_passes_send_each_delivery_once(database_url, webhook_receiver):
    with LedgerStore(database_url) as store:
        create(store, webhook_receiver)
        land_and_post(store, *(raw_event(f"evt-{n}", f"order-{n}") for n in range(120)))
    webhook_receiver.default = Reply(delay=0.005)
    reports = []
    start = threading.Barrier(2)

    def run(name: str) -> None:
        with LedgerStore(database_url) as store:
            start.wait()
            reports.append(deliver(store, batch_size=10, workers=4, worker=name))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [request.headers["webhook-id"] for request in webhook_receiver.requests()]
    assert len(ids) == 120
    assert len(set(ids)) == 120
    assert sum(report.totals.succeeded for report in reports) == 120
    assert all(report.totals.lost == 0 for report in reports)


def test_a_worker_killed_mid_batch_loses_nothing_once_its_lease_expires(
    database_url, webhook_receiver
):
    with LedgerStore(database_url) as store:
        create(store, webhook_receiver)
        land_and_post(store, *(raw_event(f"evt-{n}", f"order-{n}") for n in range(30)))
    webhook_receiver.default = Reply(delay=0.4)
    script = (
        "import datetime as dt, sys\n"
        "from ledger_pipeline.delivery.worker import deliver_pass\n"
        "from ledger_pipeline.storage.store import LedgerStore\n"
        "with LedgerStore(sys.argv[1]) as store:\n"
        "    deliver_pass(store, batch_size=30, workers=3, lease=dt.timedelta(seconds=60),\n"
        "                 allow_private=True, worker='doomed')\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script, database_url], cwd=PROJECT)
    try:
        webhook_receiver.wait_for(3, timeout=30)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    webhook_receiver.default = Reply()

    with LedgerStore(database_url) as store:
        deliveries = DeliveryStore(store)
        assert deliveries.counts() == {"books": {"pending": 30}}
        assert {d.lease_owner for d in deliveries.list()} == {"doomed"}
        assert deliver(store).sent == 0  # the lease holds

        report = deliver(store, Clock(dt.timedelta(seconds=61)))

        assert report.totals.succeeded == 30
        assert deliveries.counts() == {"books": {"succeeded": 30}}
        stored = {d.webhook_id: deliveries.body(d.id) for d in deliveries.list()}
    requests = webhook_receiver.requests()
    assert {r.headers["webhook-id"] for r in requests} == set(stored)
    for request in requests:
        assert request.body == stored[request.headers["webhook-id"]]
        assert_signed(request)
    assert len(requests) > 30  # some went out twice: before the kill and after


def test_a_worker_whose_lease_passed_to_another_records_its_attempt_but_not_its_state(store):
    RegistryStore(store).create(Registry("books", url="https://books.example/hooks"))
    land_and_post(store, raw_event("evt-1"))
    deliveries = DeliveryStore(store)
    now = dt.datetime.now(dt.UTC)
    [slow] = deliveries.claim("slow", 10, dt.timedelta(seconds=30), now)
    later = now + dt.timedelta(seconds=31)
    [fast] = deliveries.claim("fast", 10, dt.timedelta(seconds=30), later)

    ok = AttemptResult(200, 10)
    failed = AttemptResult(500, 10, error="status 500")
    assert deliveries.record("fast", [SentAttempt(fast, later, ok)], later) == [Outcome.SUCCEEDED]
    assert deliveries.record("slow", [SentAttempt(slow, now, failed)], later) == [Outcome.LOST]

    detail = deliveries.get(slow.id)
    assert detail.delivery.status == "succeeded"
    assert [(a.worker, a.status_code) for a in detail.attempts] == [("fast", 200), ("slow", 500)]
