"""Shared fixtures: database URLs for SQLite and, where a server is given, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

POSTGRES_URL_VARIABLE = "LEDGER_TEST_POSTGRES_URL"


def _postgres_unavailable(reason: str) -> None:
    """Skips a PostgreSQL test; in CI a missing server is a failure, not a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_schemas() -> Iterator[Callable[[], str]]:
    """Makes URLs of fresh, empty PostgreSQL schemas, each dropped after the test."""
    base_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base_url:
        _postgres_unavailable(f"{POSTGRES_URL_VARIABLE} is not set (scripts/test sets it)")
    engine = sa.create_engine(base_url)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        _postgres_unavailable(f"cannot connect to {POSTGRES_URL_VARIABLE}: {error.orig}")

    schemas = []

    def make() -> str:
        schema = f"test_{uuid.uuid4().hex[:12]}"
        with engine.begin() as connection:
            connection.execute(sa.text(f'create schema "{schema}"'))
        schemas.append(schema)
        separator = "&" if "?" in base_url else "?"
        return f"{base_url}{separator}options=-csearch_path%3D{schema}"

    yield make
    # One transaction per schema: dropping hundreds at once (a property test's examples) runs
    # out of the server's lock table.
    for schema in schemas:
        with engine.begin() as connection:
            connection.execute(sa.text(f'drop schema "{schema}" cascade'))
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_schemas) -> str:
    """A URL of a fresh, empty PostgreSQL schema, dropped after the test."""
    return postgres_schemas()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
