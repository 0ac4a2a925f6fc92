"""Registries in the ledger's database: create, read, change, rotate secrets, apply a file.

`RegistryStore` works on a `LedgerStore`'s engine. Every change is one write transaction (on
SQLite `BEGIN IMMEDIATE`, as the ledger's own writes), so `apply` changes every registry of a
file or none. A registry read for a change is locked (`SELECT ... FOR UPDATE` on PostgreSQL),
so two changes of one registry never overwrite each other.

Secrets: no log line, error message or repr holds one. A database error is re-raised as a
`StorageError` carrying the database's first line only, since SQLAlchemy's own message shows
the statement's parameters.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ledger_pipeline.core.registry import (
    DEFINITION_FIELDS,
    REGISTRY_FIELDS,
    SECRET_OVERLAP,
    Registry,
    changed_fields,
    new_secret,
    registry_definitions,
)
from ledger_pipeline.errors import RegistryError, UnknownRegistry
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.deliveries import DELIVERY_FIELDS, delete_deliveries, queue_backlog
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline.storage.transactions import StoreTransactions

logger = logging.getLogger(__name__)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"

# The fields `update` changes; a registry's name is its identity.
UPDATABLE_FIELDS = tuple(name for name in DEFINITION_FIELDS if name != "name")


@dataclass(frozen=True)
class RegistryChange:
    """What `apply` did to one registry of the file.

    `action` is created, updated or unchanged; `fields` names the fields an update changed;
    `secret_generated` is true when a created registry's secret was generated, not given;
    `queued` counts the deliveries of earlier events the change queued (see `queue_backlog`).
    """

    name: str
    action: str
    fields: tuple[str, ...] = ()
    registry: Registry | None = None
    secret_generated: bool = False
    queued: int = 0


class RegistryStore(StoreTransactions):
    """The registries of one ledger.

    What the last change through this object did to deliveries, for a caller to report:
    `queued`, the deliveries of earlier events that `create` or `update` queued (a `since` in
    the past takes history: a date is read as a posting time, so it can take thousands), and
    `deleted`, the deliveries per status that `delete` removed with the registry.
    """

    records = "registries"

    def __init__(self, store: LedgerStore):
        super().__init__(store)
        self.timezone: ZoneInfo = store.timezone
        self.queued = 0
        self.deleted: dict[str, int] = {}

    def create(self, registry: Registry) -> Registry:
        """Stores a new registry. Events posted since its `since` (when that is before now: the
        registry takes history on purpose) get their deliveries in the same transaction.

        Raises:
            RegistryError: a registry of that name exists.
        """
        with self._writing() as connection:
            if _read(connection, registry.name) is not None:
                raise _exists(registry.name)
            _insert(connection, registry)
            self.queued = queue_backlog(connection, registry, _now())
        logger.info("created registry %s", registry.name)
        return registry

    def get(self, name: str) -> Registry:
        """The registry of that name.

        Raises:
            UnknownRegistry: none has that name.
        """
        with self._reading() as connection:
            registry = _read(connection, name)
        if registry is None:
            raise UnknownRegistry(name)
        return registry

    def update(self, name: str, /, now: dt.datetime | None = None, **changes: Any) -> Registry:
        """Changes the given fields of a registry (of `UPDATABLE_FIELDS`); the others stay.

        A new `secret` is a rotation: the old one stays valid for `SECRET_OVERLAP`. A change of
        `since` or of a filter queues the deliveries of events posted since `since` that have
        none for this registry yet.

        Raises:
            UnknownRegistry: none has that name.
            RegistryError: a field that cannot change, or a value that is not allowed.
        """
        for field_name in changes:
            if field_name not in UPDATABLE_FIELDS:
                raise RegistryError(
                    f"field {field_name!r} cannot be updated: choose from "
                    f"{', '.join(UPDATABLE_FIELDS)}"
                )
        now = now or _now()
        self.queued = 0
        with self._writing() as connection:
            stored = _read_for_update(connection, name)
            registry, changed = _changed(stored, changes, now)
            if changed:
                _write(connection, registry)
            if set(changed) & set(DELIVERY_FIELDS):
                self.queued = queue_backlog(connection, registry, now)
        if changed:
            logger.info("updated registry %s: %s", name, ", ".join(changed))
        return registry

    def enable(self, name: str) -> Registry:
        """Enables a registry: its waiting deliveries go out again, in order."""
        return self.update(name, enabled=True)

    def disable(self, name: str) -> Registry:
        """Disables a registry: its deliveries wait until it is enabled again."""
        return self.update(name, enabled=False)

    def delete(self, name: str) -> Registry:
        """Deletes a registry; returns what it was. Its deliveries go with it, pending or not,
        with their attempts: a registry made again under that name starts afresh.

        Raises:
            UnknownRegistry: none has that name.
        """
        with self._writing() as connection:
            registry = _read_for_update(connection, name)
            deleted = delete_deliveries(connection, name)
            connection.execute(tables.registries.delete().where(tables.registries.c.name == name))
        self.deleted = dict(deleted)
        logger.info(
            "deleted registry %s and its %d deliveries (%d pending)",
            name,
            sum(deleted.values()),
            deleted.get("pending", 0),
        )
        return registry

    def rotate_secret(
        self, name: str, secret: str | None = None, now: dt.datetime | None = None
    ) -> Registry:
        """Gives a registry a new secret (generated unless given); the old one stays valid for
        `SECRET_OVERLAP` so that its receiver can switch over.

        Only one previous secret is kept: rotating again within the overlap ends the validity
        of the secret before the last one at once.
        """
        now = now or _now()
        with self._writing() as connection:
            stored = _read_for_update(connection, name)
            registry, _ = _changed(stored, {"secret": secret or new_secret()}, now)
            _write(connection, registry)
        logger.info("rotated the secret of registry %s", name)
        return registry

    def apply(
        self, document: object, now: dt.datetime | None = None
    ) -> builtins.list[RegistryChange]:
        """Makes the stored registries equal the definitions of a file, all or none.

        A registry not stored yet is created; a stored one gets the file's values. A field the
        file leaves out takes its default (no destination, entry type or group-by column: all;
        totals debit and credit; test orders left out; since: the registry's creation), except
        `enabled` and `secret`, which are left as they are (they are switched and rotated by
        their own commands). Registries not in the file are left alone. Applying the same file
        again changes nothing and reports every registry unchanged.

        Args:
            document: the parsed file: a list of mappings of fields, or `{registries: [...]}`.
        """
        definitions = registry_definitions(document, self.timezone)
        now = now or _now()
        changes = []
        with self._writing() as connection:
            for definition in definitions:
                try:
                    changes.append(_apply_one(connection, definition, now))
                except RegistryError as error:
                    raise RegistryError(f"registry {definition['name']!r}: {error}") from None

        for change in changes:
            if change.action != UNCHANGED:
                logger.info("apply: %s registry %s %s", change.action, change.name, change.fields)
        logger.info(
            "applied %d registries: %d created, %d updated",
            len(changes),
            sum(change.action == CREATED for change in changes),
            sum(change.action == UPDATED for change in changes),
        )
        return changes

    def list(self) -> builtins.list[Registry]:
        """Every registry, by name."""
        with self._reading() as connection:
            rows = connection.execute(
                sa.select(tables.registries).order_by(tables.registries.c.name)
            ).all()
        return [_registry(row) for row in rows]


def _apply_one(
    connection: sa.Connection, definition: Mapping[str, Any], now: dt.datetime
) -> RegistryChange:
    name = definition["name"]
    stored = _read(connection, name, for_update=True)
    if stored is None:
        registry = Registry(**definition, created_at=now)
        _insert(connection, registry)
        queued = queue_backlog(connection, registry, now)
        return RegistryChange(
            name,
            CREATED,
            registry=registry,
            secret_generated="secret" not in definition,
            queued=queued,
        )

    wanted = {
        "destinations": (),
        "entry_types": (),
        "group_by": (),
        "totals": (),
        "include_test": False,
        "since": stored.created_at,
        **{key: value for key, value in definition.items() if key != "name"},
    }
    registry, changed = _changed(stored, wanted, now)
    if not changed:
        return RegistryChange(name, UNCHANGED, registry=registry)
    _write(connection, registry)
    queued = 0
    if set(changed) & set(DELIVERY_FIELDS):
        queued = queue_backlog(connection, registry, now)
    return RegistryChange(name, UPDATED, changed, registry=registry, queued=queued)


def _changed(
    stored: Registry, changes: Mapping[str, Any], now: dt.datetime
) -> tuple[Registry, tuple[str, ...]]:
    """The registry with the changes, and the fields that differ; a new secret keeps the old
    one valid for `SECRET_OVERLAP`."""
    candidate = replace(stored, **changes)
    changed = changed_fields(stored, candidate)
    if not changed:
        return stored, ()
    if "secret" in changed:
        candidate = replace(
            candidate,
            previous_secret=stored.secret,
            previous_secret_expires_at=now + SECRET_OVERLAP,
        )
    return replace(candidate, updated_at=now), changed


# Rows


def _read(connection: sa.Connection, name: str, *, for_update: bool = False) -> Registry | None:
    query = sa.select(tables.registries).where(tables.registries.c.name == name)
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).one_or_none()
    return _registry(row) if row is not None else None


def _read_for_update(connection: sa.Connection, name: str) -> Registry:
    registry = _read(connection, name, for_update=True)
    if registry is None:
        raise UnknownRegistry(name)
    return registry


def _insert(connection: sa.Connection, registry: Registry) -> None:
    try:
        connection.execute(tables.registries.insert().values(**_row(registry)))
    except sa.exc.IntegrityError:
        # Another process created it since this transaction looked.
        raise _exists(registry.name) from None


def _write(connection: sa.Connection, registry: Registry) -> None:
    values = {name: value for name, value in _row(registry).items() if name != "name"}
    connection.execute(
        tables.registries.update().where(tables.registries.c.name == registry.name).values(**values)
    )


def _row(registry: Registry) -> dict[str, Any]:
    return {name: getattr(registry, name) for name in REGISTRY_FIELDS}


def _registry(row: sa.Row) -> Registry:
    return Registry(**{name: getattr(row, name) for name in REGISTRY_FIELDS})


# Errors


def _exists(name: str) -> RegistryError:
    return RegistryError(
        f"registry {name!r} already exists: change it with `ledger-pipeline registry update`"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
