"""The `registry`, `summary` and `report` verbs: what each prints and how each fails."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline.core.payloads import idempotency_key
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://books.example/hooks"


@pytest.fixture
def ledger(database_url, monkeypatch):
    """Points the command at a fresh ledger; returns a function that runs one command."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.delenv("LEDGER_TIMEZONE", raising=False)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args))

    return run


@pytest.fixture
def posted(database_url, ledger):
    """Lands and posts order events through the store of the ledger the command uses."""

    def post(*events):
        with LedgerStore(database_url) as store:
            store.land(records(jsonl(*events)))
            store.post()

    return post


def created_secret(result) -> str:
    [line] = [line for line in result.stdout.splitlines() if line.startswith("secret: ")]
    return line.removeprefix("secret: ")


# registry create, list, show


def test_create_prints_the_generated_secret_once(ledger):
    result = ledger("registry", "create", "books", "--url", URL)

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "created registry books"
    assert lines[1].startswith("secret: whsec_")
    assert lines[2] == "(shown once: keep it where the receiver can verify signatures)"


def test_create_with_a_given_secret_does_not_print_it(ledger):
    result = ledger("registry", "create", "books", "--url", URL, "--secret", SECRET)

    assert result.stdout.splitlines() == ["created registry books", "secret: the one given"]


def test_list_and_show_never_print_the_secret_nor_log_it(ledger, caplog):
    caplog.set_level(logging.DEBUG)
    secret = created_secret(ledger("registry", "create", "books", "--url", URL))

    listed = ledger("registry", "list")
    shown = ledger("registry", "show", "books")
    rotated = ledger("registry", "rotate-secret", "books")
    shown_after = ledger("registry", "show", "books")

    assert secret not in listed.stdout + shown.stdout + shown_after.stdout
    assert created_secret(rotated) not in shown_after.stdout
    assert "created registry books" in caplog.text
    assert "rotated the secret of registry books" in caplog.text
    assert secret not in caplog.text
    assert created_secret(rotated) not in caplog.text
    assert listed.stdout == f"books: enabled, {URL}, entry types all, group by nothing\n"


def test_show_prints_every_field_and_only_the_state_of_the_secret(ledger):
    ledger(
        "registry", "create", "books", "--url", URL, "--destination", "Krno",
        "--entry-type", "tax", "--entry-type", "cash", "--group-by", "product",
        "--total", "quantity", "--include-test", "--since", "2024-11-01", "--secret", SECRET,
    )  # fmt: skip

    result = ledger("registry", "show", "books")

    lines = result.stdout.splitlines()
    assert lines[:10] == [
        "name: books",
        f"url: {URL}",
        "enabled: yes",
        "destinations: Krno",
        "entry types: cash, tax",
        "group by: product",
        "totals: quantity",
        "include test orders: yes",
        "since: 2024-11-01T00:00:00Z",
        "secret: set, never rotated",
    ]
    assert [line.split(":")[0] for line in lines[10:]] == ["created", "updated"]


def test_show_says_when_the_secret_was_rotated(ledger):
    ledger("registry", "create", "books", "--url", URL)
    ledger("registry", "rotate-secret", "books")

    result = ledger("registry", "show", "books")

    [line] = [line for line in result.stdout.splitlines() if line.startswith("secret:")]
    assert line.startswith("secret: set, rotated 20")
    assert "(the previous one is valid until 20" in line


def test_list_says_when_there_are_no_registries(ledger):
    assert ledger("registry", "list").stdout == "no registries\n"


# Refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("books", "--url", "ftp://books.example/"),
            "url 'ftp://books.example/' is not allowed: use an http:// or https:// URL with a host",
        ),
        (
            ("Books", "--url", URL),
            "registry name 'Books' is not allowed: use 1 to 63 characters of a-z, 0-9, '_' and "
            "'-', starting with a letter or a digit",
        ),
        (
            ("books", "--url", URL, "--entry-type", "sales"),
            "unknown entry type 'sales': choose from cash, customer_receivable, "
            "reseller_receivable, deferred_revenue, revenue, tax, commission, commission_payable",
        ),
        (
            ("books", "--url", URL, "--group-by", "product", "--group-by", "product"),
            "group-by column 'product' is given twice",
        ),
        (
            ("books", "--url", URL, "--since", "soon"),
            "since 'soon' is not allowed: use a date (YYYY-MM-DD) or an ISO 8601 date and time",
        ),
        (
            ("books", "--url", URL, "--since", ""),
            "since '' is not allowed: use a date (YYYY-MM-DD) or an ISO 8601 date and time",
        ),
        (
            ("books", "--url", URL, "--secret", "whsec_short"),
            "the secret is not allowed: use 'whsec_' followed by the base64 of at least 24 "
            "random bytes",
        ),
    ],
)
def test_a_refused_create_prints_one_line_and_stores_nothing(ledger, args, message):
    result = ledger("registry", "create", *args)

    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""
    assert ledger("registry", "list").stdout == "no registries\n"


