"""The `deliver` and `deliveries` verbs: what each prints and how each fails."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.delivery.worker import deliver_pass
from ledger_pipeline.storage.deliveries import DeliveryStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import history, jsonl, raw_event, records
from ledger_pipeline_tests.webhook_receiver import (  # noqa: F401 (the fixture)
    Reply,
    webhook_receiver_fixture,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def ledger(database_url, monkeypatch, webhook_receiver):
    """A ledger with registry `books` delivering to the receiver; returns a function that runs
    one command."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.delenv("LEDGER_TIMEZONE", raising=False)
    with LedgerStore(database_url) as store:
        RegistryStore(store).create(
            Registry("books", url=webhook_receiver.url("/hooks"), secret=SECRET)
        )
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args))

    return run


@pytest.fixture
def posted(database_url):
    def post(*events):
        with LedgerStore(database_url) as store:
            store.land(records(jsonl(*events)))
            store.post()

    return post


@pytest.fixture
def make_dead(database_url, webhook_receiver):
    """Fails the next delivery 8 times (every try of the schedule), a day apart."""

    def fail() -> None:
        webhook_receiver.reply("/hooks", *[Reply(500)] * 8)
        with LedgerStore(database_url) as store:
            for day in range(8):
                deliver_pass(
                    store,
                    allow_private=True,
                    clock=lambda day=day: dt.datetime.now(dt.UTC) + dt.timedelta(days=day),
                )

    return fail


def delivery_ids(database_url, status=None) -> list[int]:
    with LedgerStore(database_url) as store:
        return sorted(d.id for d in DeliveryStore(store).list(status=status))


def test_deliver_sends_what_is_due_and_prints_the_report(ledger, posted, webhook_receiver):
    posted(*history("a", 2), raw_event("evt-b", "b"))

    result = ledger("deliver")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"sent 3 in 2 batches in \d+\.\d s: 3 succeeded, 0 retried, 0 dead", lines[0]
    )
    assert lines[1] == "  books: sent 3, succeeded 3, retried 0, dead 0"
    assert lines[2] == "slowest endpoints:"
    assert lines[3].startswith(f"  127.0.0.1:{webhook_receiver.port}: mean ")
    assert len(webhook_receiver.requests()) == 3


def test_deliver_names_each_registrys_last_failure(ledger, posted, webhook_receiver):
    posted(raw_event("evt-a", "a"), raw_event("evt-b", "b"))
    webhook_receiver.reply("/hooks", Reply(200), Reply(503))

    result = ledger("deliver", "--workers", "1", "--batch-size", "1")

    assert result.stdout.splitlines()[1] == (
        "  books: sent 2, succeeded 1, retried 1, dead 0; last failure: status 503"
    )


def test_deliver_to_a_private_address_says_it_was_refused(ledger, posted, monkeypatch):
    monkeypatch.delenv("LEDGER_ALLOW_PRIVATE_URLS", raising=False)
    posted(raw_event("evt-a", "a"))

    result = ledger("deliver")

    assert "retried 1, dead 0; last failure: refused: 127.0.0.1 " in result.stdout


def test_deliver_with_nothing_due_sends_nothing(ledger):
    result = ledger("deliver")

    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("sent 0 in 0 batches")


def test_list_shows_deliveries_newest_first_and_filters_by_status(
    ledger, posted, webhook_receiver, database_url
):
    posted(raw_event("evt-1"), raw_event("evt-2", "order-2"))
    webhook_receiver.reply("/hooks", Reply(500))
    ledger("deliver", "--batch-size", "1", "--workers", "1")

    everything = ledger("deliveries", "list")
    failing = ledger("deliveries", "list", "--status", "failing")

    first, second = delivery_ids(database_url)
    assert everything.stdout.splitlines()[0] == (
        f"{second} books order order-2 v1 succeeded, 1 attempt"
    )
    assert re.fullmatch(
        rf"{first} books order order-1 v1 pending, 1 attempt, next \S+Z, last: status 500",
        everything.stdout.splitlines()[1],
    )
    assert len(failing.stdout.splitlines()) == 1
    assert failing.stdout.startswith(f"{first} books order order-1 v1 pending")


def test_list_with_no_delivery_says_so(ledger):
    assert ledger("deliveries", "list", "--registry", "books").stdout == "no deliveries\n"


