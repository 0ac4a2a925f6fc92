"""The registry aggregates in Dagster: the (date, registry) partitions, the sensor that keeps the
registry partitions equal to the registries, a one-registry backfill, and the CLI.

Events are one line of 22.00 (2.00 tax, 2 units) sold before its travel date, so each posts
Dr cash 22.00, Cr deferred_revenue 20.00 and Cr tax 2.00.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

# Where Dagster resolves dynamic partitions while it plans a backfill (no public entry point).
from dagster._core.definitions.partitions.context import partition_loading_context
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline.core.payloads import ledger_report
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs.ledger.assets import BALANCE_CHECK, build_ledger_assets
from ledger_pipeline.defs.ledger.jobs import POSTING_TAG
from ledger_pipeline.defs.ledger.partitions import ledger_partitions
from ledger_pipeline.defs.ledger.resources import LedgerResource
from ledger_pipeline.defs.ledger.sensors import RANGE_END_TAG, RANGE_START_TAG
from ledger_pipeline.defs.registries.assets import build_registry_assets
from ledger_pipeline.defs.registries.partitions import REGISTRY_PARTITIONS, partition_key
from ledger_pipeline.defs.registries.sensors import registry_partitions_sensor
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.registry_totals import RegistryTotalsStore, report_from_totals
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records

PARTITIONS = ledger_partitions(dt.date(2024, 11, 1), "UTC")
[REGISTRY_TOTALS] = build_registry_assets(PARTITIONS)
NOV_15 = dt.date(2024, 11, 15)
NOV_16 = dt.date(2024, 11, 16)
NOV_17 = dt.date(2024, 11, 17)


def on(day: int, hour: int = 9) -> str:
    return f"2024-11-{day:02d}T{hour:02d}:00:00+00:00"


@pytest.fixture
def ledger_url(tmp_path):
    """Posted events on 2024-11-15..17 (one Zoo order with tags on the 16th) and two registries
    grouped by product."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    zoo = raw_event("e2", "o2", occurred_at=on(16), product="Zoo")
    zoo["order"]["items"][0]["product_tags"] = ["outdoor", "family"]
    with LedgerStore(url, ZoneInfo("UTC")) as store:
        store.land(
            records(
                jsonl(
                    raw_event("e1", "o1", occurred_at=on(15)),
                    zoo,
                    raw_event("e3", "o3", occurred_at=on(16, 10), channel="Web"),
                    raw_event("e4", "o4", occurred_at=on(17)),
                )
            )
        )
        store.post()
        registries = RegistryStore(store)
        for name in ("books", "other"):
            registries.create(
                Registry(name=name, url="https://books.example/h", group_by=("product",))
            )
    return url


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        test_instance.add_dynamic_partitions(REGISTRY_PARTITIONS, ["books", "other"])
        yield test_instance


def resources(url: str) -> dict:
    return {"ledger": LedgerResource(database_url=url, timezone="UTC")}


def materialize(url, instance, first: str, last: str):
    """One run of the registry aggregates of the partition keys from `first` to `last`."""
    return dg.materialize(
        [REGISTRY_TOTALS],
        instance=instance,
        resources=resources(url),
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
    )


def stored(url: str, registry: str) -> list[tuple]:
    """The registry's rows as stored, every column."""
    table = tables.registry_totals
    with LedgerStore(url) as store, store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(table)
            .where(table.c.registry == registry)
            .order_by(table.c.date, table.c.currency, table.c.group_values)
        )
        return [tuple(row) for row in rows]


def groups(url: str, registry: str) -> list[tuple]:
    with LedgerStore(url) as store:
        rows = RegistryTotalsStore(store).read(registry)
    return [(row.date, row.group, row.totals["debit"], row.totals["credit"]) for row in rows]


def materialized_keys(instance, asset_key: str = "registry_totals") -> list[str]:
    records_ = instance.fetch_materializations(dg.AssetKey(asset_key), limit=1000).records
    return sorted(record.partition_key for record in records_)


