"""The transactional outbox: which deliveries posting queues, in which transaction, and what
registry changes do to them. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.delivery.sending import AttemptResult
from ledger_pipeline.storage import deliveries as deliveries_module
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.deliveries import DeliveryStore, SentAttempt
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import history, jsonl, raw_event, records

URL = "https://books.example/hooks"
# The namespace of idempotency keys, written out: the contract fixes it forever.
NAMESPACE = uuid.UUID("0b7c6e1e-3c1f-5d5e-9a34-2f6f1d8e4a90")
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def store(database_url):
    with LedgerStore(database_url) as opened:
        yield opened


def create(store: LedgerStore, name: str = "books", **fields) -> Registry:
    return RegistryStore(store).create(Registry(name, url=URL, **fields))


def land_and_post(store: LedgerStore, *events) -> None:
    store.land(records(jsonl(*events), source=f"{uuid.uuid4().hex}.jsonl"))
    store.post()


def queued(store: LedgerStore) -> list[tuple[str, str, int]]:
    """(registry, event id, order version) of every delivery, by registry and event."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                tables.deliveries.c.registry,
                tables.deliveries.c.event_id,
                tables.deliveries.c.order_version,
            ).order_by(tables.deliveries.c.registry, tables.deliveries.c.event_id)
        )
        return [tuple(row) for row in rows]


def count(store: LedgerStore, table: sa.Table) -> int:
    with store.engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(table))


# Queued with the entries


def test_posting_queues_one_delivery_per_event_and_registry(store):
    create(store, "books")
    create(store, "audit")

    land_and_post(store, *history("order-1", versions=2))

    assert queued(store) == [
        ("audit", "evt-order-1-1", 1),
        ("audit", "evt-order-1-2", 2),
        ("books", "evt-order-1-1", 1),
        ("books", "evt-order-1-2", 2),
    ]


def test_the_body_is_the_compact_ledger_summary_with_the_derived_key(store):
    create(store, "books")

    land_and_post(store, raw_event("evt-1"))

    [delivery] = DeliveryStore(store).list()
    key = str(uuid.uuid5(NAMESPACE, "books/evt-1"))
    expected = {
        "order_id": "order-1",
        "idempotency_key": key,
        "event": "confirmed",
        "order_version": 1,
        "occurred_at": "2024-11-15T08:24:00Z",
        "ledger_entries": [
            {
                "ledger_code": None,
                "account": "cash",
                "currency": "EUR",
                "quantity": 0,
                "debit": "22.00",
                "credit": "0.00",
                "description": "Cashflow",
            },
            {
                "ledger_code": None,
                "account": "deferred_revenue",
                "currency": "EUR",
                "quantity": 2,
                "debit": "0.00",
                "credit": "20.00",
                "description": "Museum Adult",
            },
            {
                "ledger_code": None,
                "account": "tax",
                "currency": "EUR",
                "quantity": 0,
                "debit": "0.00",
                "credit": "2.00",
                "description": "Tax",
            },
        ],
    }
    assert DeliveryStore(store).body(delivery.id) == json.dumps(
        expected, separators=(",", ":")
    ).encode("utf-8")
    assert delivery.idempotency_key == key
    assert delivery.webhook_id == "msg_" + uuid.UUID(key).hex
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_a_body_keeps_characters_outside_ascii_as_utf8(store):
    create(store, "books")

    land_and_post(store, raw_event("evt-1", product="Käsemuseum"))

    [delivery] = DeliveryStore(store).list()
    assert "Käsemuseum Adult".encode() in DeliveryStore(store).body(delivery.id)


def test_an_event_no_entry_of_which_passes_the_filters_queues_nothing(store):
    create(store, "vienna", destinations=["Vienna"])
    create(store, "tax-only", entry_types=["tax"])

    land_and_post(store, raw_event("evt-1", tax=0))  # destination Krno, no tax entry

    assert queued(store) == []


def test_test_orders_are_queued_only_for_registries_that_include_them(store):
    create(store, "books")
    create(store, "sandbox", include_test=True)

    land_and_post(store, raw_event("evt-1", test=True))

    assert queued(store) == [("sandbox", "evt-1", 1)]


def test_a_fault_before_the_commit_leaves_neither_entries_nor_deliveries(store, monkeypatch):
    create(store, "books")
    store.land(records(jsonl(raw_event("evt-1"))))
    original = deliveries_module.Outbox.insert

    def insert_then_fail(self, connection):
        original(self, connection)
        raise RuntimeError("injected fault after queueing, before the commit")

    monkeypatch.setattr(deliveries_module.Outbox, "insert", insert_then_fail)
    with pytest.raises(RuntimeError, match="injected fault"):
        store.post()

    assert count(store, tables.ledger_entries) == 0
    assert count(store, tables.deliveries) == 0
    assert store.unposted_summary().events == 1

    monkeypatch.setattr(deliveries_module.Outbox, "insert", original)
    store.post()
    assert count(store, tables.ledger_entries) == 3
    assert queued(store) == [("books", "evt-1", 1)]