@pytest.mark.parametrize(
    "args",
    [
        ("registry", "show", "nope"),
        ("registry", "update", "nope", "--url", URL),
        ("registry", "enable", "nope"),
        ("registry", "disable", "nope"),
        ("registry", "delete", "nope"),
        ("registry", "rotate-secret", "nope"),
        ("summary", "--registry", "nope", "--from", "2024-11-01", "--to", "2024-11-30"),
        ("report", "--registry", "nope", "--from", "2024-11-01", "--to", "2024-11-30"),
    ],
)
def test_an_unknown_registry_is_one_line_and_exit_1(ledger, args):
    result = ledger(*args)

    assert result.exit_code == 1
    assert result.stderr == "error: unknown registry 'nope': see `ledger-pipeline registry list`\n"


@pytest.mark.parametrize("verb", ["summary", "report"])
def test_from_after_to_is_refused(ledger, verb):
    ledger("registry", "create", "books", "--url", URL)

    result = ledger(verb, "--registry", "books", "--from", "2024-11-19", "--to", "2024-11-18")

    assert result.exit_code == 1
    assert result.stderr == "error: --from 2024-11-19 is after --to 2024-11-18\n"


# registry update, enable, disable, delete


def test_update_replaces_a_list_and_keeps_the_fields_not_given(ledger):
    ledger("registry", "create", "books", "--url", URL, "--group-by", "product", "--total", "size")

    result = ledger(
        "registry", "update", "books", "--group-by", "destination", "--group-by", "date"
    )

    assert result.stdout == "updated registry books: group_by\n"
    shown = ledger("registry", "show", "books").stdout.splitlines()
    assert "group by: destination, date" in shown
    assert "totals: size" in shown


def test_update_clear_resets_a_list_to_its_default(ledger):
    ledger("registry", "create", "books", "--url", URL, "--group-by", "product", "--total", "size")

    result = ledger("registry", "update", "books", "--clear", "group-by", "--clear", "totals")

    assert result.stdout == "updated registry books: group_by, totals\n"
    shown = ledger("registry", "show", "books").stdout.splitlines()
    assert "group by: nothing" in shown
    assert "totals: debit, credit" in shown


def test_a_refused_update_changes_nothing(ledger):
    ledger("registry", "create", "books", "--url", URL, "--group-by", "product")
    before = ledger("registry", "show", "books").stdout

    result = ledger("registry", "update", "books", "--group-by", "colour")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown group-by column 'colour': choose from ")
    assert ledger("registry", "show", "books").stdout == before


def test_update_without_a_field_is_refused(ledger):
    ledger("registry", "create", "books", "--url", URL)

    result = ledger("registry", "update", "books")

    assert result.exit_code == 1
    assert result.stderr == "error: nothing to update: give a field to change (see --help)\n"


def test_a_since_in_the_past_says_how_many_deliveries_it_queued_and_delete_how_many_went(
    ledger, posted, tmp_path
):
    posted(raw_event("evt-1"), raw_event("evt-2", "order-2"))
    queued = "queued 2 deliveries of events posted since 2024-11-01T00:00:00Z: "
    queued += "`ledger-pipeline deliver` sends them"
    path = tmp_path / "registries.yaml"
    path.write_text(f"- name: audit\n  url: {URL}\n  since: 2024-11-01\n  secret: {SECRET}\n")

    created = ledger("registry", "create", "books", "--url", URL, "--since", "2024-11-01")
    updated = ledger("registry", "update", "books", "--destination", "Krno")
    applied = ledger("registry", "apply", str(path))
    deleted = ledger("registry", "delete", "books")

    # Both events were posted just now, after 2024-11-01: each gets a delivery per registry.
    assert created.stdout.splitlines()[:2] == ["created registry books", queued]
    assert updated.stdout == "updated registry books: destinations\n"
    assert applied.stdout.splitlines() == ["audit: created", f"  {queued}"]
    assert deleted.stdout == "deleted registry books and its 2 deliveries (2 pending)\n"


