"""The ledger's storage: landing, posting, ledger-code rules, settings and concurrency.

Every test that touches a database runs on SQLite and on PostgreSQL (`database_url`).
The helpers at the top build JSON Lines input; `test_cli` and `test_personal_data` use them too.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
from dataclasses import fields
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pandera.errors as pa_errors
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledger_pipeline.core.events import parse_event
from ledger_pipeline.core.landing import Outcome
from ledger_pipeline.core.posting import LedgerEntry, post_event
from ledger_pipeline.errors import ConfigurationError, LedgerError
from ledger_pipeline.schemas import LedgerEntryFrame, entry_schema_failures
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.store import LedgerStore, Rejection
from ledger_pipeline_tests.factories import history, jsonl, raw_event, records

VIENNA = ZoneInfo("Europe/Vienna")
UTC = ZoneInfo("UTC")

# Helpers


def row_counts(store: LedgerStore) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            table.name: connection.scalar(sa.select(sa.func.count()).select_from(table))
            for table in tables.metadata.sorted_tables
        }


def stored_order_events(store: LedgerStore) -> list[tuple[str, str, int]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                tables.order_events.c.event_id,
                tables.order_events.c.order_id,
                tables.order_events.c.order_version,
            ).order_by(tables.order_events.c.order_id, tables.order_events.c.order_version)
        )
        return [tuple(row) for row in rows]


@pytest.fixture
def store(database_url):
    with LedgerStore(database_url) as opened:
        yield opened


# Schema


def test_migrated_schema_matches_the_table_metadata(store):
    def ours(name, type_, parent_names):
        return not (type_ == "table" and name == tables.VERSION_TABLE)

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": ours}
        )
        assert compare_metadata(context, tables.metadata) == []

        # The comparison sees a difference when there is one.
        changed = copy.deepcopy(tables.metadata)
        changed.tables["order_events"].append_column(sa.Column("extra", sa.Integer))
        assert compare_metadata(context, changed) != []


def test_the_ledger_entries_table_has_a_column_per_entry_field():
    assert list(tables.ledger_entries.columns.keys()) == [f.name for f in fields(LedgerEntry)]


def test_the_entry_frame_has_a_column_per_entry_field():
    assert list(LedgerEntryFrame.to_schema().columns) == [f.name for f in fields(LedgerEntry)]


def test_opening_a_ledger_again_keeps_its_data(database_url):
    with LedgerStore(database_url) as first:
        first.land(records(jsonl(raw_event("evt-1"))))

    with LedgerStore(database_url) as again:
        assert stored_order_events(again) == [("evt-1", "order-1", 1)]


def test_a_sqlite_ledger_runs_in_wal_mode_with_a_busy_timeout(sqlite_url):
    with LedgerStore(sqlite_url) as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("pragma busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("pragma foreign_keys").scalar() == 1


def test_the_folder_of_a_sqlite_ledger_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'ledger.db'}"
    with LedgerStore(url):
        pass
    assert (tmp_path / "new" / "folder" / "ledger.db").is_file()


# Settings and the time zone


def test_settings_default_to_a_local_sqlite_ledger_in_utc():
    settings = Settings.from_environment({})
    assert settings.database_url == "sqlite:///./.ledger/ledger.db"
    assert settings.timezone == UTC


def test_settings_read_the_database_url_and_the_timezone():
    settings = Settings.from_environment(
        {"LEDGER_DATABASE_URL": "sqlite:///x.db", "LEDGER_TIMEZONE": "Europe/Vienna"}
    )
    assert settings.database_url == "sqlite:///x.db"
    assert settings.timezone == VIENNA


@pytest.mark.parametrize("name", ["Mars/Olympus", "utc", "Europe", "../etc/passwd", "/etc/x"])
def test_an_unknown_timezone_is_an_error_naming_the_variable_and_the_value(name):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({"LEDGER_TIMEZONE": name})
    assert f"LEDGER_TIMEZONE={name!r} is not an IANA time zone name" in str(raised.value)


def test_a_database_url_that_is_not_a_url_is_an_error_naming_the_variable():
    with pytest.raises(ConfigurationError, match="LEDGER_DATABASE_URL is not a SQLAlchemy"):
        Settings.from_environment({"LEDGER_DATABASE_URL": "not a url"})


def test_the_timezone_is_stored_when_the_ledger_is_created(database_url):
    with LedgerStore(database_url, VIENNA):
        pass
    with LedgerStore(database_url) as reopened:
        assert reopened.timezone == VIENNA


def test_opening_a_ledger_with_another_timezone_is_an_error_saying_both(database_url):
    with LedgerStore(database_url, VIENNA):
        pass

    with pytest.raises(ConfigurationError) as raised:
        LedgerStore(database_url, UTC)

    message = str(raised.value)
    assert "LEDGER_TIMEZONE is 'UTC' but this ledger was created in 'Europe/Vienna'" in message
    assert "set LEDGER_TIMEZONE=Europe/Vienna to use this ledger" in message


def test_the_accounting_date_is_the_local_date_in_the_ledger_timezone(database_url):
    late_evening_utc = "2024-11-15T23:30:00+00:00"
    with LedgerStore(database_url, VIENNA) as store:
        store.land(records(jsonl(raw_event("evt-1", occurred_at=late_evening_utc))))
        frame = store.order_events()

    assert frame["date"].tolist() == [dt.date(2024, 11, 16)]
    assert frame["occurred_at"].tolist() == [pd.Timestamp("2024-11-15T23:30:00", tz="UTC")]


# Landing


def test_an_import_counts_each_outcome(store):
    lines = jsonl(
        raw_event("evt-1", version=2),
        raw_event("evt-1", version=2),
        raw_event("evt-0", version=1),
        "{not json",
    )

    report = store.land(records(lines))

    assert (report.accepted, report.duplicate, report.stale, report.quarantined) == (1, 1, 1, 1)
    assert report.rejections == [
        Rejection(
            3, "evt-0", Outcome.STALE, "order.version 1 is not above the highest landed version 2"
        ),
        Rejection(
            4,
            None,
            Outcome.QUARANTINED,
            "bad JSON: Expecting property name enclosed in double quotes at column 2",
        ),
    ]


def test_a_file_holding_two_versions_of_an_order_lands_both(store):
    report = store.land(records(jsonl(*history("order-1", versions=2))))

    assert report.accepted == 2
    assert stored_order_events(store) == [
        ("evt-order-1-1", "order-1", 1),
        ("evt-order-1-2", "order-1", 2),
    ]


def test_importing_a_file_again_changes_nothing(store):
    lines = jsonl(*history("order-1"), raw_event("evt-old", version=1), "{not json")
    store.land(records(lines))
    counts_before = row_counts(store)

    report = store.land(records(lines))

    # The landed events are duplicates; the stale and the bad line are decided again, the same.
    assert (report.accepted, report.duplicate, report.stale, report.quarantined) == (0, 3, 1, 1)
    assert row_counts(store) == counts_before


def test_an_event_quarantined_before_its_order_landed_lands_when_imported_again(store):
    confirmed = raw_event("evt-1", "order-1")
    cancelled = raw_event("evt-2", "order-1", 2, "cancelled", "2024-11-16T10:00:00+01:00")
    cancelled["order"]["cancellation"] = {"refund": "FULL"}
    store.land(records(jsonl(cancelled), source="early.jsonl"))

    again = store.land(records(jsonl(confirmed, cancelled), source="all.jsonl"))
    third = store.land(records(jsonl(confirmed, cancelled), source="all.jsonl"))
    posted = store.post()

    assert (again.accepted, again.duplicate, again.quarantined) == (2, 0, 0)
    assert (third.accepted, third.duplicate) == (0, 2)
    # Confirmed and fully refunded: cash Dr 22.00 then Cr 22.00, and so on, each account nets 0.
    assert (posted.debit_per_currency["EUR"], posted.credit_per_currency["EUR"]) == (4400, 4400)
    assert [row[2] for row in stored_order_events(store)] == [1, 2]


def test_overlapping_files_land_each_event_once(store):
    first, second, third = history("order-1")
    store.land(records(jsonl(first, second), source="monday.jsonl"))

    report = store.land(records(jsonl(second, third), source="tuesday.jsonl"))

    assert (report.accepted, report.duplicate) == (1, 1)
    assert [row[2] for row in stored_order_events(store)] == [1, 2, 3]


def test_one_bad_line_among_good_ones_is_quarantined_and_the_rest_land(store):
    negative_quantity = raw_event("evt-bad", "order-2")
    negative_quantity["order"]["items"][0]["quantity"] = -1
    lines = jsonl(raw_event("evt-1", "order-1"), negative_quantity, raw_event("evt-3", "order-3"))

    report = store.land(records(lines))

    assert (report.accepted, report.quarantined) == (2, 1)
    assert report.rejections == [
        Rejection(2, "evt-bad", Outcome.QUARANTINED, "order.items[0].quantity is negative (-1)")
    ]
    assert [row[0] for row in stored_order_events(store)] == ["evt-1", "evt-3"]


def test_a_rejected_line_keeps_its_reason_place_and_allow_listed_document(store):
    stale = raw_event("evt-0", version=1)
    stale["order"]["customer"] = {"name": "Not Kept"}
    store.land(records(jsonl(raw_event("evt-1", version=2), stale, "{not json"), "in.jsonl"))

    stale_row, malformed_row = store.rejected_events()

    assert (stale_row.outcome, stale_row.source, stale_row.line_number) == ("stale", "in.jsonl", 2)
    assert stale_row.event_id == "evt-0"
    assert (stale_row.order_id, stale_row.order_version) == ("order-1", 1)
    assert "customer" not in json.loads(stale_row.document)["order"]
    assert json.loads(stale_row.document)["event_id"] == "evt-0"
    assert (malformed_row.outcome, malformed_row.line_number) == ("quarantined", 3)
    assert (malformed_row.event_id, malformed_row.document) == (None, None)


def test_a_crash_mid_import_keeps_the_chunks_already_committed(database_url):
    lines = jsonl(*(raw_event(f"evt-{number}", f"order-{number}") for number in range(1, 8)))

    def lines_then_a_crash():
        yield from records(lines)[:5]
        raise OSError("the disk went away")

    with LedgerStore(database_url, landing_chunk_lines=2) as store:
        with pytest.raises(OSError, match="the disk went away"):
            store.land(lines_then_a_crash())

        # Lines 1-4 were committed in two chunks; line 5 was in the chunk being read.
        assert [row[0] for row in stored_order_events(store)] == [f"evt-{n}" for n in (1, 2, 3, 4)]

        report = store.land(records(lines))
        assert (report.accepted, report.duplicate) == (3, 4)


def test_versions_of_an_order_split_over_chunks_land_in_file_order(database_url):
    with LedgerStore(database_url, landing_chunk_lines=1) as store:
        report = store.land(records(jsonl(*history("order-1", versions=4))))

        assert report.accepted == 4
        assert [row[2] for row in stored_order_events(store)] == [1, 2, 3, 4]


# Posting


def entries_of(store: LedgerStore) -> list[tuple]:
    frame = store.entries()
    return sorted(
        zip(frame["event_id"], frame["account"], frame["debit"], frame["credit"], strict=True)
    )


def test_posting_inserts_balanced_entries_for_every_landed_event(store):
    store.land(records(jsonl(raw_event("evt-1"))))

    report = store.post()

    assert entries_of(store) == [
        ("evt-1", "cash", 2200, 0),
        ("evt-1", "deferred_revenue", 0, 2000),
        ("evt-1", "tax", 0, 200),
    ]
    assert (report.events, report.entries) == (1, 3)
    assert report.entries_per_account == {"cash": 1, "deferred_revenue": 1, "tax": 1}
    assert (report.debit_per_currency, report.credit_per_currency) == ({"EUR": 2200}, {"EUR": 2200})


def test_posting_again_adds_nothing(store):
    store.land(records(jsonl(*history("order-1"))))
    store.post()
    counts_before = row_counts(store)

    report = store.post()

    assert (report.events, report.entries) == (0, 0)
    assert row_counts(store) == counts_before


def test_an_event_landed_after_its_order_was_posted_posts_only_its_difference(store):
    first, second = history("order-1", versions=2)
    store.land(records(jsonl(first)))
    store.post()
    store.land(records(jsonl(second)))

    report = store.post()

    assert report.events == 1
    assert [row for row in entries_of(store) if row[0] == "evt-order-1-2"] == [
        ("evt-order-1-2", "cash", 200, 0),
        ("evt-order-1-2", "deferred_revenue", 0, 200),
    ]


def test_posting_in_batches_gives_the_entries_of_posting_the_history_at_once(store):
    events = history("order-1", versions=3)
    for event in events:
        store.land(records(jsonl(event)))
        store.post()

    expected, state = [], None
    for event in events:
        entries, state = post_event(state, parse_event(event), timezone=UTC)
        expected.extend(entries)
    frame = store.entries()
    assert sorted(frame["entry_id"]) == sorted(entry.entry_id for entry in expected)
    assert frame["debit"].sum() == sum(entry.debit for entry in expected)


def test_posting_given_dates_posts_only_the_events_of_those_dates(store):
    monday = raw_event("evt-1", "order-1", occurred_at="2024-11-18T10:00:00+00:00")
    tuesday = raw_event("evt-2", "order-2", occurred_at="2024-11-19T10:00:00+00:00")
    store.land(records(jsonl(monday, tuesday)))

    report = store.post([dt.date(2024, 11, 19)])

    assert report.events == 1
    assert set(store.entries()["event_id"]) == {"evt-2"}
    assert store.unposted_dates() == [dt.date(2024, 11, 18)]


def test_the_entries_frame_is_read_by_date_range_with_integer_money(store):
    monday = raw_event("evt-1", "order-1", occurred_at="2024-11-18T10:00:00+00:00")
    tuesday = raw_event("evt-2", "order-2", occurred_at="2024-11-19T10:00:00+00:00")
    store.land(records(jsonl(monday, tuesday)))
    store.post()

    frame = store.entries(dt.date(2024, 11, 19), dt.date(2024, 11, 19))

    assert set(frame["event_id"]) == {"evt-2"}
    assert str(frame["debit"].dtype) == "Int64"
    assert frame["reseller_tags"].tolist() == [(), (), ()]
    assert store.entries(dt.date(2024, 11, 20)).empty


def test_tags_are_stored_as_sorted_json_lists(store):
    event = raw_event("evt-1", reseller={"id": "r-1", "name": "City Tours", "tags": ["b", "a"]})
    store.land(records(jsonl(event)))
    store.post()

    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql("select distinct reseller_tags from ledger_entries")
        assert stored.scalars().all() == ['["a", "b"]']
    assert set(store.entries()["reseller_tags"]) == {("a", "b")}


# Ledger-code rules


def codes_by_account(store: LedgerStore, event_id: str) -> dict[str, set]:
    frame = store.entries()
    frame = frame[frame["event_id"] == event_id]
    codes: dict[str, set] = {}
    for account, code, debit in zip(
        frame["account"], frame["ledger_code"], frame["debit"], strict=True
    ):
        codes.setdefault(account, set()).add((None if pd.isna(code) else code, debit > 0))
    return codes


def test_the_first_matching_code_rule_by_position_wins(store):
    store.add_code_rule("4000", account="deferred_revenue")
    store.add_code_rule("4100", account="deferred_revenue", product="Museum", position=1)
    store.add_code_rule("1000", account="cash")
    store.land(records(jsonl(raw_event("evt-1"))))

    store.post()

    assert codes_by_account(store, "evt-1") == {
        "deferred_revenue": {("4100", False)},
        "cash": {("1000", True)},
        "tax": {(None, False)},
    }


def test_a_rule_field_left_out_matches_anything(store):
    store.add_code_rule("9999")
    store.land(records(jsonl(raw_event("evt-1"))))

    store.post()

    assert set(store.entries()["ledger_code"]) == {"9999"}


def test_a_code_stays_with_the_entry_when_the_rules_change(store):
    first, second = history("order-1", versions=2)
    renamed = raw_event("evt-3", "order-1", 3, "updated", "2024-11-15T15:00:00+01:00")
    renamed["order"]["items"][0]["product"] = "Museum of Art"
    rule = store.add_code_rule("4000", account="deferred_revenue")
    store.land(records(jsonl(first)))
    store.post()

    store.remove_code_rule(rule.id)
    store.add_code_rule("4999", account="deferred_revenue")
    store.land(records(jsonl(second, renamed)))
    store.post()

    # A price change on the same key keeps the code it was first posted with.
    assert codes_by_account(store, "evt-order-1-2")["deferred_revenue"] == {("4000", False)}
    # A renamed product reverses the old key with its code and posts the new key by the rules.
    assert codes_by_account(store, "evt-3")["deferred_revenue"] == {
        ("4000", True),
        ("4999", False),
    }


def test_a_rule_added_at_a_position_moves_the_later_rules_down(store):
    first = store.add_code_rule("A")
    second = store.add_code_rule("B")
    inserted = store.add_code_rule("C", position=1)
    beyond = store.add_code_rule("D", position=99)

    assert [(rule.id, rule.position) for rule in store.list_code_rules()] == [
        (inserted.id, 1),
        (first.id, 2),
        (second.id, 3),
        (beyond.id, 4),
    ]


def test_removing_a_rule_moves_the_later_rules_up(store):
    first = store.add_code_rule("A", account="cash")
    second = store.add_code_rule("B", product="Museum", currency="EUR")

    removed = store.remove_code_rule(first.id)

    assert removed.code == "A"
    [remaining] = store.list_code_rules()
    assert (remaining.id, remaining.position, remaining.code) == (second.id, 1, "B")
    assert remaining.match == {"product": "Museum", "currency": "EUR"}


def test_removing_a_rule_that_does_not_exist_is_an_error(store):
    with pytest.raises(LedgerError, match="there is no ledger-code rule with id 42"):
        store.remove_code_rule(42)


def test_a_rule_on_an_unknown_account_is_an_error(store):
    with pytest.raises(ConfigurationError, match="account 'csh' is not one of cash"):
        store.add_code_rule("1000", account="csh")


# Concurrency


def run_together(*jobs):
    """Runs jobs in threads started at the same moment; re-raises the first failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []

    def run(index, job):
        barrier.wait()
        try:
            results[index] = job()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if failures:
        raise failures[0]
    return results


