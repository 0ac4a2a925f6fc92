"""Delivery through Dagster on a test instance: the sensor, the delivery job and replaying."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.defs.deliveries.jobs import deliver_job, replay_deliveries_job
from ledger_pipeline.defs.deliveries.sensors import deliveries_sensor
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.delivery.worker import deliver_pass
from ledger_pipeline.storage.deliveries import DeliveryStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import history, jsonl, raw_event, records
from ledger_pipeline_tests.webhook_receiver import (  # noqa: F401 (the fixture)
    Reply,
    webhook_receiver_fixture,
)


@pytest.fixture
def ledger_url(tmp_path, webhook_receiver, monkeypatch):
    """A SQLite ledger with registry `books` delivering to the receiver, nothing posted."""
    monkeypatch.setenv("LEDGER_ALLOW_PRIVATE_URLS", "1")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LedgerStore(url, ZoneInfo("UTC")) as store:
        RegistryStore(store).create(Registry("books", url=webhook_receiver.url("/hooks")))
    return url


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def post(url, *events):
    with LedgerStore(url) as store:
        store.land(records(jsonl(*events)))
        store.post()


def resources(url):
    return {"ledger": LedgerResource(database_url=url, timezone="UTC")}


def evaluate(url, instance):
    context = dg.build_sensor_context(instance=instance, resources=resources(url))
    return deliveries_sensor(context)


def test_the_sensor_requests_no_run_when_nothing_is_due(ledger_url, instance):
    result = evaluate(ledger_url, instance)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no delivery is due"


def test_the_sensor_requests_one_run_for_all_that_is_due(ledger_url, instance):
    post(ledger_url, *(raw_event(f"evt-{n}", f"order-{n}") for n in range(25)))

    result = evaluate(ledger_url, instance)

    [request] = result.run_requests
    assert request.tags["ledger/due"] == "25"


def test_the_sensor_requests_no_run_while_a_delivery_run_is_unfinished(ledger_url, instance):
    post(ledger_url, raw_event("evt-1"))
    instance.create_run_for_job(deliver_job, status=dg.DagsterRunStatus.STARTED)

    result = evaluate(ledger_url, instance)

    assert isinstance(result, dg.SkipReason)
    assert "has not finished" in result.skip_message


def test_the_sensor_requests_no_run_for_deliveries_held_back_or_not_yet_due(
    ledger_url, instance, webhook_receiver
):
    post(ledger_url, *history("a", 2))
    webhook_receiver.reply("/hooks", Reply(500))
    with LedgerStore(ledger_url) as store:
        deliver_pass(store, allow_private=True)  # v1 fails: retried in 5 s, v2 waits behind it

    assert isinstance(evaluate(ledger_url, instance), dg.SkipReason)


def test_the_job_delivers_and_shows_the_counts_per_registry(ledger_url, instance, webhook_receiver):
    post(ledger_url, *history("a", 2), raw_event("evt-b", "b"))
    webhook_receiver.reply("/hooks", Reply(500))

    result = deliver_job.execute_in_process(
        instance=instance,
        resources=resources(ledger_url),
        run_config={"ops": {"deliver_due": {"config": {"workers": 1}}}},
    )

    assert result.success
    [materialization] = [
        event
        for event in result.all_node_events
        if event.event_type_value == "STEP_OUTPUT" and event.step_key == "deliver_due"
    ]
    metadata = materialization.event_specific_data.metadata
    # a v1 (answered 500) then b, one at a time; a v2 waits behind a v1.
    assert (metadata["sent"].value, metadata["succeeded"].value) == (2, 1)
    assert (metadata["retried"].value, metadata["dead"].value) == (1, 0)
    assert metadata["per registry"].value.splitlines()[:2] == [
        "| registry | sent | succeeded | retried | dead | last failure |",
        "|---|---:|---:|---:|---:|---|",
    ]
    assert (
        metadata["per registry"].value.splitlines()[2] == "| books | 2 | 1 | 1 | 0 | status 500 |"
    )
    port = webhook_receiver.port
    assert metadata["slowest endpoints"].value.splitlines()[2].startswith(f"| 127.0.0.1:{port} |")


def test_the_replay_job_makes_dead_deliveries_due(ledger_url, instance, webhook_receiver):
    post(ledger_url, raw_event("evt-1"))
    webhook_receiver.reply("/hooks", *[Reply(500)] * 8)
    with LedgerStore(ledger_url) as store:
        for day in range(8):
            deliver_pass(
                store,
                allow_private=True,
                clock=lambda day=day: dt.datetime.now(dt.UTC) + dt.timedelta(days=day),
            )
        assert DeliveryStore(store).counts() == {"books": {"dead": 1}}

    result = replay_deliveries_job.execute_in_process(
        instance=instance,
        resources=resources(ledger_url),
        run_config={
            "ops": {"replay_deliveries": {"config": {"registry": "books", "status": "dead"}}}
        },
    )

    assert result.success
    with LedgerStore(ledger_url) as store:
        assert DeliveryStore(store).due_count() == 1
    assert deliver_job.execute_in_process(instance=instance, resources=resources(ledger_url))
    assert len(webhook_receiver.requests()) == 9
