"""The reporting API over HTTP: every path, every auth case, every error's code and message."""

from __future__ import annotations

import json
import logging
import re
import warnings

import pytest

from ledger_pipeline.api import ApiSettings, create_app
from ledger_pipeline.core.payloads import idempotency_key
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.delivery.sending import AttemptResult
from ledger_pipeline.delivery.worker import deliver_pass
from ledger_pipeline.errors import ConfigurationError
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.api_keys import ApiKeyStore
from ledger_pipeline.storage.deliveries import DeliveryStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.factories import jsonl, raw_event, records

with warnings.catch_warnings():
    # Starlette's test client would rather have httpx2; httpx is what is installed.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://books.example/hooks"
SUMMARY = "/reporting/webhook_registry/ledger_summary"
REPORT = "/reporting/webhook_registry/ledger_report"
NOVEMBER = {"registry": "books", "from": "2024-11-01", "to": "2024-11-30"}


class Api:
    """A client of the API on a fresh ledger, with a read key and a manage key."""

    def __init__(self, client: TestClient, store: LedgerStore):
        self.client = client
        self.store = store
        keys = ApiKeyStore(store)
        self.read_key = keys.create("reader", "read").token
        self.manage_key = keys.create("manager", "manage").token

    def get(self, path: str, key: str | None = "read", **kwargs):
        return self.client.get(path, headers=self._auth(key), **kwargs)

    def post(self, path: str, key: str | None = "read", **kwargs):
        return self.client.post(path, headers=self._auth(key), **kwargs)

    def patch(self, path: str, key: str | None = "manage", **kwargs):
        return self.client.patch(path, headers=self._auth(key), **kwargs)

    def delete(self, path: str, key: str | None = "manage", **kwargs):
        return self.client.delete(path, headers=self._auth(key), **kwargs)

    def _auth(self, key: str | None) -> dict[str, str]:
        if key is None:
            return {}
        token = {"read": self.read_key, "manage": self.manage_key}.get(key, key)
        return {"Authorization": f"Bearer {token}"}

    def post_events(self, *events) -> None:
        self.store.land(records(jsonl(*events)))
        self.store.post()

    def add_registry(self, name: str = "books", **fields) -> Registry:
        return RegistryStore(self.store).create(Registry(name=name, url=URL, **fields))


def make_api(database_url: str, max_days: int = 366):
    application = create_app(ApiSettings(Settings(database_url=database_url), max_days=max_days))
    with TestClient(application) as client:
        yield Api(client, application.state.store)


@pytest.fixture
def api(sqlite_url):
    yield from make_api(sqlite_url)


@pytest.fixture
def api_on_both(database_url):
    yield from make_api(database_url)


def error_of(response) -> dict[str, str]:
    return response.json()["error"]


def museum_order(event_id: str = "evt-1", order_id: str = "order-1", **fields):
    """Two Adult tickets of 11.00 (22.00, tax 2.00), travelling 2024-11-20."""
    return raw_event(event_id, order_id, **fields)


CASH_22 = {
    "ledger_code": None,
    "account": "cash",
    "currency": "EUR",
    "quantity": 0,
    "debit": "22.00",
    "credit": "0.00",
    "description": "Cashflow",
}
DEFERRED_20 = {
    "ledger_code": None,
    "account": "deferred_revenue",
    "currency": "EUR",
    "quantity": 2,
    "debit": "0.00",
    "credit": "20.00",
    "description": "Museum Adult",
}
TAX_2 = {
    "ledger_code": None,
    "account": "tax",
    "currency": "EUR",
    "quantity": 0,
    "debit": "0.00",
    "credit": "2.00",
    "description": "Tax",
}


# Summaries


def test_summary_by_get_is_the_registry_summaries_of_the_dates(api_on_both):
    api = api_on_both
    api.post_events(
        museum_order(),
        museum_order("evt-december", "order-2", occurred_at="2024-12-01T09:00:00+01:00"),
    )
    api.add_registry()

    response = api.get(SUMMARY, params=NOVEMBER)

    assert response.status_code == 200
    assert response.json() == [
        {
            "order_id": "order-1",
            "idempotency_key": idempotency_key("books", "evt-1"),
            "event": "confirmed",
            "order_version": 1,
            "occurred_at": "2024-11-15T08:24:00Z",
            "ledger_entries": [CASH_22, DEFERRED_20, TAX_2],
        }
    ]