ORDERS = [f"order-{number:02d}" for number in range(40)]


def test_two_imports_of_overlapping_files_land_each_event_once(database_url, caplog):
    caplog.set_level(logging.INFO, logger="ledger_pipeline")
    events = [event for order_id in ORDERS for event in history(order_id)]
    with (
        LedgerStore(database_url, landing_chunk_lines=7) as one,
        LedgerStore(database_url, landing_chunk_lines=5) as other,
    ):
        reports = run_together(
            lambda: one.land(records(jsonl(*events), "a.jsonl")),
            # The other file starts with the 8th order, so each file starts orders at version 1.
            lambda: other.land(records(jsonl(*events[21:], *events[:21]), "b.jsonl")),
        )

        assert sum(report.accepted for report in reports) == len(events)
        assert sum(report.duplicate for report in reports) == len(events)
        assert len(stored_order_events(one)) == len(events)
    assert "deciding again" not in caplog.text


def test_two_imports_cannot_both_land_the_same_version_of_an_order(database_url):
    confirmations = [raw_event(f"evt-{order_id}-1", order_id) for order_id in ORDERS]

    def competing(prefix):
        return [
            raw_event(f"{prefix}-{order_id}", order_id, 2, "updated", "2024-11-15T12:00:00+01:00")
            for order_id in ORDERS
        ]

    with (
        LedgerStore(database_url, landing_chunk_lines=3) as one,
        LedgerStore(database_url, landing_chunk_lines=4) as other,
    ):
        reports = run_together(
            lambda: one.land(records(jsonl(*confirmations, *competing("a")))),
            lambda: other.land(records(jsonl(*confirmations, *competing("b")))),
        )

        assert sum(report.accepted for report in reports) == 2 * len(ORDERS)
        assert sum(report.stale for report in reports) == len(ORDERS)
        versions = [(row[1], row[2]) for row in stored_order_events(one)]
        assert sorted(versions) == sorted((order_id, v) for order_id in ORDERS for v in (1, 2))


