"""The Dagster code location on a test instance: partitions, checks, schedule, sensors."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs.ledger.assets import BALANCE_CHECK, SCHEMA_CHECK, build_ledger_assets
from ledger_pipeline.defs.ledger.jobs import import_inbox_job
from ledger_pipeline.defs.ledger.partitions import ledger_partitions
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.ledger.schedules import build_daily_schedule
from ledger_pipeline.defs.ledger.sensors import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    build_landed_events_sensor,
    inbox_sensor,
)
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records

PARTITIONS = ledger_partitions(dt.date(2024, 11, 1), "UTC")
ASSETS = build_ledger_assets(PARTITIONS)


@pytest.fixture
def ledger_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LedgerStore(url, ZoneInfo("UTC")) as store:
        store.land(
            records(
                jsonl(
                    raw_event("e1", "order-1", 1, occurred_at="2024-11-15T09:00:00+00:00"),
                    raw_event(
                        "e2",
                        "order-1",
                        2,
                        "updated",
                        "2024-11-16T09:00:00+00:00",
                        retail=2500,
                        tax=230,
                    ),
                    raw_event("e3", "order-2", 1, occurred_at="2024-11-16T10:00:00+00:00"),
                )
            )
        )
    return url


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def materialize(url, instance, **options):
    return dg.materialize(
        ASSETS,
        instance=instance,
        resources={"ledger": LedgerResource(database_url=url, timezone="UTC")},
        **options,
    )


def entry_rows(url, date_from=None, date_to=None):
    with LedgerStore(url) as store:
        frame = store.entries(date_from, date_to)
    return sorted(
        zip(frame["event_id"], frame["account"], frame["debit"], frame["credit"], strict=True)
    )


def test_one_partition_posts_the_events_of_that_date_only(ledger_url, instance):
    result = materialize(ledger_url, instance, partition_key="2024-11-15")

    assert result.success
    # Confirmed 22.00 with 2.00 tax, sold before its travel date (2024-11-20).
    assert entry_rows(ledger_url) == [
        ("e1", "cash", 2200, 0),
        ("e1", "deferred_revenue", 0, 2000),
        ("e1", "tax", 0, 200),
    ]
    materialization = result.asset_materializations_for_node("ledger_entries")[0]
    assert materialization.metadata["entries"].value == 3


def test_a_range_is_posted_in_one_run(ledger_url, instance):
    result = materialize(
        ledger_url,
        instance,
        tags={RANGE_START_TAG: "2024-11-15", RANGE_END_TAG: "2024-11-16"},
    )

    assert result.success
    assert len(instance.get_runs()) == 1
    # e2 raises the price to 25.00 with 2.30 tax: the difference is 3.00, 0.30 of it tax.
    assert entry_rows(ledger_url, dt.date(2024, 11, 16)) == [
        ("e2", "cash", 300, 0),
        ("e2", "deferred_revenue", 0, 270),
        ("e2", "tax", 0, 30),
        ("e3", "cash", 2200, 0),
        ("e3", "deferred_revenue", 0, 2000),
        ("e3", "tax", 0, 200),
    ]


def test_partitions_in_any_order_and_again_give_identical_rows(ledger_url, tmp_path, instance):
    materialize(ledger_url, instance, partition_key="2024-11-16")
    materialize(ledger_url, instance, partition_key="2024-11-15")
    with LedgerStore(ledger_url) as store:
        first = store.entries()
    materialize(ledger_url, instance, partition_key="2024-11-16")
    materialize(ledger_url, instance, partition_key="2024-11-15")
    with LedgerStore(ledger_url) as store:
        again = store.entries()

    assert len(first) == 9
    assert first.equals(again)


def test_daily_totals_sum_debit_and_credit_per_account(ledger_url, instance):
    materialize(ledger_url, instance, partition_key="2024-11-16")

    with LedgerStore(ledger_url) as store, store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                tables.daily_ledger_totals.c.account,
                tables.daily_ledger_totals.c.entries,
                tables.daily_ledger_totals.c.debit,
                tables.daily_ledger_totals.c.credit,
            ).order_by(tables.daily_ledger_totals.c.account)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("cash", 2, 2500, 0),
        ("deferred_revenue", 2, 0, 2270),
        ("tax", 2, 0, 230),
    ]


def _corrupt(url, **changes):
    """Changes stored entries behind the ledger's back, as a broken writer would."""
    with LedgerStore(url) as store, store.engine.begin() as connection:
        connection.execute(
            tables.ledger_entries.update()
            .where(tables.ledger_entries.c.event_id == "e1")
            .where(tables.ledger_entries.c.account == "tax")
            .values(**changes)
        )


def _check(result, name):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_an_unbalanced_event_fails_the_blocking_check_and_stops_the_daily_totals(
    ledger_url, instance
):
    materialize(ledger_url, instance, partition_key="2024-11-15")
    _corrupt(ledger_url, credit=201)

    result = materialize(ledger_url, instance, partition_key="2024-11-15", raise_on_error=False)

    balance = _check(result, BALANCE_CHECK)
    assert not balance.passed
    assert balance.metadata["unbalanced_events"].value == 1
    assert "e1" in balance.metadata["sample"].value
    assert balance.metadata["dates"].value == "2024-11-15"
    assert _check(result, SCHEMA_CHECK).passed
    assert not result.asset_materializations_for_node("daily_ledger_totals")