def test_list_or_replay_of_an_unknown_registry_is_an_error_naming_it(ledger):
    listed = ledger("deliveries", "list", "--registry", "nope")
    replayed = ledger("deliveries", "replay", "--registry", "nope")

    unknown = "error: unknown registry 'nope': see `ledger-pipeline registry list`\n"
    assert (listed.exit_code, listed.stdout, listed.stderr) == (1, "", unknown)
    assert (replayed.exit_code, replayed.stdout, replayed.stderr) == (1, "", unknown)


def test_show_prints_every_attempt_and_never_the_secret(ledger, posted, webhook_receiver):
    posted(raw_event("evt-1"))
    webhook_receiver.reply("/hooks", Reply(503, body=b"try later"))
    ledger("deliver")

    [delivery_id] = [line.split()[0] for line in ledger("deliveries", "list").stdout.splitlines()]
    result = ledger("deliveries", "show", delivery_id)

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"delivery {delivery_id}: pending"
    assert "registry: books" in lines
    assert "event: evt-1 (order order-1 v1)" in lines
    assert "attempts: 1" in lines
    assert re.search(r"^  1\. \S+Z 503 in \d+ ms by \S+: status 503$", result.stdout, re.M)
    assert "     response: try later" in lines
    assert SECRET not in result.stdout
    assert "whsec_" not in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("deliveries", "show", "2147483648"),
        ("deliveries", "skip", "99999999999999999999999"),
        ("deliveries", "replay", "1", "99999999999999999999999"),
        ("deliveries", "list", "--limit", "99999999999999999999999"),
    ],
)
def test_an_id_or_limit_past_the_largest_id_is_a_usage_error(ledger, command):
    result = ledger(*command)

    assert result.exit_code == 2
    # The message as one line: the error box wraps it.
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "Input should be less than or equal to 2147483647" in message


def test_show_of_an_unknown_delivery_is_an_error_naming_it(ledger):
    result = ledger("deliveries", "show", "999")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: there is no delivery 999: see `ledger-pipeline deliveries list`\n"
    )


def test_replay_by_registry_and_status_then_deliver(
    ledger, posted, make_dead, webhook_receiver, database_url
):
    posted(*history("a", 2))
    make_dead()
    [dead] = delivery_ids(database_url, "dead")

    replayed = ledger("deliveries", "replay", "--registry", "books", "--status", "dead")
    delivered = ledger("deliver")

    assert replayed.stdout == ("replayed 1 delivery: run `ledger-pipeline deliver` to send them\n")
    assert delivered.stdout.splitlines()[1] == "  books: sent 2, succeeded 2, retried 0, dead 0"
    assert delivery_ids(database_url, "succeeded") == sorted([dead, dead + 1])


def test_replay_by_id_and_skip_by_id(ledger, posted, make_dead, database_url):
    posted(*history("a", 3))
    make_dead()
    [dead] = delivery_ids(database_url, "dead")

    assert ledger("deliveries", "skip", str(dead)).stdout == "skipped 1 delivery\n"
    assert (
        ledger("deliveries", "skip", str(dead)).stdout
        == "skipped 0 deliveries (1 skipped already)\n"
    )
    assert ledger("deliveries", "replay", str(dead)).stdout.startswith("replayed 1 delivery:")
    assert delivery_ids(database_url, "pending") == [dead, dead + 1, dead + 2]


def test_replaying_a_succeeded_delivery_is_an_error(ledger, posted, database_url):
    posted(raw_event("evt-1"))
    ledger("deliver")
    [delivery_id] = delivery_ids(database_url)

    result = ledger("deliveries", "replay", str(delivery_id))

    assert result.exit_code == 1
    assert result.stderr == f"error: cannot replay delivery {delivery_id}: it has succeeded\n"


def test_replay_with_ids_and_a_filter_is_an_error(ledger):
    result = ledger("deliveries", "replay", "1", "--status", "dead")

    assert result.exit_code == 1
    assert result.stderr == "error: give delivery ids or --registry/--status, not both\n"


def test_replay_of_pending_deliveries_is_an_error_naming_the_choices(ledger):
    result = ledger("deliveries", "replay", "--status", "pending")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot replay pending deliveries: choose dead, skipped or failing\n"
    )


def test_replay_without_a_choice_is_an_error(ledger):
    result = ledger("deliveries", "replay")

    assert result.exit_code == 1
    assert "choose the deliveries to replay" in result.stderr