def test_summary_by_post_takes_the_same_fields_as_a_json_body(api):
    api.post_events(museum_order())
    api.add_registry()

    by_post = api.post(SUMMARY, json=NOVEMBER)

    assert by_post.status_code == 200
    assert by_post.json() == api.get(SUMMARY, params=NOVEMBER).json()
    assert [entry["credit"] for entry in by_post.json()[0]["ledger_entries"]] == [
        "0.00",
        "20.00",
        "2.00",
    ]


def test_summary_applies_the_registry_filters_and_group_by_columns(api):
    api.post_events(museum_order())
    api.add_registry(entry_types=("deferred_revenue",), group_by=("travel_date",))

    [summary] = api.get(SUMMARY, params=NOVEMBER).json()

    assert summary["ledger_entries"] == [{**DEFERRED_20, "travel_date": "2024-11-20"}]


def test_summary_is_the_same_text_as_the_command_prints(api, sqlite_url, monkeypatch):
    from typer.testing import CliRunner

    from ledger_pipeline.cli import app

    api.post_events(museum_order(), museum_order("evt-2", "order-2", retail=1001, tax=91))
    api.add_registry(group_by=("product", "date"))
    monkeypatch.setenv("LEDGER_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("LEDGER_TIMEZONE", raising=False)

    printed = CliRunner().invoke(
        app, ["summary", "--registry", "books", "--from", "2024-11-01", "--to", "2024-11-30"]
    )

    assert api.get(SUMMARY, params=NOVEMBER).json() == json.loads(printed.stdout)


def test_summary_of_dates_without_events_is_an_empty_array(api):
    api.post_events(museum_order())
    api.add_registry()

    response = api.get(SUMMARY, params={**NOVEMBER, "from": "2024-12-01", "to": "2024-12-31"})

    assert (response.status_code, response.json()) == (200, [])


# Reports


def test_report_by_get_is_one_row_per_group_with_the_totals(api_on_both):
    api = api_on_both
    api.post_events(museum_order(), museum_order("evt-2", "order-2", product="Zoo"))
    api.add_registry(group_by=("product",), totals=("quantity", "credit"))

    response = api.get(REPORT, params=NOVEMBER)

    assert response.status_code == 200
    assert response.json() == [
        {"product": "Museum", "currency": "EUR", "quantity": 2, "credit": "22.00"},
        {"product": "Zoo", "currency": "EUR", "quantity": 2, "credit": "22.00"},
    ]


def test_report_by_post_takes_a_json_body(api):
    api.post_events(museum_order())
    api.add_registry(group_by=("deferred",))

    response = api.post(REPORT, json=NOVEMBER)

    assert response.json() == [
        {"deferred": False, "currency": "EUR", "debit": "22.00", "credit": "2.00"},
        {"deferred": True, "currency": "EUR", "debit": "0.00", "credit": "20.00"},
    ]


def test_report_as_csv_has_a_header_and_flags_as_words(api):
    api.post_events(museum_order())
    api.add_registry(group_by=("deferred",))

    by_get = api.get(REPORT, params={**NOVEMBER, "format": "csv"})
    by_post = api.post(REPORT, json={**NOVEMBER, "format": "csv"})

    assert by_get.headers["content-type"] == "text/csv; charset=utf-8"
    assert by_get.text == (
        "deferred,currency,debit,credit\nfalse,EUR,22.00,2.00\ntrue,EUR,0.00,20.00\n"
    )
    assert by_post.text == by_get.text


def test_a_report_format_other_than_json_or_csv_is_refused(api):
    api.add_registry()

    response = api.get(REPORT, params={**NOVEMBER, "format": "xml"})

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_request",
        "message": "query parameter 'format': Input should be 'json' or 'csv'",
    }


# Errors of the reporting paths


@pytest.mark.parametrize("path", [SUMMARY, REPORT])
def test_an_unknown_registry_is_a_404_saying_to_check_the_name(api, path):
    response = api.get(path, params={**NOVEMBER, "registry": "bokos"})

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "unknown_registry",
        "message": "unknown registry 'bokos': check the name (a key with the manage scope "
        "lists the registries at GET /registries)",
    }