def test_two_posting_runs_at_once_post_each_event_once(database_url):
    events = [event for order_id in ORDERS for event in history(order_id)]
    with (
        LedgerStore(database_url, posting_chunk_orders=3) as one,
        LedgerStore(database_url, posting_chunk_orders=4) as other,
    ):
        one.land(records(jsonl(*events)))

        reports = run_together(one.post, other.post)

        assert sum(report.events for report in reports) == len(events)
        frame = one.entries()
        assert frame["entry_id"].is_unique
        assert sum(report.entries for report in reports) == len(frame)


# Reading and the frames' schemas


def test_unposted_summary_counts_the_events_waiting_and_their_dates(store):
    assert store.unposted_summary() is None
    monday = raw_event("evt-1", "order-1", occurred_at="2024-11-18T10:00:00+00:00")
    wednesday = raw_event("evt-2", "order-2", occurred_at="2024-11-20T10:00:00+00:00")
    store.land(records(jsonl(monday, wednesday)))

    summary = store.unposted_summary()

    assert (summary.events, summary.first_date, summary.last_date) == (
        2,
        dt.date(2024, 11, 18),
        dt.date(2024, 11, 20),
    )
    assert summary.last_landed_at.tzinfo is not None
    store.post()
    assert store.unposted_summary() is None