def test_posting_again_queues_nothing_more(store):
    create(store, "books")
    land_and_post(store, raw_event("evt-1"))

    store.post()

    assert queued(store) == [("books", "evt-1", 1)]


# since


def test_events_posted_before_a_registry_was_created_are_not_queued(store):
    land_and_post(store, raw_event("evt-1"))

    create(store, "books")
    land_and_post(store, raw_event("evt-2", "order-2"))

    assert queued(store) == [("books", "evt-2", 1)]


def test_events_posted_before_a_future_since_are_not_queued(store):
    create(store, "books", since=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))

    land_and_post(store, raw_event("evt-1"))

    assert queued(store) == []


def test_a_registry_created_with_a_past_since_takes_the_history_since_then(store):
    land_and_post(store, *history("order-1", versions=2), raw_event("evt-2", "order-2"))

    create(store, "books", since=LONG_AGO)

    assert queued(store) == [
        ("books", "evt-2", 1),
        ("books", "evt-order-1-1", 1),
        ("books", "evt-order-1-2", 2),
    ]


def test_a_body_queued_from_history_equals_the_one_posting_queues(store):
    create(store, "books")
    land_and_post(store, raw_event("evt-1", retail=5000, tax=450))

    create(store, "copy", since=LONG_AGO)

    deliveries = DeliveryStore(store)
    bodies = {d.registry: json.loads(deliveries.body(d.id)) for d in deliveries.list()}
    assert bodies["copy"].pop("idempotency_key") == str(uuid.uuid5(NAMESPACE, "copy/evt-1"))
    assert bodies["books"].pop("idempotency_key") == str(uuid.uuid5(NAMESPACE, "books/evt-1"))
    assert bodies["copy"] == bodies["books"]
    assert bodies["copy"]["ledger_entries"][0]["debit"] == "50.00"


def test_the_history_stops_at_since(store):
    land_and_post(store, raw_event("evt-1"))
    middle = dt.datetime.now(dt.UTC)
    land_and_post(store, raw_event("evt-2", "order-2"))

    create(store, "books", since=middle)

    assert queued(store) == [("books", "evt-2", 1)]


def test_moving_since_back_queues_the_missing_history_once(store):
    land_and_post(store, raw_event("evt-1"))
    create(store, "books")
    land_and_post(store, raw_event("evt-2", "order-2"))
    registries = RegistryStore(store)

    registries.update("books", since=LONG_AGO)
    registries.update("books", since=LONG_AGO + dt.timedelta(days=1))

    assert queued(store) == [("books", "evt-1", 1), ("books", "evt-2", 1)]


def test_widening_a_filter_queues_the_events_since_then_that_now_pass(store):
    create(store, "books", since=LONG_AGO, destinations=["Vienna"])
    land_and_post(store, raw_event("evt-1"))
    assert queued(store) == []

    RegistryStore(store).update("books", destinations=["Krno", "Vienna"])

    assert queued(store) == [("books", "evt-1", 1)]


def test_applying_a_file_with_a_past_since_takes_the_history(store):
    land_and_post(store, raw_event("evt-1"))

    RegistryStore(store).apply([{"name": "books", "url": URL, "since": "2020-01-01"}])

    assert queued(store) == [("books", "evt-1", 1)]


# Disabled registries


def test_a_disabled_registry_gets_deliveries_that_wait_until_it_is_enabled(store):
    create(store, "books", enabled=False)
    land_and_post(store, raw_event("evt-1"))
    deliveries = DeliveryStore(store)

    assert queued(store) == [("books", "evt-1", 1)]
    assert deliveries.due_count() == 0
    assert deliveries.claim("worker", 10, dt.timedelta(minutes=1)) == []

    RegistryStore(store).enable("books")
    assert deliveries.due_count() == 1


# Deleting a registry


def test_deleting_a_registry_deletes_its_deliveries_and_attempts_only(store):
    create(store, "books")
    create(store, "audit")
    land_and_post(store, raw_event("evt-1"))
    deliveries = DeliveryStore(store)
    claimed = deliveries.claim("worker", 10, dt.timedelta(minutes=1))
    failed = AttemptResult(500, 12, error="status 500")
    deliveries.record("worker", [SentAttempt(d, dt.datetime.now(dt.UTC), failed) for d in claimed])
    assert count(store, tables.delivery_attempts) == 2

    RegistryStore(store).delete("books")

    assert queued(store) == [("audit", "evt-1", 1)]
    assert count(store, tables.delivery_attempts) == 1
    assert deliveries.counts() == {"audit": {"pending": 1}}


def test_a_registry_made_again_under_a_deleted_name_starts_afresh(store):
    create(store, "books")
    land_and_post(store, raw_event("evt-1"))
    RegistryStore(store).delete("books")

    create(store, "books", since=LONG_AGO)

    assert queued(store) == [("books", "evt-1", 1)]
    assert DeliveryStore(store).counts() == {"books": {"pending": 1}}