@pytest.mark.parametrize("method", ["get", "post"])
def test_from_after_to_is_a_422_saying_to_swap_them(api, method):
    api.add_registry()
    fields = {**NOVEMBER, "from": "2024-11-30", "to": "2024-11-01"}

    if method == "get":
        response = api.get(SUMMARY, params=fields)
    else:
        response = api.post(SUMMARY, json=fields)

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_date_range",
        "message": "from 2024-11-30 is after to 2024-11-01: give a from on or before the to",
    }


@pytest.fixture
def api_of_30_days(sqlite_url):
    yield from make_api(sqlite_url, max_days=30)


def test_a_range_of_the_maximum_is_served(api_of_30_days):
    api_of_30_days.add_registry()

    response = api_of_30_days.get(REPORT, params=NOVEMBER)

    assert response.status_code == 200


def test_a_range_over_the_maximum_is_a_422_naming_the_maximum(api_of_30_days):
    api_of_30_days.add_registry()

    response = api_of_30_days.get(REPORT, params={**NOVEMBER, "to": "2024-12-01"})

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "date_range_too_long",
        "message": "from 2024-11-01 to 2024-12-01 is 31 days: ask for at most 30 days at a "
        "time, in several requests",
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2024-13-01", "query parameter 'from': 2024-13-01 is not a date (month must be in "
         "1..12): use a date as YYYY-MM-DD"),
        ("2024-02-30", "query parameter 'from': 2024-02-30 is not a date (day is out of range "
         "for month): use a date as YYYY-MM-DD"),
        ("0", "query parameter 'from': use a date as YYYY-MM-DD"),
        ("2024-11-01T00:00:00", "query parameter 'from': use a date as YYYY-MM-DD"),
        ("1.11.2024", "query parameter 'from': use a date as YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_a_bad_date_is_a_422_naming_the_parameter_and_the_form(api, value, problem):
    api.add_registry()

    response = api.get(SUMMARY, params={**NOVEMBER, "from": value})

    assert response.status_code == 422
    assert error_of(response) == {"code": "invalid_request", "message": problem}


def test_missing_parameters_are_named_each(api):
    response = api.get(SUMMARY, params={"registry": "books"})

    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "query parameter 'from' is missing; query parameter 'to' is missing"
    )


def test_an_unknown_parameter_is_refused_so_that_a_typo_shows(api):
    response = api.get(SUMMARY, params={**NOVEMBER, "form": "2024-11-01"})

    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "query parameter 'form' is not a field of this request: remove it"
    )


def test_a_body_that_is_not_json_is_a_422(api):
    headers = {"Content-Type": "application/json", **api._auth("read")}

    response = api.client.post(SUMMARY, content=b"{", headers=headers)

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_request",
        "message": "the body is not valid JSON: send a JSON object",
    }


def test_a_body_field_of_the_wrong_form_is_named(api):
    response = api.post(SUMMARY, json={**NOVEMBER, "registry": "Books!"})

    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "body field 'registry': String should match pattern '^[a-z0-9][a-z0-9_-]{0,62}$'"
    )


# Authentication and scopes


def test_no_key_is_a_401_saying_how_to_send_one(api):
    response = api.get(SUMMARY, key=None, params=NOVEMBER)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_of(response) == {
        "code": "unauthorized",
        "message": "send an API key as Authorization: Bearer <key>; make one with "
        "`ledger-pipeline api-key create`",
    }


def test_another_authorization_scheme_is_a_401(api):
    response = api.client.get(SUMMARY, params=NOVEMBER, headers={"Authorization": "Basic eDp5"})

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_malformed_key_is_a_401_saying_the_form(api):
    response = api.get(SUMMARY, key="not-a-key", params=NOVEMBER)

    assert response.status_code == 401
    assert error_of(response)["message"] == (
        "the API key is malformed: send Authorization: Bearer lpk_<id>_<secret>, as printed by "
        "`ledger-pipeline api-key create`"
    )


def test_a_forged_key_is_a_401(api):
    forged = api.read_key[:-4] + ("AAAA" if not api.read_key.endswith("AAAA") else "BBBB")

    response = api.get(SUMMARY, key=forged, params=NOVEMBER)

    assert response.status_code == 401
    assert error_of(response)["message"].endswith("is not a key of this ledger")