def test_earliest_event_date_is_that_of_the_earliest_landed_event(store):
    assert store.earliest_event_date() is None
    later = raw_event("evt-1", "order-1", occurred_at="2024-11-20T10:00:00+00:00")
    earlier = raw_event("evt-2", "order-2", occurred_at="2024-11-18T10:00:00+00:00")
    store.land(records(jsonl(later, earlier)))

    assert store.earliest_event_date() == dt.date(2024, 11, 18)


def test_rejections_are_counted_by_the_accounting_date_of_their_event(store):
    lines = jsonl(
        raw_event("evt-1", version=2, occurred_at="2024-11-18T10:00:00+00:00"),
        raw_event("evt-0", version=1, occurred_at="2024-11-17T10:00:00+00:00"),
        raw_event("evt-x", "order-2", 1, "updated", "2024-11-18T10:00:00+00:00"),
    )
    store.land(records(lines))

    assert store.rejected_counts(dt.date(2024, 11, 17), dt.date(2024, 11, 17)) == {"stale": 1}
    assert store.rejected_counts(dt.date(2024, 11, 18)) == {"quarantined": 1}
    assert [row.event_id for row in store.rejected_events(dt.date(2024, 11, 18))] == ["evt-x"]


def test_a_line_that_does_not_parse_is_dated_by_its_import(store):
    store.land(records(jsonl("{not json")))

    [rejected] = store.rejected_events()

    assert rejected.date == rejected.rejected_at.date()


