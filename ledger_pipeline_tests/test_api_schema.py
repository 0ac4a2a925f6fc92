"""Schemathesis against the API's own OpenAPI schema: requests generated from the schema, valid
and invalid, with a manage key, never get a server error, and every answer matches the schema
(status codes, content types, bodies)."""

from __future__ import annotations

import os
import warnings

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.modes import GenerationMode

from ledger_pipeline.api import ApiSettings, create_app
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.settings import Settings
from ledger_pipeline.storage.api_keys import ApiKeyStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline_tests.factories import history, jsonl, records

# Examples per operation and mode: enough to reach every error branch of a route, few enough
# for the whole run to take well under a minute on two cores. LEDGER_API_SCHEMA_EXAMPLES=500
# searches deeper.
EXAMPLES = int(os.environ.get("LEDGER_API_SCHEMA_EXAMPLES", "50"))


@pytest.fixture(scope="module")
def application(tmp_path_factory):
    """The API on a ledger with posted events, a registry `books` and a manage key."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'ledger.db'}"
    application = create_app(ApiSettings(Settings(database_url=database_url), max_days=366))
    store = application.state.store
    store.land(records(jsonl(*history("order-1"), *history("order-2"))))
    store.post()
    RegistryStore(store).create(
        Registry(name="books", url="https://books.example/hooks", group_by=("product",))
    )
    application.state.test_key = ApiKeyStore(store).create("schemathesis", "manage").token
    yield application
    store.close()


@pytest.fixture(scope="module")
def api_schema(application):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's test client would rather have httpx2
        return schemathesis.openapi.from_asgi("/openapi.json", application)


# Written out rather than read from the schema, so that a path the schema loses fails here.
# (Schemathesis' own pytest parametrization from a fixture does not run on pytest 9.)
OPERATIONS = [
    ("GET", "/reporting/webhook_registry/ledger_summary"),
    ("POST", "/reporting/webhook_registry/ledger_summary"),
    ("GET", "/reporting/webhook_registry/ledger_report"),
    ("POST", "/reporting/webhook_registry/ledger_report"),
    ("GET", "/registries"),
    ("POST", "/registries"),
    ("POST", "/registries/apply"),
    ("GET", "/registries/{name}"),
    ("PATCH", "/registries/{name}"),
    ("DELETE", "/registries/{name}"),
    ("POST", "/registries/{name}/enable"),
    ("POST", "/registries/{name}/disable"),
    ("POST", "/registries/{name}/rotate-secret"),
    ("GET", "/deliveries"),
    ("GET", "/deliveries/{delivery_id}"),
    ("POST", "/deliveries/{delivery_id}/replay"),
    ("POST", "/deliveries/{delivery_id}/skip"),
    ("GET", "/health"),
]


def test_the_schema_has_the_operations_tested_here(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]

    assert sorted((operation.method.upper(), operation.path) for operation in operations) == (
        sorted(OPERATIONS)
    )


# /health takes nothing, so no request to it can be made invalid.
CASES = [
    *((method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS),
    *((method, path, GenerationMode.NEGATIVE) for method, path in OPERATIONS if path != "/health"),
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_the_api_answers_as_its_schema_says_and_never_with_a_server_error(
    api_schema, application, method, path, mode
):
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {application.state.test_key}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def answers_as_the_schema_says(case):
        # Every check but the acceptance of schema-valid data: OpenAPI cannot say that `from`
        # comes before `to`, how long a range may be, or that a URL needs a host, so requests
        # the schema allows are refused (422) when they break those rules.
        #
        # The key goes into the case itself, not only into the request: Schemathesis then sees
        # a request with a key, so a case made invalid only by a missing Authorization header
        # (which the key fills in) is no longer taken for invalid data the API accepted.
        case.headers = {**(case.headers or {}), **headers}
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    answers_as_the_schema_says()