def test_a_revoked_key_is_a_401(api):
    key_id = api.read_key.split("_")[1]
    ApiKeyStore(api.store).revoke(key_id)

    response = api.get(SUMMARY, params=NOVEMBER)

    assert response.status_code == 401
    assert error_of(response)["message"] == f"API key {key_id} is revoked: ask for a new one"


def test_a_manage_key_reads_too(api):
    api.add_registry()

    assert api.get(SUMMARY, key="manage", params=NOVEMBER).status_code == 200


MANAGE_PATHS = [
    ("get", "/deliveries"),
    ("get", "/deliveries/1"),
    ("post", "/deliveries/1/replay"),
    ("post", "/deliveries/1/skip"),
    ("get", "/registries"),
    ("post", "/registries"),
    ("post", "/registries/apply"),
    ("get", "/registries/books"),
    ("patch", "/registries/books"),
    ("delete", "/registries/books"),
    ("post", "/registries/books/enable"),
    ("post", "/registries/books/disable"),
    ("post", "/registries/books/rotate-secret"),
]


@pytest.mark.parametrize(("method", "path"), MANAGE_PATHS)
def test_a_read_key_on_a_manage_path_is_a_403_naming_the_scope(api, method, path):
    api.add_registry()
    key_id = api.read_key.split("_")[1]

    response = api.client.request(method, path, headers=api._auth("read"), json={})

    assert response.status_code == 403
    assert error_of(response) == {
        "code": "forbidden",
        "message": f"API key {key_id} has the read scope; this needs a key with the manage scope",
    }


@pytest.mark.parametrize(("method", "path"), [*MANAGE_PATHS, ("get", SUMMARY), ("get", REPORT)])
def test_every_path_but_health_needs_a_key(api, method, path):
    response = api.client.request(method, path, json={})

    assert response.status_code == 401


def test_health_needs_no_key(api):
    response = api.client.get("/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_the_key_is_never_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.add_registry()

    api.get(SUMMARY, params=NOVEMBER)
    api.get(SUMMARY, key=api.read_key + "x", params=NOVEMBER)

    assert api.read_key.split("_")[1] in caplog.text
    assert api.read_key.split("_", 2)[2] not in caplog.text


# Registries


def test_create_returns_the_generated_secret_once(api):
    created = api.post(
        "/registries",
        key="manage",
        json={"name": "books", "url": URL, "group_by": ["product"], "since": "2024-11-01"},
    )
    shown = api.get("/registries/books", key="manage")
    listed = api.get("/registries", key="manage")

    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert RegistryStore(api.store).get("books").secret == body["secret"]
    assert {key: body[key] for key in ("name", "url", "group_by", "totals", "since")} == {
        "name": "books",
        "url": URL,
        "group_by": ["product"],
        "totals": ["debit", "credit"],
        "since": "2024-11-01T00:00:00Z",
    }
    assert body["secret"] not in shown.text + listed.text
    assert "secret" not in shown.json()
    assert [registry["name"] for registry in listed.json()] == ["books"]


def test_create_with_a_given_secret_does_not_echo_it(api):
    created = api.post("/registries", key="manage", json={"name": "books", "url": URL,
                                                          "secret": SECRET})  # fmt: skip

    assert created.status_code == 201
    assert created.json()["secret"] is None
    assert SECRET not in created.text


def test_create_of_an_existing_name_is_a_409(api):
    api.add_registry()

    response = api.post("/registries", key="manage", json={"name": "books", "url": URL})

    assert response.status_code == 409
    assert error_of(response) == {
        "code": "registry_exists",
        "message": "registry 'books' already exists: change it with PATCH /registries/books",
    }


def test_create_with_a_bad_value_is_a_422_naming_the_field(api):
    response = api.post(
        "/registries", key="manage", json={"name": "books", "url": "ftp://books.example"}
    )

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_registry",
        "message": "url 'ftp://books.example' is not allowed: use an http:// or https:// URL "
        "with a host",
    }


def test_create_with_an_unknown_entry_type_is_a_422_listing_the_accounts(api):
    response = api.post(
        "/registries", key="manage", json={"name": "books", "url": URL, "entry_types": ["bank"]}
    )

    assert response.status_code == 422
    assert error_of(response)["message"].startswith(
        "body field 'entry_types[0]': Input should be 'cash', 'customer_receivable'"
    )


