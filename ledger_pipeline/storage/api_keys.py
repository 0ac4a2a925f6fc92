"""The reporting API's keys in the ledger's database: create, list, revoke, authenticate.

A key reads `lpk_<id>_<secret>`: `id` is ten hex digits a person can name a key by (it shows in
`api-key list` and in logs), `secret` is 32 random bytes in URL-safe base64. Only the SHA-256 of
the whole key is stored. A fast hash is enough here, unlike for a password: the secret has 256
bits of entropy, so nobody who reads the table can guess the key behind a hash, however many
hashes a second they try; a slow hash (bcrypt, argon2) only protects low-entropy secrets, and
would cost every request its time. A key is looked up by its id and its hash compared in
constant time.

A key is printed once, when it is created, and never logged. Revoking a key keeps its row, so
that `api-key list` still shows when it stopped working.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, replace

import sqlalchemy as sa

from ledger_pipeline.errors import ApiKeyError
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.transactions import StoreTransactions

logger = logging.getLogger(__name__)

KEY_PREFIX = "lpk"
SCOPES = tables.API_KEY_SCOPES
READ = "read"
MANAGE = "manage"
ID_BYTES = 5
SECRET_BYTES = 32
MAX_NAME_LENGTH = 100
# `last_used_at` is written at most this often per key, so that a busy client does not turn
# every request into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

_KEY_PATTERN = re.compile(rf"{KEY_PREFIX}_([0-9a-f]{{{2 * ID_BYTES}}})_([A-Za-z0-9_-]{{20,100}})")


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without the key itself."""

    id: str
    name: str
    scope: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        """Whether the key may do what `scope` needs: a manage key may also read."""
        return self.scope == MANAGE or scope == READ


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key and the text of the key, which exists nowhere else: show it once."""

    api_key: ApiKey
    token: str


class ApiKeyStore(StoreTransactions):
    """The API keys of one ledger."""

    records = "API keys"

    def create(self, name: str, scope: str, now: dt.datetime | None = None) -> CreatedApiKey:
        """Makes a new key of that scope.

        Raises:
            ApiKeyError: the name is empty or too long, or the scope is not read or manage.
        """
        name = _checked_name(name)
        if scope not in SCOPES:
            raise ApiKeyError(f"scope {scope!r} is not allowed: choose read or manage")
        now = now or _now()

        with self._writing() as connection:
            key_id = _new_id(connection)
            token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
            connection.execute(
                tables.api_keys.insert().values(
                    id=key_id, token_hash=_hash(token), name=name, scope=scope, created_at=now
                )
            )
        logger.info("created API key %s with scope %s", key_id, scope)
        return CreatedApiKey(ApiKey(key_id, name, scope, now), token)

    def get(self, key_id: str) -> ApiKey:
        """The key of that id.

        Raises:
            ApiKeyError: no key has that id.
        """
        with self._reading() as connection:
            row = _row(connection, key_id)
        if row is None:
            raise _unknown(key_id)
        return _api_key(row)

    def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        query = sa.select(tables.api_keys).order_by(
            tables.api_keys.c.created_at, tables.api_keys.c.id
        )
        with self._reading() as connection:
            return [_api_key(row) for row in connection.execute(query)]

    def revoke(self, key_id: str, now: dt.datetime | None = None) -> ApiKey:
        """Revokes a key: it stops working at once. Revoking a revoked key changes nothing.

        Raises:
            ApiKeyError: no key has that id.
        """
        now = now or _now()
        with self._writing() as connection:
            row = _row(connection, key_id, for_update=True)
            if row is None:
                raise _unknown(key_id)
            if row.revoked_at is not None:
                return _api_key(row)
            connection.execute(
                tables.api_keys.update()
                .where(tables.api_keys.c.id == key_id)
                .values(revoked_at=now)
            )
        logger.info("revoked API key %s", key_id)
        return replace(_api_key(row), revoked_at=now)

    def authenticate(self, token: str, now: dt.datetime | None = None) -> ApiKey:
        """The key a request presents, its use recorded (at most once a minute per key).

        Raises:
            ApiKeyError: not a key of this ledger, or a revoked one; the message says which,
                and never shows the key.
        """
        match = _KEY_PATTERN.fullmatch(token)
        if match is None:
            raise ApiKeyError(
                "the API key is malformed: send Authorization: Bearer lpk_<id>_<secret>, as "
                "printed by `ledger-pipeline api-key create`"
            )
        key_id = match.group(1)
        with self._reading() as connection:
            row = _row(connection, key_id)
        if row is None or not hmac.compare_digest(row.token_hash, _hash(token)):
            raise ApiKeyError(f"API key {key_id} is not a key of this ledger")
        api_key = _api_key(row)
        if api_key.revoked:
            raise ApiKeyError(f"API key {key_id} is revoked: ask for a new one")

        now = now or _now()
        if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
            with self._writing() as connection:
                connection.execute(
                    tables.api_keys.update()
                    .where(tables.api_keys.c.id == key_id)
                    .values(last_used_at=now)
                )
        return api_key


def _new_id(connection: sa.Connection) -> str:
    """A key id no stored key has (ten hex digits: a clash is rare, and then drawn again)."""
    while True:
        key_id = secrets.token_hex(ID_BYTES)
        if _row(connection, key_id) is None:
            return key_id


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiKeyError("an API key needs a name: say who or what uses it, e.g. --name books")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ApiKeyError(
            f"API key name {name[:MAX_NAME_LENGTH]!r} is not allowed: use at most "
            f"{MAX_NAME_LENGTH} printable characters"
        )
    return name


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _row(connection: sa.Connection, key_id: str, *, for_update: bool = False) -> sa.Row | None:
    query = sa.select(tables.api_keys).where(tables.api_keys.c.id == key_id)
    if for_update:
        query = query.with_for_update()
    return connection.execute(query).one_or_none()


def _api_key(row: sa.Row) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scope=row.scope,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _unknown(key_id: str) -> ApiKeyError:
    return ApiKeyError(f"unknown API key {key_id!r}: see `ledger-pipeline api-key list`")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