def test_one_date_of_one_registry_writes_that_registry_s_rows_of_that_date(ledger_url, instance):
    key = partition_key(NOV_16, "books")

    result = dg.materialize(
        [REGISTRY_TOTALS], instance=instance, resources=resources(ledger_url), partition_key=key
    )

    assert result.success
    assert key == "2024-11-16|books"
    # Zoo 22.00 and Museum 22.00 (channel Web) on the 16th.
    assert groups(ledger_url, "books") == [
        (NOV_16, {"product": "Museum"}, 2200, 2200),
        (NOV_16, {"product": "Zoo"}, 2200, 2200),
    ]
    assert groups(ledger_url, "other") == []
    metadata = result.asset_materializations_for_node("registry_totals")[0].metadata
    assert metadata["rows"].value == 2
    assert "| books      | EUR        | 44.00   | 44.00    |" in (
        metadata["totals_per_currency"].value
    )


def test_a_range_of_dates_of_one_registry_is_one_run(ledger_url, instance):
    result = materialize(ledger_url, instance, "2024-11-15|books", "2024-11-17|books")

    assert result.success
    assert len(instance.get_runs()) == 1
    assert materialized_keys(instance) == [
        "2024-11-15|books",
        "2024-11-16|books",
        "2024-11-17|books",
    ]
    assert [row[:2] for row in groups(ledger_url, "books")] == [
        (NOV_15, {"product": "Museum"}),
        (NOV_16, {"product": "Museum"}),
        (NOV_16, {"product": "Zoo"}),
        (NOV_17, {"product": "Museum"}),
    ]


def test_a_backfill_of_one_registry_over_dates_is_planned_as_one_run(instance):
    """What the UI's backfill does with a single-run policy: Dagster turns the selected keys
    into key ranges, one run each; dates of one registry are one range."""
    partitions_def = REGISTRY_TOTALS.partitions_def
    keys = [partition_key(NOV_15 + dt.timedelta(days=n), "books") for n in range(10)]

    with partition_loading_context(dynamic_partitions_store=instance):
        subset = partitions_def.subset_with_partition_keys(keys)
        ranges = subset.get_partition_key_ranges(partitions_def)

    assert REGISTRY_TOTALS.backfill_policy == dg.BackfillPolicy.single_run()
    assert [(r.start, r.end) for r in ranges] == [("2024-11-15|books", "2024-11-24|books")]


def test_changing_a_registry_then_backfilling_it_leaves_the_others_as_they_were(
    ledger_url, instance
):
    materialize(ledger_url, instance, "2024-11-15|books", "2024-11-17|other")
    other_before = stored(ledger_url, "other")
    other_keys_before = [key for key in materialized_keys(instance) if key.endswith("|other")]
    with LedgerStore(ledger_url) as store:
        RegistryStore(store).update("books", group_by=("order_channel",))

    result = materialize(ledger_url, instance, "2024-11-15|books", "2024-11-17|books")

    assert result.success
    assert groups(ledger_url, "books") == [
        (NOV_15, {"order_channel": "Terminals"}, 2200, 2200),
        (NOV_16, {"order_channel": "Terminals"}, 2200, 2200),
        (NOV_16, {"order_channel": "Web"}, 2200, 2200),
        (NOV_17, {"order_channel": "Terminals"}, 2200, 2200),
    ]
    assert stored(ledger_url, "other") == other_before
    assert len(other_before) == 4
    assert [
        key for key in materialized_keys(instance) if key.endswith("|other")
    ] == other_keys_before


def test_aggregates_summed_over_dates_equal_the_report_for_a_tag_column(ledger_url, instance):
    with LedgerStore(ledger_url) as store:
        books = RegistryStore(store).update(
            "books", group_by=("product_tags",), totals=("quantity", "debit", "credit")
        )
    materialize(ledger_url, instance, "2024-11-15|books", "2024-11-17|books")

    with LedgerStore(ledger_url) as store:
        summed = report_from_totals(books, RegistryTotalsStore(store).read("books"))
        report = ledger_report(books, store.entries(NOV_15, NOV_17))

    assert summed == report
    # Three untagged orders, and the Zoo order once per tag.
    assert summed == [
        {
            "product_tags": None,
            "currency": "EUR",
            "quantity": 6,
            "debit": "66.00",
            "credit": "66.00",
        },
        {
            "product_tags": "family",
            "currency": "EUR",
            "quantity": 2,
            "debit": "22.00",
            "credit": "22.00",
        },
        {
            "product_tags": "outdoor",
            "currency": "EUR",
            "quantity": 2,
            "debit": "22.00",
            "credit": "22.00",
        },
    ]