def test_a_bad_secret_is_refused_without_showing_it(api):
    response = api.post(
        "/registries", key="manage", json={"name": "books", "url": URL, "secret": "whsec_c2hvcnQ="}
    )

    assert response.status_code == 422
    assert "whsec_c2hvcnQ=" not in response.text
    assert error_of(response)["message"].startswith("the secret is not allowed")


def test_update_changes_the_fields_given_and_keeps_the_others(api):
    api.add_registry(group_by=("product",), destinations=("Krno",))

    response = api.patch("/registries/books", json={"totals": ["quantity"], "destinations": []})

    assert response.status_code == 200
    assert {key: response.json()[key] for key in ("group_by", "totals", "destinations")} == {
        "group_by": ["product"],
        "totals": ["quantity"],
        "destinations": [],
    }


def test_update_with_a_new_secret_rotates_without_echoing_it(api):
    before = api.add_registry()

    response = api.patch("/registries/books", json={"secret": SECRET})

    stored = RegistryStore(api.store).get("books")
    assert response.status_code == 200
    assert SECRET not in response.text
    assert (stored.secret, stored.previous_secret) == (SECRET, before.secret)
    assert response.json()["previous_secret_valid_until"] is not None


def test_update_of_a_field_that_is_not_one_is_a_422(api):
    api.add_registry()

    response = api.patch("/registries/books", json={"name": "other"})

    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "body field 'name' is not a field of this request: remove it"
    )


def test_an_update_without_a_field_is_a_422_and_changes_nothing(api):
    before = api.add_registry()

    response = api.patch("/registries/books", json={})

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_registry",
        "message": "nothing to update: give a field to change",
    }
    assert RegistryStore(api.store).get("books") == before


@pytest.mark.parametrize("flag", ["yes", 1, "true"])
def test_a_flag_that_is_not_a_json_boolean_is_a_422(api, flag):
    api.add_registry()

    response = api.patch("/registries/books", json={"include_test": flag})

    assert response.status_code == 422
    assert "include_test" in error_of(response)["message"]
    assert RegistryStore(api.store).get("books").include_test is False


def test_enable_and_disable_switch_the_registry(api):
    api.add_registry()

    disabled = api.post("/registries/books/disable", key="manage")
    enabled = api.post("/registries/books/enable", key="manage")

    assert disabled.json()["enabled"] is False
    assert enabled.json()["enabled"] is True


def test_rotate_secret_returns_the_new_secret_once(api):
    before = api.add_registry()

    response = api.post("/registries/books/rotate-secret", key="manage")

    stored = RegistryStore(api.store).get("books")
    assert response.status_code == 200
    assert response.json()["secret"] == stored.secret != before.secret
    assert stored.previous_secret == before.secret
    assert stored.secret not in api.get("/registries/books", key="manage").text


def test_delete_removes_the_registry(api):
    api.add_registry()

    response = api.delete("/registries/books")

    assert (response.status_code, response.content) == (204, b"")
    assert api.get("/registries", key="manage").json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/registries/bokos"),
        ("patch", "/registries/bokos"),
        ("delete", "/registries/bokos"),
        ("post", "/registries/bokos/enable"),
        ("post", "/registries/bokos/disable"),
        ("post", "/registries/bokos/rotate-secret"),
    ],
)
def test_an_unknown_registry_on_a_registry_path_is_a_404(api, method, path):
    response = api.client.request(method, path, headers=api._auth("manage"), json={})

    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_registry"


def test_a_registry_name_of_the_wrong_form_in_the_path_is_a_422(api):
    response = api.get("/registries/Books", key="manage")

    assert response.status_code == 422
    assert error_of(response)["message"].startswith("path parameter 'name': String should match")


def test_apply_creates_updates_and_leaves_unchanged(api):
    api.add_registry("books", group_by=("product",))
    api.add_registry("same")
    definitions = [
        {"name": "books", "url": URL, "group_by": ["destination"]},
        {"name": "same", "url": URL},
        {"name": "new", "url": URL},
    ]

    response = api.post("/registries/apply", key="manage", json={"registries": definitions})

    assert response.status_code == 200
    applied = response.json()
    assert [(change["name"], change["action"], change["fields"]) for change in applied] == [
        ("books", "updated", ["group_by"]),
        ("same", "unchanged", []),
        ("new", "created", []),
    ]
    assert [change["secret"] is None for change in applied] == [True, True, False]
    assert applied[2]["secret"] == RegistryStore(api.store).get("new").secret