def test_apply_of_a_file_without_registries_says_so(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_text("registries: []\n")

    result = ledger("registry", "apply", str(path))

    assert (result.exit_code, result.stdout) == (0, f"no registries in {path}: nothing to apply\n")


def test_disable_enable_and_delete(ledger):
    ledger("registry", "create", "books", "--url", URL)

    assert ledger("registry", "disable", "books").stdout == "disabled registry books\n"
    assert ledger("registry", "list").stdout.startswith("books: disabled, ")
    assert ledger("registry", "enable", "books").stdout == "enabled registry books\n"
    assert ledger("registry", "list").stdout.startswith("books: enabled, ")
    assert ledger("registry", "delete", "books").stdout == (
        "deleted registry books and its 0 deliveries (0 pending)\n"
    )
    assert ledger("registry", "list").stdout == "no registries\n"


def test_rotate_secret_prints_a_new_secret_once(ledger):
    first = created_secret(ledger("registry", "create", "books", "--url", URL))

    result = ledger("registry", "rotate-secret", "books")

    lines = result.stdout.splitlines()
    assert lines[0] == "rotated the secret of registry books"
    assert lines[1].startswith("secret: whsec_")
    assert created_secret(result) != first
    assert lines[2].startswith("(shown once; the previous secret stays valid until 20")


# registry apply


REGISTRY_FILE = """\
registries:
  - name: books
    url: https://books.example/hooks
    group_by: [product, product_tags]
    totals: [debit, credit, quantity]
    since: 2024-11-01
  - name: audit
    url: https://audit.example/
    include_test: true
"""


def test_apply_prints_what_it_created_and_applying_again_changes_nothing(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_text(REGISTRY_FILE)

    created = ledger("registry", "apply", str(path))
    again = ledger("registry", "apply", str(path))

    lines = created.stdout.splitlines()
    assert lines[0] == "books: created"
    assert lines[1].startswith("  secret: whsec_")
    assert lines[2] == "audit: created"
    assert again.stdout == "books: unchanged\naudit: unchanged\n"


def test_apply_prints_the_fields_it_updated(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_text(REGISTRY_FILE)
    ledger("registry", "apply", str(path))
    path.write_text(REGISTRY_FILE.replace("[product, product_tags]", "[product]"))

    result = ledger("registry", "apply", str(path))

    assert result.stdout == "books: updated group_by\naudit: unchanged\n"


def test_apply_of_a_bare_list(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_text("- name: books\n  url: https://books.example/hooks\n")

    assert ledger("registry", "apply", str(path)).stdout.startswith("books: created\n")


def test_apply_of_a_bad_file_changes_nothing(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_text(REGISTRY_FILE + "    totals: [profit]\n")

    result = ledger("registry", "apply", str(path))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: registry 'audit': unknown total 'profit': choose ")
    assert ledger("registry", "list").stdout == "no registries\n"


def test_apply_of_a_file_that_is_not_utf8_text(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_bytes(b"registries:\n  - name: caf\xe9\n")

    result = ledger("registry", "apply", str(path))

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path} is not UTF-8 text (byte 25): a registry file is YAML in UTF-8\n"
    )


def test_apply_of_a_file_that_is_not_yaml(ledger, tmp_path):
    path = tmp_path / "registries.yaml"
    path.write_text("registries: [\n")

    result = ledger("registry", "apply", str(path))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path} is not valid YAML at line ")


# summary and report


def museum_order(event_id="evt_01HV7W3K5Q", order_id="2e7f2d6f", **fields):
    """The contract's example: two deferred lines, 22.00 and 16.00, paid, no tax."""
    event = raw_event(event_id, order_id, **fields)
    event["order"]["items"] = [
        {
            "id": "li-1",
            "product": "Museum",
            "product_tags": ["indoor", "family"],
            "option": "Day ticket",
            "unit": "General Admission",
            "quantity": 2,
            "travel_date": "2024-11-20",
            "status": "confirmed",
            "retail": 2200,
        },
        {
            "id": "li-2",
            "product": "Museum",
            "option": "Day ticket",
            "unit": "Child Ticket",
            "quantity": 2,
            "travel_date": "2024-11-20",
            "status": "confirmed",
            "retail": 1600,
        },
    ]
    return event


def test_summary_prints_the_summaries_of_the_dates_as_json(ledger, posted):
    posted(
        museum_order(),
        museum_order("evt-later", "order-later", occurred_at="2024-11-17T09:00:00+01:00"),
    )
    ledger("registry", "create", "books", "--url", URL)

    result = ledger("summary", "--registry", "books", "--from", "2024-11-15", "--to", "2024-11-16")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {
            "order_id": "2e7f2d6f",
            "idempotency_key": idempotency_key("books", "evt_01HV7W3K5Q"),
            "event": "confirmed",
            "order_version": 1,
            "occurred_at": "2024-11-15T08:24:00Z",
            "ledger_entries": [
                {
                    "ledger_code": None,
                    "account": "cash",
                    "currency": "EUR",
                    "quantity": 0,
                    "debit": "38.00",
                    "credit": "0.00",
                    "description": "Cashflow",
                },
                {
                    "ledger_code": None,
                    "account": "deferred_revenue",
                    "currency": "EUR",
                    "quantity": 2,
                    "debit": "0.00",
                    "credit": "16.00",
                    "description": "Museum Child Ticket",
                },
                {
                    "ledger_code": None,
                    "account": "deferred_revenue",
                    "currency": "EUR",
                    "quantity": 2,
                    "debit": "0.00",
                    "credit": "22.00",
                    "description": "Museum General Admission",
                },
            ],
        }
    ]


def test_summary_of_dates_without_events_is_an_empty_array(ledger, posted):
    posted(museum_order())
    ledger("registry", "create", "books", "--url", URL)

    result = ledger("summary", "--registry", "books", "--from", "2024-12-01", "--to", "2024-12-31")

    assert result.stdout == "[]\n"


def test_report_prints_one_row_per_tag_as_json(ledger, posted):
    posted(museum_order())
    ledger(
        "registry", "create", "books", "--url", URL, "--group-by", "product_tags",
        "--total", "quantity", "--total", "credit",
    )  # fmt: skip

    result = ledger("report", "--registry", "books", "--from", "2024-11-15", "--to", "2024-11-15")

    assert json.loads(result.stdout) == [
        {"product_tags": None, "currency": "EUR", "quantity": 2, "credit": "16.00"},
        {"product_tags": "family", "currency": "EUR", "quantity": 2, "credit": "22.00"},
        {"product_tags": "indoor", "currency": "EUR", "quantity": 2, "credit": "22.00"},
    ]


def test_report_as_csv_has_a_header(ledger, posted):
    posted(museum_order())
    ledger("registry", "create", "books", "--url", URL, "--group-by", "deferred")

    result = ledger(
        "report", "--registry", "books", "--from", "2024-11-15", "--to", "2024-11-15",
        "--format", "csv",
    )  # fmt: skip

    assert result.stdout == (
        "deferred,currency,debit,credit\nfalse,EUR,38.00,0.00\ntrue,EUR,0.00,38.00\n"
    )


def test_report_as_csv_of_no_entries_is_its_header(ledger):
    ledger("registry", "create", "books", "--url", URL, "--group-by", "product")

    result = ledger(
        "report", "--registry", "books", "--from", "2024-11-15", "--to", "2024-11-15",
        "--format", "csv",
    )  # fmt: skip

    assert result.stdout == "product,currency,debit,credit\n"


@pytest.mark.parametrize(
    "verb",
    [
        (),
        ("registry",),
        ("registry", "create"),
        ("registry", "list"),
        ("registry", "show"),
        ("registry", "update"),
        ("registry", "enable"),
        ("registry", "disable"),
        ("registry", "delete"),
        ("registry", "rotate-secret"),
        ("registry", "apply"),
        ("summary",),
        ("report",),
    ],
)
def test_every_verb_has_help(verb):
    result = CliRunner().invoke(app, [*verb, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.stdout