def test_the_sensor_adds_new_registries_and_deletes_removed_ones(ledger_url, instance):
    instance.delete_dynamic_partition(REGISTRY_PARTITIONS, "other")
    instance.add_dynamic_partitions(REGISTRY_PARTITIONS, ["gone"])

    result = registry_partitions_sensor(
        dg.build_sensor_context(instance=instance, resources=resources(ledger_url))
    )
    for request in result.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    again = registry_partitions_sensor(
        dg.build_sensor_context(instance=instance, resources=resources(ledger_url))
    )

    assert [
        (type(request).__name__, request.partitions_def_name, list(request.partition_keys))
        for request in result.dynamic_partitions_requests
    ] == [
        ("AddDynamicPartitionsRequest", "registries", ["other"]),
        ("DeleteDynamicPartitionsRequest", "registries", ["gone"]),
    ]
    assert sorted(instance.get_dynamic_partitions(REGISTRY_PARTITIONS)) == ["books", "other"]
    assert again.dynamic_partitions_requests == []
    assert again.skip_reason is not None


def test_a_partition_of_a_deleted_registry_fails_with_its_name(ledger_url, instance):
    with LedgerStore(ledger_url) as store:
        RegistryStore(store).delete("other")

    result = dg.materialize(
        [REGISTRY_TOTALS],
        instance=instance,
        resources=resources(ledger_url),
        partition_key="2024-11-15|other",
        raise_on_error=False,
    )

    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert "registry 'other' does not exist" in str(failure.event_specific_data.error)


# Following the ledger: the automation condition evaluated by `registry_totals_automation`


def materialize_ledger(url, instance, first: str, last: str, **kwargs):
    """One run of the ledger's assets (events, entries and their checks) over the dates."""
    return dg.materialize(
        build_ledger_assets(PARTITIONS),
        instance=instance,
        resources=resources(url),
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last, POSTING_TAG: "true"},
        **kwargs,
    )


def requested(url: str, instance, cursor=None) -> tuple[set[str], object]:
    """The registry_totals partition keys one evaluation of the automation asks for, and the
    cursor for the next evaluation."""
    result = dg.evaluate_automation_conditions(
        defs=build_definitions(
            Settings(database_url=url, timezone=ZoneInfo("UTC")), start=dt.date(2024, 11, 1)
        ),
        instance=instance,
        cursor=cursor,
    )
    return set(result.get_requested_partitions(dg.AssetKey("registry_totals"))), result.cursor


def test_the_aggregates_follow_the_ledger_entries_of_any_date(ledger_url, instance):
    _, cursor = requested(ledger_url, instance)  # the sensor's first tick, before any run

    assert materialize_ledger(ledger_url, instance, "2024-11-15", "2024-11-16").success
    first, cursor = requested(ledger_url, instance, cursor)
    again, cursor = requested(ledger_url, instance, cursor)
    materialize(ledger_url, instance, "2024-11-15|books", "2024-11-16|other")
    after_their_run, cursor = requested(ledger_url, instance, cursor)
    # A late event for a past date: the daily schedule or the landed-events sensor posts the
    # 15th again.
    assert materialize_ledger(ledger_url, instance, "2024-11-15", "2024-11-15").success
    late, cursor = requested(ledger_url, instance, cursor)

    assert first == {"2024-11-15|books", "2024-11-15|other", "2024-11-16|books", "2024-11-16|other"}
    assert again == set()
    assert after_their_run == set()
    assert late == {"2024-11-15|books", "2024-11-15|other"}