def posted_entries(store: LedgerStore) -> pd.DataFrame:
    store.land(records(jsonl(raw_event("evt-1"))))
    store.post()
    return store.entries(validate=False)


def test_a_valid_entry_frame_has_no_schema_failures(store):
    assert entry_schema_failures(posted_entries(store)).empty


def test_an_entry_with_both_sides_set_fails_the_schema(store):
    entries = posted_entries(store)
    entries.loc[0, ["debit", "credit"]] = [100, 100]

    failures = entry_schema_failures(entries)

    assert set(failures["check"]) == {"one_side_per_entry"}
    assert set(failures["index"]) == {0}


def test_an_account_type_that_does_not_fit_the_account_fails_the_schema(store):
    entries = posted_entries(store)
    entries.loc[1, "account_type"] = "expense"

    failures = entry_schema_failures(entries)

    assert set(failures["check"]) == {"account_type_of_account"}


def test_a_negative_or_unknown_account_fails_the_schema(store):
    entries = posted_entries(store)
    entries.loc[0, "debit"] = -5
    entries.loc[2, "account"] = "petty_cash"

    with pytest.raises(pa_errors.SchemaErrors) as raised:
        LedgerEntryFrame.validate(entries, lazy=True)

    cases = raised.value.failure_cases
    failed = set(zip(cases["column"], cases["check"], strict=True))
    assert ("debit", "greater_than_or_equal_to(0)") in failed
    assert any(column == "account" and check.startswith("isin") for column, check in failed)