def test_apply_of_a_bad_definition_changes_nothing(api):
    definitions = [{"name": "good", "url": URL}, {"name": "bad", "url": "ftp://books.example"}]

    response = api.post("/registries/apply", key="manage", json={"registries": definitions})

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_registry",
        "message": "registry 'bad': url 'ftp://books.example' is not allowed: use an http:// or "
        "https:// URL with a host",
    }
    assert api.get("/registries", key="manage").json() == []


# Deliveries


class AnswerWith:
    """A sender that answers every attempt with one status, without a network."""

    def __init__(self, status: int):
        self.status = status

    def send(self, url, body, headers) -> AttemptResult:
        error = None if 200 <= self.status < 300 else f"status {self.status}"
        return AttemptResult(self.status, 12, '{"ok": true}', error)

    def close(self) -> None:
        pass


def queued(api: Api, *events) -> list[int]:
    """Posts events for a registry `books`; returns the ids of their deliveries, oldest first."""
    api.add_registry()
    api.post_events(*events)
    return sorted(delivery.id for delivery in DeliveryStore(api.store).list())


def delivered(api: Api, status: int) -> None:
    deliver_pass(api.store, workers=1, sender_factory=lambda: AnswerWith(status))


def test_deliveries_are_listed_newest_first_without_their_bodies(api):
    first, second = queued(api, museum_order(), museum_order("evt-2", "order-2"))

    response = api.get("/deliveries", key="manage")

    assert response.status_code == 200
    listed = response.json()
    assert [delivery["id"] for delivery in listed] == [second, first]
    assert {key: listed[1][key] for key in ("registry", "event_id", "status", "attempts")} == {
        "registry": "books",
        "event_id": "evt-1",
        "status": "pending",
        "attempts": 0,
    }
    assert listed[1]["idempotency_key"] == idempotency_key("books", "evt-1")
    assert "body" not in listed[1]
    assert "Museum" not in response.text


def test_deliveries_are_filtered_by_status_registry_and_limit(api):
    queued(api, museum_order(), museum_order("evt-2", "order-2"))
    delivered(api, 200)
    api.add_registry("other", destinations=("nowhere",))

    succeeded = api.get("/deliveries", key="manage", params={"status": "succeeded"})
    pending = api.get("/deliveries", key="manage", params={"status": "pending"})
    other = api.get("/deliveries", key="manage", params={"registry": "other"})
    one = api.get("/deliveries", key="manage", params={"limit": 1})

    assert len(succeeded.json()) == 2
    assert (pending.json(), other.json()) == ([], [])
    assert len(one.json()) == 1


def test_deliveries_of_an_unknown_registry_are_a_404_naming_it(api):
    response = api.get("/deliveries", key="manage", params={"registry": "bokos"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_registry"
    assert "'bokos'" in response.json()["error"]["message"]


def test_a_delivery_shows_its_attempts(api):
    [delivery_id] = queued(api, museum_order())
    delivered(api, 503)

    response = api.get(f"/deliveries/{delivery_id}", key="manage")

    assert response.status_code == 200
    shown = response.json()
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("pending", 1, 503)
    [attempt] = shown["attempts_made"]
    assert {key: attempt[key] for key in ("number", "status_code", "error")} == {
        "number": 1,
        "status_code": 503,
        "error": "status 503",
    }


def test_skip_gives_up_on_a_pending_delivery_and_replay_brings_it_back(api):
    [delivery_id] = queued(api, museum_order())
    delivered(api, 503)

    skipped = api.post(f"/deliveries/{delivery_id}/skip", key="manage")
    replayed = api.post(f"/deliveries/{delivery_id}/replay", key="manage")

    assert (skipped.status_code, skipped.json()["status"]) == (200, "skipped")
    assert replayed.status_code == 200
    assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)


@pytest.mark.parametrize(("verb", "code"), [("replay", "delivery_not_replayable"),
                                            ("skip", "delivery_not_skippable")])  # fmt: skip
def test_a_succeeded_delivery_cannot_be_replayed_or_skipped(api, verb, code):
    [delivery_id] = queued(api, museum_order())
    delivered(api, 200)

    response = api.post(f"/deliveries/{delivery_id}/{verb}", key="manage")

    assert response.status_code == 409
    assert error_of(response) == {
        "code": code,
        "message": f"cannot {verb} delivery {delivery_id}: it has succeeded",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/deliveries/99"), ("post", "/deliveries/99/replay"), ("post", "/deliveries/99/skip")],
)
def test_an_unknown_delivery_is_a_404(api, method, path):
    response = api.client.request(method, path, headers=api._auth("manage"))

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "unknown_delivery",
        "message": "there is no delivery 99: GET /deliveries lists them",
    }


