"""The `ledger-pipeline` command: what each verb prints and how it fails."""

from __future__ import annotations

import gzip

import pytest
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline_tests.factories import history, jsonl, raw_event


@pytest.fixture
def ledger(database_url, monkeypatch):
    """Points the command at a fresh ledger; returns a function that runs one command."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.delenv("LEDGER_TIMEZONE", raising=False)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args))

    return run


def write_lines(path, *events):
    path.write_text("\n".join(jsonl(*events)) + "\n")
    return path


def test_import_prints_the_counts_and_each_rejected_line(ledger, tmp_path):
    path = write_lines(
        tmp_path / "orders.jsonl",
        raw_event("evt-1", version=2),
        raw_event("evt-1", version=2),
        raw_event("evt-0", version=1),
        "{not json",
    )

    result = ledger("import", str(path))

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "orders.jsonl: 1 accepted, 1 duplicate, 1 stale, 1 quarantined",
        "  line 3: stale (event evt-0): order.version 1 is not above the highest landed version 2",
        "  line 4: quarantined (event -): "
        "bad JSON: Expecting property name enclosed in double quotes at column 2",
    ]


def test_importing_a_file_again_reports_every_event_as_a_duplicate(ledger, tmp_path):
    path = write_lines(tmp_path / "orders.jsonl", *history("order-1"))
    ledger("import", str(path))

    result = ledger("import", str(path))

    assert result.stdout.splitlines() == [
        "orders.jsonl: 0 accepted, 3 duplicate, 0 stale, 0 quarantined"
    ]


def test_blank_lines_are_skipped_and_line_numbers_count_them(ledger, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text("\n" + "\n".join(jsonl(raw_event("evt-1"))) + "\n\n{not json\n")

    result = ledger("import", str(path))

    assert result.stdout.splitlines()[0] == (
        "orders.jsonl: 1 accepted, 0 duplicate, 0 stale, 1 quarantined"
    )
    assert result.stdout.splitlines()[1].startswith("  line 4: quarantined")


def test_importing_a_missing_file_fails_with_one_line(ledger, tmp_path):
    result = ledger("import", str(tmp_path / "missing.jsonl"))

    assert result.exit_code == 1
    missing = tmp_path / "missing.jsonl"
    assert result.stderr == f"error: cannot read {missing}: No such file or directory\n"


def test_importing_a_gzipped_file_as_json_lines_fails_with_one_line_and_lands_nothing(
    ledger, tmp_path
):
    path = tmp_path / "orders.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(jsonl(raw_event("evt-1"))).encode()))

    result = ledger("import", str(path))

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path} is gzip-compressed, and JSON Lines are read as plain text: for the "
        "hotel bookings CSV give --format hotel-bookings, else gunzip the file first\n"
    )
    assert "events: 0 landed" in ledger("status").stdout


def test_a_file_that_starts_with_a_byte_order_mark_and_ends_lines_in_crlf_lands_whole(
    ledger, tmp_path
):
    path = tmp_path / "orders.jsonl"
    lines = jsonl(raw_event("evt-1"), raw_event("evt-2", "order-2"))
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")

    result = ledger("import", str(path))

    assert result.stdout == "orders.jsonl: 2 accepted, 0 duplicate, 0 stale, 0 quarantined\n"


def test_an_amount_or_a_moment_the_ledger_cannot_hold_is_quarantined_and_the_rest_post(
    ledger, tmp_path
):
    huge = raw_event("evt-2", "order-2", retail=10**30, tax=0)
    far = raw_event("evt-3", "order-3", occurred_at="9999-12-31T23:59:59+00:00")
    path = write_lines(
        tmp_path / "orders.jsonl", raw_event("evt-1"), huge, far, raw_event("evt-4", "order-4")
    )

    landed = ledger("import", str(path))
    posted = ledger("post")

    assert landed.stdout.splitlines() == [
        "orders.jsonl: 2 accepted, 0 duplicate, 0 stale, 2 quarantined",
        "  line 2: quarantined (event evt-2): "
        "order.items[0].retail is beyond 1000000000000000 (1000000000000000000000000000000)",
        "  line 3: quarantined (event evt-3): "
        "occurred_at '9999-12-31T23:59:59+00:00' is out of range: dates from 1900 to 2199 are "
        "taken",
    ]
    assert posted.exit_code == 0, posted.output
    # Two orders of 22.00 each: Dr cash 22.00, Cr deferred_revenue 20.00, Cr tax 2.00.
    assert posted.stdout.splitlines()[0] == "posted 2 events: 6 entries"
    assert posted.stdout.splitlines()[-1] == "  EUR: debit 44.00, credit 44.00"


def test_importing_a_folder_fails_with_one_line(ledger, tmp_path):
    result = ledger("import", str(tmp_path))

    assert result.exit_code == 1
    assert result.stderr == f"error: cannot read {tmp_path}: Is a directory\n"


def test_post_prints_the_counts_and_the_totals_per_currency(ledger, tmp_path):
    ledger("import", str(write_lines(tmp_path / "orders.jsonl", raw_event("evt-1"))))

    result = ledger("post")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "posted 1 events: 3 entries",
        "  entries on cash: 1",
        "  entries on deferred_revenue: 1",
        "  entries on tax: 1",
        "  EUR: debit 22.00, credit 22.00",
    ]


def test_post_from_to_posts_only_the_events_of_those_dates(ledger, tmp_path):
    monday = raw_event("evt-1", "order-1", occurred_at="2024-11-18T10:00:00+00:00")
    tuesday = raw_event("evt-2", "order-2", occurred_at="2024-11-19T10:00:00+00:00")
    ledger("import", str(write_lines(tmp_path / "orders.jsonl", monday, tuesday)))

    first = ledger("post", "--from", "2024-11-19", "--to", "2024-11-19")
    rest = ledger("post", "--to", "2024-11-18")

    assert first.stdout.splitlines()[0] == "posted 1 events: 3 entries"
    assert rest.stdout.splitlines()[0] == "posted 1 events: 3 entries"


def test_post_with_from_after_to_fails_with_one_line(ledger):
    result = ledger("post", "--from", "2024-11-19", "--to", "2024-11-18")

    assert result.exit_code == 1
    assert result.stderr == "error: --from 2024-11-19 is after --to 2024-11-18\n"


def test_codes_add_list_and_remove(ledger):
    added = ledger("codes", "add", "4000", "--account", "deferred_revenue", "--product", "Museum")
    first = ledger("codes", "add", "1000", "--account", "cash", "--position", "1")
    listed = ledger("codes", "list")
    removed = ledger("codes", "remove", "1")
    after = ledger("codes", "list")

    assert added.stdout == (
        "added rule 1 at position 1: code 4000 for account=deferred_revenue, product=Museum\n"
    )
    assert first.stdout == "added rule 2 at position 1: code 1000 for account=cash\n"
    assert listed.stdout.splitlines() == [
        "  1. rule 2: code 1000 for account=cash",
        "  2. rule 1: code 4000 for account=deferred_revenue, product=Museum",
    ]
    assert removed.stdout == (
        "removed rule 1: code 4000 for account=deferred_revenue, product=Museum\n"
    )
    assert after.stdout == "  1. rule 2: code 1000 for account=cash\n"


def test_codes_list_of_a_ledger_without_rules_says_so(ledger):
    assert ledger("codes", "list").stdout == "no ledger-code rules\n"


def test_removing_an_unknown_rule_fails_with_one_line(ledger):
    result = ledger("codes", "remove", "42")

    assert result.exit_code == 1
    assert result.stderr == "error: there is no ledger-code rule with id 42\n"


def test_opening_the_ledger_with_another_timezone_fails_with_one_line(ledger, monkeypatch):
    ledger("codes", "list")
    monkeypatch.setenv("LEDGER_TIMEZONE", "Europe/Vienna")

    result = ledger("codes", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: LEDGER_TIMEZONE is 'Europe/Vienna' but this ledger was created in 'UTC'"
    )
    assert result.stderr.count("\n") == 1


def test_an_unknown_timezone_fails_with_one_line_naming_the_variable(ledger, monkeypatch):
    monkeypatch.setenv("LEDGER_TIMEZONE", "Mars/Olympus")

    result = ledger("post")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: LEDGER_TIMEZONE='Mars/Olympus' is not an IANA")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "verb",
    [[], ["import"], ["post"], ["codes"], ["codes", "add"], ["codes", "list"], ["codes", "remove"]],
)
def test_every_verb_has_help(verb):
    result = CliRunner().invoke(app, [*verb, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_a_database_that_cannot_be_opened_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("LEDGER_DATABASE_URL", "sqlite:////proc/no-such-folder/ledger.db")

    result = CliRunner().invoke(app, ["codes", "list"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot use the ledger database named by")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2017-02-30", "'2017-02-30' is not a date: day is out of range for month"),
        ("2017-8-1", "'2017-8-1' is not a date written YYYY-MM-DD"),
        ("yesterday", "'yesterday' is not a date written YYYY-MM-DD"),
    ],
)
def test_a_date_option_says_what_is_wrong_with_the_date(ledger, value, problem):
    result = ledger("post", "--from", value, "--to", "2017-03-01")

    assert result.exit_code == 2
    # The message is boxed and wrapped: compare its words.
    assert problem in " ".join(result.output.replace("\u2502", " ").split())