def test_aggregates_made_after_their_entries_are_not_made_again(ledger_url, instance):
    """As `ledger-pipeline materialize` runs them: the entries, then every registry's
    aggregates of the same dates."""
    _, cursor = requested(ledger_url, instance)

    assert materialize_ledger(ledger_url, instance, "2024-11-17", "2024-11-17").success
    materialize(ledger_url, instance, "2024-11-17|books", "2024-11-17|other")

    assert requested(ledger_url, instance, cursor)[0] == set()


def test_a_new_registry_gets_every_date_that_has_entries(ledger_url, instance):
    assert materialize_ledger(ledger_url, instance, "2024-11-15", "2024-11-17").success
    materialize(ledger_url, instance, "2024-11-15|books", "2024-11-17|other")
    _, cursor = requested(ledger_url, instance)

    instance.add_dynamic_partitions(REGISTRY_PARTITIONS, ["new"])

    assert requested(ledger_url, instance, cursor)[0] == {
        "2024-11-15|new",
        "2024-11-16|new",
        "2024-11-17|new",
    }


def test_entries_whose_blocking_check_failed_are_not_rolled_up(ledger_url, instance):
    _, cursor = requested(ledger_url, instance)
    assert materialize_ledger(ledger_url, instance, "2024-11-16", "2024-11-16").success

    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("ledger_entries"),
            check_name=BALANCE_CHECK,
            passed=False,
            partition="2024-11-16",
        )
    )

    assert requested(ledger_url, instance, cursor)[0] == set()


def test_the_code_location_has_the_registry_aggregates_on_dates_x_registries(ledger_url):
    definitions = build_definitions(Settings(database_url=ledger_url, timezone=ZoneInfo("UTC")))

    graph = definitions.resolve_asset_graph()
    node = graph.get(dg.AssetKey("registry_totals"))
    partitions_def = node.partitions_def
    assert isinstance(partitions_def, dg.MultiPartitionsDefinition)
    assert [dimension.name for dimension in partitions_def.partitions_defs] == [
        "date",
        "registry",
    ]
    assert partitions_def.get_partitions_def_for_dimension("date").get_first_partition_key() == (
        "2024-11-15"
    )
    assert node.parent_keys == {dg.AssetKey("ledger_entries")}
    assert node.group_name == "registries"
    assert definitions.resolve_sensor_def("registry_partitions_sensor") is not None
    automation = definitions.resolve_sensor_def("registry_totals_automation")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    assert node.automation_condition is not None
    assert node.automation_condition.get_label() == "follow the ledger"
    # The ledger's job posts; it does not run the registries' aggregates.
    ledger_job = definitions.resolve_job_def("ledger_job")
    assert dg.AssetKey("registry_totals") not in ledger_job.asset_layer.selected_asset_keys


# The command line


@pytest.fixture
def cli(ledger_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_DATABASE_URL", ledger_url)
    monkeypatch.setenv("LEDGER_TIMEZONE", "UTC")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_materialize_one_registry_runs_only_its_aggregates(cli, ledger_url, tmp_path):
    result = cli("materialize", "--registry", "books", "--from", "2024-11-15", "--to", "2024-11-16")

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "run" in line.split()[:3]]
    assert line.startswith("registry totals run ")
    assert line.endswith("2024-11-15..2024-11-16 (books): succeeded, 3 rows")
    assert [row[:2] for row in groups(ledger_url, "books")] == [
        (NOV_15, {"product": "Museum"}),
        (NOV_16, {"product": "Museum"}),
        (NOV_16, {"product": "Zoo"}),
    ]
    assert groups(ledger_url, "other") == []


def test_materialize_an_unknown_registry_says_so(cli):
    result = cli("materialize", "--registry", "nope", "--from", "2024-11-15", "--to", "2024-11-16")

    assert result.exit_code == 1
    assert "unknown registry 'nope'" in result.stderr


def test_materialize_without_a_registry_also_runs_every_registry_s_aggregates(cli, ledger_url):
    result = cli("materialize", "--from", "2024-11-15", "--to", "2024-11-17")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run ") and lines[0].endswith(": succeeded, 12 entries")
    assert lines[1].endswith("2024-11-15..2024-11-17 (books, other): succeeded, 8 rows")
    assert len(groups(ledger_url, "books")) == len(groups(ledger_url, "other")) == 4