def test_an_unknown_delivery_status_is_a_422_listing_the_statuses(api):
    response = api.get("/deliveries", key="manage", params={"status": "lost"})

    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "query parameter 'status': Input should be 'pending', 'failing', 'succeeded', 'dead' "
        "or 'skipped'"
    )


# Anything else


def test_an_unknown_path_is_a_404_in_the_same_shape(api):
    response = api.get("/reports")

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "not_found",
        "message": "there is no /reports: see /docs for the API's paths",
    }


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_the_server_itself(api, page):
    response = api.get(page, key=None)

    assert response.status_code == 200
    loaded = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert any(url.endswith(".js") for url in loaded)
    assert [url for url in loaded if not url.startswith("/")] == []
    for url in loaded:
        asset = api.get(url, key=None)
        assert (url, asset.status_code) == (url, 200)
        assert len(asset.content) > 1000


def test_a_method_the_path_does_not_take_is_a_405_in_the_same_shape(api):
    response = api.client.put(SUMMARY)

    assert response.status_code == 405
    assert error_of(response) == {
        "code": "method_not_allowed",
        "message": f"PUT is not allowed on {SUMMARY}: see /docs",
    }


def test_a_database_that_fails_is_a_503_without_its_message(api, monkeypatch):
    import sqlalchemy as sa

    api.add_registry()

    def failing(*args, **kwargs):
        raise sa.exc.OperationalError("select", {}, Exception("server at db.internal is down"))

    monkeypatch.setattr(LedgerStore, "entries", failing)
    response = api.get(SUMMARY, params=NOVEMBER)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert error_of(response) == {
        "code": "database_unavailable",
        "message": "the ledger's database cannot be reached; try again later",
    }


def test_the_openapi_schema_has_every_path_the_security_scheme_and_the_error_body(api):
    schema = api.client.get("/openapi.json").json()

    assert sorted(
        (path, method) for path, operations in schema["paths"].items() for method in operations
    ) == sorted(
        [
            (SUMMARY, "get"),
            (SUMMARY, "post"),
            (REPORT, "get"),
            (REPORT, "post"),
            ("/registries", "get"),
            ("/registries", "post"),
            ("/registries/apply", "post"),
            ("/registries/{name}", "get"),
            ("/registries/{name}", "patch"),
            ("/registries/{name}", "delete"),
            ("/registries/{name}/enable", "post"),
            ("/registries/{name}/disable", "post"),
            ("/registries/{name}/rotate-secret", "post"),
            ("/deliveries", "get"),
            ("/deliveries/{delivery_id}", "get"),
            ("/deliveries/{delivery_id}/replay", "post"),
            ("/deliveries/{delivery_id}/skip", "post"),
            ("/health", "get"),
        ]
    )
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lpk_<id>_<secret>",
        "description": "An API key made by `ledger-pipeline api-key create --scope read|manage`.",
    }
    summary = schema["paths"][SUMMARY]["get"]
    assert summary["security"] == [{"ApiKey": []}]
    assert sorted(summary["responses"]) == ["200", "401", "404", "422", "503"]
    assert summary["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


# Settings


def test_max_days_is_read_from_the_environment():
    settings = ApiSettings.from_environment({"LEDGER_API_MAX_DAYS": "31"})

    assert settings.max_days == 31


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a year", "LEDGER_API_MAX_DAYS='a year' is not a whole number of days"),
        ("0", "LEDGER_API_MAX_DAYS must be at least 1 day"),
    ],
)
def test_a_bad_max_days_is_an_error_naming_the_variable(value, message):
    with pytest.raises(ConfigurationError, match=message):
        ApiSettings.from_environment({"LEDGER_API_MAX_DAYS": value})
