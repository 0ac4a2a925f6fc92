"""API keys: made with a scope, stored as a hash, shown once, revoked; and the `api-key` verbs."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline.errors import ApiKeyError
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.api_keys import ApiKeyStore
from ledger_pipeline.storage.store import LedgerStore

NOON = dt.datetime(2024, 11, 15, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(database_url):
    with LedgerStore(database_url) as opened:
        yield opened


@pytest.fixture
def keys(store):
    return ApiKeyStore(store)


def stored_rows(store: LedgerStore) -> list[dict]:
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(tables.api_keys))]


# Creating


def test_a_key_has_a_visible_id_and_a_long_random_secret(keys):
    created = keys.create("books", "read")

    assert re.fullmatch(r"lpk_[0-9a-f]{10}_[A-Za-z0-9_-]{43}", created.token)
    assert created.token.split("_")[1] == created.api_key.id
    assert created.api_key.scope == "read"
    assert created.api_key.name == "books"


def test_only_the_sha256_of_the_key_is_stored(store, keys):
    created = keys.create("books", "manage")

    [row] = stored_rows(store)
    assert row["token_hash"] == hashlib.sha256(created.token.encode()).hexdigest()
    # The secret part follows the prefix and the id, and may itself hold "_".
    prefix, key_id, secret = created.token.split("_", 2)
    assert (prefix, key_id) == ("lpk", created.api_key.id)
    assert len(secret) >= 40
    assert not any(secret[-20:] in str(value) for value in row.values())


def test_two_keys_differ(keys):
    first, second = keys.create("a", "read"), keys.create("b", "read")

    assert first.token != second.token
    assert first.api_key.id != second.api_key.id


@pytest.mark.parametrize("scope", ["write", "", "READ"])
def test_a_scope_other_than_read_or_manage_is_refused(keys, scope):
    with pytest.raises(ApiKeyError, match=f"scope {scope!r} is not allowed: choose read or manage"):
        keys.create("books", scope)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there"])
def test_a_key_needs_a_printable_name_of_at_most_100_characters(keys, name):
    with pytest.raises(ApiKeyError, match="name"):
        keys.create(name, "read")


def test_the_key_is_never_logged(keys, caplog):
    caplog.set_level(logging.DEBUG)

    created = keys.create("books", "read")
    keys.authenticate(created.token)
    keys.revoke(created.api_key.id)

    assert created.api_key.id in caplog.text
    assert created.token not in caplog.text


# Authenticating


def test_the_key_authenticates_as_itself(keys):
    created = keys.create("books", "read")

    assert keys.authenticate(created.token).id == created.api_key.id


def test_a_key_with_one_character_changed_is_not_a_key(keys):
    created = keys.create("books", "read")
    last = created.token[-1]
    forged = created.token[:-1] + ("A" if last != "A" else "B")

    with pytest.raises(ApiKeyError, match=f"API key {created.api_key.id} is not a key of this"):
        keys.authenticate(forged)


@pytest.mark.parametrize("token", ["", "lpk_", "secret", "lpk_zzzzzzzzzz_" + "a" * 43])
def test_a_malformed_key_is_refused_saying_the_form(keys, token):
    with pytest.raises(ApiKeyError, match=r"malformed: send Authorization: Bearer lpk_<id>"):
        keys.authenticate(token)


def test_a_revoked_key_no_longer_authenticates(keys):
    created = keys.create("books", "manage")

    keys.revoke(created.api_key.id)

    with pytest.raises(ApiKeyError, match="is revoked: ask for a new one"):
        keys.authenticate(created.token)


def test_a_read_key_allows_reading_only_and_a_manage_key_both(keys):
    read = keys.create("a", "read").api_key
    manage = keys.create("b", "manage").api_key

    assert (read.allows("read"), read.allows("manage")) == (True, False)
    assert (manage.allows("read"), manage.allows("manage")) == (True, True)


def test_last_used_is_written_at_most_once_a_minute(keys):
    created = keys.create("books", "read", now=NOON)
    key_id = created.api_key.id

    keys.authenticate(created.token, now=NOON + dt.timedelta(seconds=1))
    after_first = keys.get(key_id).last_used_at
    keys.authenticate(created.token, now=NOON + dt.timedelta(seconds=30))
    after_second = keys.get(key_id).last_used_at
    keys.authenticate(created.token, now=NOON + dt.timedelta(seconds=61))
    after_third = keys.get(key_id).last_used_at

    assert after_first == dt.datetime(2024, 11, 15, 12, 0, 1, tzinfo=dt.UTC)
    assert after_second == dt.datetime(2024, 11, 15, 12, 0, 1, tzinfo=dt.UTC)
    assert after_third == dt.datetime(2024, 11, 15, 12, 1, 1, tzinfo=dt.UTC)


# Listing and revoking


def test_list_shows_every_key_oldest_first_revoked_ones_too(keys):
    first = keys.create("first", "read", now=NOON)
    second = keys.create("second", "manage", now=NOON + dt.timedelta(hours=1))
    keys.revoke(first.api_key.id, now=NOON + dt.timedelta(hours=2))

    listed = keys.list()

    assert [(key.name, key.scope, key.revoked_at) for key in listed] == [
        ("first", "read", dt.datetime(2024, 11, 15, 14, 0, tzinfo=dt.UTC)),
        ("second", "manage", None),
    ]
    assert second.api_key.id == listed[1].id


def test_revoking_again_keeps_the_first_revocation(keys):
    created = keys.create("books", "read")
    keys.revoke(created.api_key.id, now=NOON)

    again = keys.revoke(created.api_key.id, now=NOON + dt.timedelta(days=1))

    assert again.revoked_at == NOON


def test_revoking_an_unknown_key_is_an_error_pointing_at_the_list(keys):
    with pytest.raises(ApiKeyError, match=r"unknown API key 'abc': see `ledger-pipeline api-key"):
        keys.revoke("abc")


# The api-key verbs


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.delenv("LEDGER_TIMEZONE", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_create_prints_the_key_once_and_list_never(cli, database_url):
    created = cli("api-key", "create", "--name", "books", "--scope", "read")
    listed = cli("api-key", "list")

    assert created.exit_code == 0
    lines = created.stdout.splitlines()
    key = lines[1].removeprefix("key: ")
    key_id = key.split("_")[1]
    assert lines[0] == f"created API key {key_id} (read) for books"
    assert lines[2] == "(shown once: send it as Authorization: Bearer <key>)"
    with LedgerStore(database_url) as store:
        assert ApiKeyStore(store).authenticate(key).name == "books"
    assert listed.exit_code == 0
    assert key_id in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout


def test_revoke_stops_the_key_and_list_says_so(cli, database_url):
    created = cli("api-key", "create", "--name", "books", "--scope", "manage")
    key = created.stdout.splitlines()[1].removeprefix("key: ")
    key_id = key.split("_")[1]

    revoked = cli("api-key", "revoke", key_id)
    listed = cli("api-key", "list")

    assert revoked.stdout == f"revoked API key {key_id} (books)\n"
    assert f"{key_id}  manage  revoked " in listed.stdout
    with LedgerStore(database_url) as store, pytest.raises(ApiKeyError, match="revoked"):
        ApiKeyStore(store).authenticate(key)


def test_list_without_keys_says_so(cli):
    assert cli("api-key", "list").stdout == "no API keys\n"


def test_revoking_an_unknown_key_exits_with_one_line(cli):
    result = cli("api-key", "revoke", "0123456789")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: unknown API key '0123456789': see `ledger-pipeline api-key list`\n"
    )


def test_create_with_another_scope_is_refused_by_the_command(cli):
    result = cli("api-key", "create", "--name", "books", "--scope", "write")

    assert result.exit_code == 2
    assert "read" in result.stderr and "manage" in result.stderr