def test_an_entry_with_two_sides_fails_the_schema_check_with_a_sample(ledger_url, instance):
    materialize(ledger_url, instance, partition_key="2024-11-15")
    _corrupt(ledger_url, debit=200)

    result = materialize(ledger_url, instance, partition_key="2024-11-15", raise_on_error=False)

    schema = _check(result, SCHEMA_CHECK)
    assert not schema.passed
    assert schema.metadata["failing_rows"].value == 1
    assert not result.asset_materializations_for_node("daily_ledger_totals")


def test_the_schedule_requests_yesterday_shortly_after_local_midnight():
    schedule = build_daily_schedule("Europe/Lisbon")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2024, 11, 16, 0, 15, tzinfo=ZoneInfo("Europe/Lisbon"))
    )

    request = schedule(context)

    assert schedule.cron_schedule == "15 0 * * *"
    assert schedule.execution_timezone == "Europe/Lisbon"
    assert request.partition_key == "2024-11-15"


def test_the_inbox_sensor_requests_each_new_file_once(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("\n".join(jsonl(raw_event("e1"))))
    (inbox / "notes.txt").write_text("not events")
    monkeypatch.setenv("LEDGER_INBOX", str(inbox))

    first = inbox_sensor(dg.build_sensor_context())
    [request] = first.run_requests
    second = inbox_sensor(dg.build_sensor_context(cursor=first.cursor))
    (inbox / "b.jsonl").write_text("\n".join(jsonl(raw_event("e9", "order-9"))))
    third = inbox_sensor(dg.build_sensor_context(cursor=second.cursor))

    config = request.run_config["ops"]["land_inbox_file"]["config"]
    assert config["path"] == str((inbox / "a.jsonl").resolve())
    assert list(json.loads(first.cursor)) == ["a.jsonl"]
    assert second.run_requests == []
    assert [r.tags["ledger/inbox_file"] for r in third.run_requests] == ["b.jsonl"]


def test_the_inbox_job_lands_the_file_and_moves_it_aside(tmp_path, ledger_url):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "late.jsonl"
    path.write_text("\n".join(jsonl(raw_event("e7", "order-7"), "not json")))

    result = import_inbox_job.execute_in_process(
        run_config={
            "ops": {
                "land_inbox_file": {
                    "config": {"path": str(path), "landed_folder": str(inbox / "landed")}
                }
            }
        },
        resources={"ledger": LedgerResource(database_url=ledger_url, timezone="UTC")},
    )

    assert result.success
    assert not path.exists()
    assert (inbox / "landed" / "late.jsonl").exists()
    with LedgerStore(ledger_url) as store:
        assert "e7" in set(store.order_events()["event_id"])
        assert store.rejected_counts() == {"quarantined": 1}


def test_landed_events_sensor_requests_one_run_over_the_unposted_dates(ledger_url, instance):
    sensor = build_landed_events_sensor(PARTITIONS)
    resources = {"ledger": LedgerResource(database_url=ledger_url, timezone="UTC")}

    [request] = sensor(dg.build_sensor_context(resources=resources)).run_requests
    materialize(ledger_url, instance, tags=dict(request.tags))
    after = sensor(dg.build_sensor_context(resources=resources))

    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        "2024-11-15",
        "2024-11-16",
    )
    assert isinstance(after, dg.SkipReason)


def test_a_late_event_for_a_past_date_is_requested_and_posted_on_its_own_date(ledger_url, instance):
    sensor = build_landed_events_sensor(PARTITIONS)
    resources = {"ledger": LedgerResource(database_url=ledger_url, timezone="UTC")}
    materialize(
        ledger_url, instance, tags={RANGE_START_TAG: "2024-11-15", RANGE_END_TAG: "2024-11-16"}
    )
    with LedgerStore(ledger_url) as store:
        store.land(records(jsonl(raw_event("late", "order-5", occurred_at="2024-11-03T08:00:00Z"))))

    [request] = sensor(dg.build_sensor_context(resources=resources)).run_requests
    materialize(ledger_url, instance, tags=dict(request.tags))

    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        "2024-11-03",
        "2024-11-03",
    )
    assert {
        row[0] for row in entry_rows(ledger_url, dt.date(2024, 11, 3), dt.date(2024, 11, 3))
    } == {"late"}


def test_the_code_location_loads_with_partitions_from_the_earliest_event(ledger_url):
    definitions = build_definitions(Settings(database_url=ledger_url, timezone=ZoneInfo("UTC")))

    graph = definitions.resolve_asset_graph()
    partitions_def = graph.get(dg.AssetKey("ledger_entries")).partitions_def
    assert partitions_def.get_first_partition_key() == "2024-11-15"
    assert graph.get(dg.AssetKey("ledger_entries")).parent_keys == {dg.AssetKey("order_events")}
    assert definitions.resolve_job_def("ledger_job") is not None


def test_every_sensor_and_the_schedule_run_as_soon_as_the_daemon_does(ledger_url):
    """Dropping a file into the inbox, a late event and a due delivery need nobody to switch
    anything on in the UI first."""
    definitions = build_definitions(Settings(database_url=ledger_url, timezone=ZoneInfo("UTC")))
    repository = definitions.get_repository_def()

    sensors = {sensor.name: sensor.default_status for sensor in repository.sensor_defs}
    schedules = {schedule.name: schedule.default_status for schedule in repository.schedule_defs}

    running = dg.DefaultSensorStatus.RUNNING
    assert sensors == {
        "inbox_sensor": running,
        "landed_events_sensor": running,
        "registry_partitions_sensor": running,
        "registry_totals_automation": running,
        "deliveries_sensor": running,
    }
    assert schedules == {"daily_ledger_schedule": dg.DefaultScheduleStatus.RUNNING}
