"""Webhook deliveries in the ledger's database: the transactional outbox and its bookkeeping.

A delivery is one `ledger_summary` for one registry and one order event. It is queued in the
transaction that posts the event (`Outbox`, used by `LedgerStore.post`), so an event's entries
and its deliveries are committed together or not at all. Its body is built then, once; every
attempt sends those bytes.

`DeliveryStore` is what a delivery worker and an operator use:

- `claim` takes a batch of due deliveries and leases them to one worker. On PostgreSQL the
  rows are locked with `FOR UPDATE SKIP LOCKED`, so two workers claiming at once take disjoint
  batches; on SQLite the claim is a `BEGIN IMMEDIATE` transaction, which no other writer
  interleaves. A lease that expires (its worker died) makes the delivery claimable again.
- Deliveries of one order go out in version order: a delivery is claimable only while no
  earlier version of its order (for the same registry) is pending or dead. So a later version
  waits for the earlier one, and a dead one holds back the rest of its order until an operator
  replays or skips it. A disabled registry's deliveries are not claimed.
- `record` writes a batch of attempts in one transaction: the attempt rows, and per delivery
  its new state from the retry schedule (`ledger_pipeline.delivery.schedule`). A 410 disables
  the registry; the delivery waits, like the registry's others, until it is enabled again.
- `list`, `get`, `replay`, `skip` and `counts` serve the operator.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import logging
import random as random_module
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa

from ledger_pipeline.core.payloads import ledger_summaries
from ledger_pipeline.core.posting import LedgerEntry
from ledger_pipeline.core.registry import REGISTRY_FIELDS, Registry
from ledger_pipeline.delivery import schedule, signing
from ledger_pipeline.errors import DeliveryError, UnknownRegistry
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.store import (
    IN_LIST_SIZE,
    LedgerStore,
    _BulkInsert,
    _chunks,
    _lock,
    _lock_key,
    _now,
)

logger = logging.getLogger(__name__)

# The largest delivery id (a 32-bit INTEGER on PostgreSQL): a larger one names no delivery and
# cannot even be bound as a query parameter.
MAX_DELIVERY_ID = 2**31 - 1

PENDING = "pending"
SUCCEEDED = "succeeded"
DEAD = "dead"
SKIPPED = "skipped"
STATUSES = tables.DELIVERY_STATUSES
# Not a stored status: pending deliveries whose last attempt failed (listing only).
FAILING = "failing"

# The advisory lock that orders posting against registry changes on PostgreSQL: a posting
# chunk holds it shared while it reads the registries and queues deliveries, a registry change
# holds it exclusively while it queues the registry's backlog. So an event is either posted
# before the change (and found by the backlog) or after it (and queued by the posting).
REGISTRIES_LOCK = "registries"

# Fields of a registry that decide which events it receives; changing one queues the backlog.
DELIVERY_FIELDS = ("since", "destinations", "entry_types", "include_test")

_QUEUED_COLUMNS = (
    "registry",
    "event_id",
    "order_id",
    "order_version",
    "idempotency_key",
    "webhook_id",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
_ATTEMPT_COLUMNS = (
    "delivery_id",
    "number",
    "started_at",
    "status_code",
    "latency_ms",
    "response_excerpt",
    "error",
    "worker",
)


# Queueing (the outbox)


def summary_body(summary: dict[str, Any]) -> bytes:
    """The bytes a `ledger_summary` is sent as: compact JSON in UTF-8, built once."""
    return json.dumps(summary, separators=(",", ":"), ensure_ascii=False).encode()


class Outbox:
    """The deliveries one posting transaction queues: one per registry whose `since` is at or
    before the posting moment and whose filters pass at least one of the event's entries.

    Disabled registries get deliveries too; they wait until the registry is enabled again.
    """

    def __init__(self, registries: Sequence[Registry], now: dt.datetime):
        self._registries = [registry for registry in registries if registry.since <= now]
        self._now = now
        self._rows: list[tuple[Any, ...]] = []

    @classmethod
    def open(cls, connection: sa.Connection, now: dt.datetime) -> Outbox:
        """The outbox of a posting transaction: the registries as they stand in it."""
        _lock_shared(connection, [REGISTRIES_LOCK])
        return cls(_registries(connection), now)

    def __bool__(self) -> bool:
        return bool(self._registries)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        """Queues the deliveries of one posted event, given all its entries."""
        for registry in self._registries:
            for summary in ledger_summaries(registry, entries):
                self._rows.append(_queued_row(registry.name, entries[0], summary, self._now))

    def insert(self, connection: sa.Connection) -> int:
        """Inserts the queued deliveries; returns how many."""
        _BulkInsert(connection, tables.deliveries, _QUEUED_COLUMNS).insert(self._rows)
        return len(self._rows)


def queue_backlog(connection: sa.Connection, registry: Registry, now: dt.datetime) -> int:
    """Queues a registry's deliveries of events posted at or after its `since` that have none
    for it yet (a registry given a `since` in the past takes that history on purpose), in the
    caller's transaction; returns how many were queued.

    Run it in the transaction that creates or changes the registry, after it is written.
    """
    # Limitation: the whole backlog is built in the registry's transaction, which holds the
    # ledger's write lock (SQLite) or the registries lock (PostgreSQL) while it runs: taking a
    # year of history on a big ledger makes posting wait until it is done.
    _lock(connection, [REGISTRIES_LOCK])
    events = tables.order_events
    deliveries = tables.deliveries
    has_delivery = sa.exists().where(
        deliveries.c.registry == registry.name, deliveries.c.event_id == events.c.event_id
    )
    event_ids = connection.scalars(
        sa.select(events.c.event_id)
        .where(events.c.posted_at.is_not(None), events.c.posted_at >= registry.since)
        .where(~has_delivery)
        .order_by(events.c.posted_at, events.c.order_id, events.c.order_version)
    ).all()

    queued = 0
    insert = _BulkInsert(connection, deliveries, _QUEUED_COLUMNS)
    for batch in _chunks(event_ids, IN_LIST_SIZE):
        entries = tables.ledger_entries
        rows = connection.execute(
            sa.select(entries)
            .where(entries.c.event_id.in_(batch))
            .order_by(entries.c.order_id, entries.c.order_version, entries.c.entry_id)
        )
        queued_rows = []
        for summary_entries in _by_event(LedgerEntry(*row) for row in rows):
            for summary in ledger_summaries(registry, summary_entries):
                queued_rows.append(_queued_row(registry.name, summary_entries[0], summary, now))
        insert.insert(queued_rows)
        queued += len(queued_rows)
    if queued:
        logger.info("queued %d deliveries of earlier events for registry %s", queued, registry.name)
    return queued


def delete_deliveries(connection: sa.Connection, registry_name: str) -> dict[str, int]:
    """Deletes every delivery of a registry and their attempts, in the caller's transaction;
    returns how many there were per status."""
    deliveries = tables.deliveries
    counts = dict(
        connection.execute(
            sa.select(deliveries.c.status, sa.func.count())
            .where(deliveries.c.registry == registry_name)
            .group_by(deliveries.c.status)
        ).all()
    )
    ids = sa.select(deliveries.c.id).where(deliveries.c.registry == registry_name)
    connection.execute(
        tables.delivery_attempts.delete().where(tables.delivery_attempts.c.delivery_id.in_(ids))
    )
    connection.execute(deliveries.delete().where(deliveries.c.registry == registry_name))
    return counts


def _queued_row(
    registry_name: str, first: LedgerEntry, summary: dict[str, Any], now: dt.datetime
) -> tuple[Any, ...]:
    key = summary["idempotency_key"]
    return (
        registry_name,
        first.event_id,
        first.order_id,
        first.order_version,
        key,
        signing.webhook_id(key),
        summary_body(summary),
        PENDING,
        0,
        now,
        now,
    )


def _by_event(entries: Iterable[LedgerEntry]) -> Iterable[list[LedgerEntry]]:
    grouped: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.event_id, []).append(entry)
    return grouped.values()


# What the worker and the operator see


class Outcome(StrEnum):
    """What recording an attempt did to its delivery."""

    SUCCEEDED = "succeeded"
    RETRIED = "retried"  # failed, tried again later
    DEAD = "dead"  # failed on its last try
    GONE = "gone"  # 410: the registry is disabled, the delivery waits
    LOST = "lost"  # the lease had passed to another worker: recorded, state left alone


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased to a worker, with what sending it takes. Its repr shows neither the
    body nor the secrets."""

    id: int
    registry: str
    url: str
    webhook_id: str
    idempotency_key: str
    order_id: str
    order_version: int
    attempts: int
    body: bytes = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)


class AttemptResult(Protocol):
    """What one POST gave (`ledger_pipeline.delivery.sending.AttemptResult`)."""

    status_code: int | None
    latency_ms: float | int
    response_excerpt: str | None
    error: str | None
    retry_after: dt.timedelta | None
    succeeded: bool
    gone: bool


@dataclass(frozen=True)
class SentAttempt:
    """One attempt a worker made, to be recorded."""

    delivery: ClaimedDelivery
    started_at: dt.datetime
    result: AttemptResult


@dataclass(frozen=True)
class Delivery:
    """A delivery as stored, without its body."""

    id: int
    registry: str
    event_id: str
    order_id: str
    order_version: int
    idempotency_key: str
    webhook_id: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    body_bytes: int


@dataclass(frozen=True)
class Attempt:
    """One recorded POST of a delivery."""

    number: int
    started_at: dt.datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    worker: str


@dataclass(frozen=True)
class DeliveryDetail:
    delivery: Delivery
    attempts: tuple[Attempt, ...]


class DeliveryStore:
    """The deliveries of one ledger."""

    def __init__(self, store: LedgerStore):
        self._store = store
        self._engine = store.engine

    # The worker's side

    def claim(
        self, worker: str, limit: int, lease: dt.timedelta, now: dt.datetime | None = None
    ) -> builtins.list[ClaimedDelivery]:
        """Leases up to `limit` due deliveries to `worker` until `now + lease`, earliest due
        first; returns them with their registry's URL and signing secrets."""
        now = now or _now()
        deliveries = tables.deliveries
        with self._store._writing() as connection:
            ids = connection.scalars(
                _claimable(sa.select(deliveries.c.id), now)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                .limit(limit)
                .with_for_update(of=deliveries, skip_locked=True)
            ).all()
            if not ids:
                return []
            connection.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids))
                .values(lease_owner=worker, lease_expires_at=now + lease)
            )
            rows = connection.execute(
                sa.select(
                    deliveries.c.id,
                    deliveries.c.registry,
                    deliveries.c.webhook_id,
                    deliveries.c.idempotency_key,
                    deliveries.c.order_id,
                    deliveries.c.order_version,
                    deliveries.c.attempts,
                    deliveries.c.body,
                )
                .where(deliveries.c.id.in_(ids))
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            ).all()
            registries = {
                registry.name: registry
                for registry in _registries(connection, {row.registry for row in rows})
            }

        claimed = []
        for row in rows:
            registry = registries[row.registry]
            claimed.append(
                ClaimedDelivery(
                    id=row.id,
                    registry=row.registry,
                    url=registry.url,
                    webhook_id=row.webhook_id,
                    idempotency_key=row.idempotency_key,
                    order_id=row.order_id,
                    order_version=row.order_version,
                    attempts=row.attempts,
                    body=bytes(row.body),
                    secrets=registry.signing_secrets(now),
                )
            )
        logger.debug("worker %s claimed %d deliveries", worker, len(claimed))
        return claimed

    def record(
        self,
        worker: str,
        attempts: Sequence[SentAttempt],
        now: dt.datetime | None = None,
        random: random_module.Random | None = None,
    ) -> builtins.list[Outcome]:
        """Records a batch of attempts in one transaction and moves each delivery on: a 2xx
        succeeds it, a 410 disables its registry (the delivery waits), another failure
        schedules the next try or, after the last, makes it dead. A delivery no longer leased
        to `worker` keeps its state (its attempt is still recorded).

        Returns the outcome of each attempt, in the order given.
        """
        now = now or _now()
        random = random or random_module.Random()  # noqa: S311 (jitter, not a secret)
        deliveries = tables.deliveries
        ids = [attempt.delivery.id for attempt in attempts]
        if not ids:
            return []

        with self._store._writing() as connection:
            current = {
                row.id: row
                for row in connection.execute(
                    sa.select(
                        deliveries.c.id,
                        deliveries.c.status,
                        deliveries.c.lease_owner,
                        deliveries.c.attempts,
                    )
                    .where(deliveries.c.id.in_(ids))
                    .with_for_update()
                )
            }
            numbers = _last_attempt_numbers(connection, ids)

            outcomes = []
            attempt_rows = []
            updates = []
            gone: set[str] = set()
            for attempt in attempts:
                delivery, result = attempt.delivery, attempt.result
                numbers[delivery.id] = numbers.get(delivery.id, 0) + 1
                attempt_rows.append(
                    (
                        delivery.id,
                        numbers[delivery.id],
                        attempt.started_at,
                        result.status_code,
                        round(result.latency_ms),
                        result.response_excerpt,
                        result.error,
                        worker,
                    )
                )
                row = current.get(delivery.id)
                if row is None or row.status != PENDING or row.lease_owner != worker:
                    outcomes.append(Outcome.LOST)
                    continue
                outcome, update = _next_state(row.attempts + 1, result, now, random)
                if outcome is Outcome.GONE:
                    gone.add(delivery.registry)
                outcomes.append(outcome)
                updates.append({"b_id": delivery.id, **update})

            _BulkInsert(connection, tables.delivery_attempts, _ATTEMPT_COLUMNS).insert(attempt_rows)
            if updates:
                connection.execute(
                    deliveries.update()
                    .where(deliveries.c.id == sa.bindparam("b_id"))
                    .values({name: sa.bindparam(name) for name in updates[0] if name != "b_id"}),
                    updates,
                )
            if gone:
                connection.execute(
                    tables.registries.update()
                    .where(tables.registries.c.name.in_(sorted(gone)))
                    .values(enabled=False, updated_at=now)
                )

        for name in sorted(gone):
            logger.warning("registry %s answered 410 Gone: disabled it", name)
        lost = outcomes.count(Outcome.LOST)
        if lost:
            logger.warning("worker %s had lost the lease of %d deliveries", worker, lost)
        return outcomes

    def due_count(self, now: dt.datetime | None = None) -> int:
        """How many deliveries a worker could claim now."""
        now = now or _now()
        query = _claimable(sa.select(sa.func.count()), now)
        with self._engine.connect() as connection:
            return connection.scalar(query) or 0

    def next_due_at(self) -> dt.datetime | None:
        """When the earliest pending delivery is due (whether or not it is held back)."""
        deliveries = tables.deliveries
        query = sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.status == PENDING
        )
        with self._engine.connect() as connection:
            return connection.scalar(query)

    # The operator's side

    def list(
        self,
        *,
        status: str | None = None,
        registry: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[Delivery]:
        """Deliveries, newest first.

        Args:
            status: one of `STATUSES`, or `FAILING` (pending, with a failed attempt); None for
                every status.
            registry: only this registry's.
            limit: at most this many; None for all.

        Raises:
            UnknownRegistry: no registry has that name.
        """
        query = _filtered(_delivery_select(), status, registry).order_by(
            tables.deliveries.c.id.desc()
        )
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            _check_registry(connection, registry)
            return [_delivery(row) for row in connection.execute(query)]

    def get(self, delivery_id: int) -> DeliveryDetail:
        """A delivery and its attempts, oldest first.

        Raises:
            DeliveryError: there is no such delivery.
        """
        attempts_table = tables.delivery_attempts
        with self._engine.connect() as connection:
            row = connection.execute(
                _delivery_select().where(tables.deliveries.c.id == delivery_id)
            ).one_or_none()
            if row is None:
                raise _unknown([delivery_id])
            attempts = connection.execute(
                sa.select(attempts_table)
                .where(attempts_table.c.delivery_id == delivery_id)
                .order_by(attempts_table.c.number, attempts_table.c.id)
            ).all()
        return DeliveryDetail(
            _delivery(row),
            tuple(
                Attempt(
                    number=attempt.number,
                    started_at=attempt.started_at,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    response_excerpt=attempt.response_excerpt,
                    error=attempt.error,
                    worker=attempt.worker,
                )
                for attempt in attempts
            ),
        )

    def body(self, delivery_id: int) -> bytes:
        """The bytes a delivery sends."""
        with self._engine.connect() as connection:
            body = connection.scalar(
                sa.select(tables.deliveries.c.body).where(tables.deliveries.c.id == delivery_id)
            )
        if body is None:
            raise _unknown([delivery_id])
        return bytes(body)

    def replay(
        self,
        ids: Sequence[int] = (),
        *,
        registry: str | None = None,
        status: str | None = None,
        now: dt.datetime | None = None,
    ) -> int:
        """Makes dead, skipped or failing deliveries due now with a fresh series of tries;
        returns how many. Give ids, or a registry and/or a status (default dead).

        A succeeded delivery is not sent again, nor one a worker holds right now.

        Raises:
            DeliveryError: an unknown or succeeded id, or nothing chosen.
            UnknownRegistry: no registry has that name.
        """
        now = now or _now()
        deliveries = tables.deliveries
        with self._store._writing() as connection:
            if ids:
                _check_ids(connection, ids, allowed=(PENDING, DEAD, SKIPPED), verb="replay")
                chosen = deliveries.c.id.in_(sorted(set(ids)))
            elif registry is not None or status is not None:
                _check_registry(connection, registry)
                status = status or DEAD
                if status not in (DEAD, SKIPPED, FAILING):
                    raise DeliveryError(
                        f"cannot replay {status} deliveries: choose dead, skipped or failing"
                    )
                chosen = _filtered(sa.select(deliveries.c.id), status, registry).scalar_subquery()
                chosen = deliveries.c.id.in_(chosen)
            else:
                raise DeliveryError("choose the deliveries to replay: ids, or --registry/--status")
            result = connection.execute(
                deliveries.update()
                .where(chosen, deliveries.c.status != SUCCEEDED, _lease_free(now))
                .values(
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
        logger.info("replayed %d deliveries", result.rowcount)
        return result.rowcount

    def skip(self, ids: Sequence[int], now: dt.datetime | None = None) -> int:
        """Gives up on pending or dead deliveries: they are not sent, and no longer hold back
        the later versions of their order. Returns how many.

        Raises:
            DeliveryError: an unknown or succeeded id.
        """
        deliveries = tables.deliveries
        if not ids:
            raise DeliveryError("choose the deliveries to skip by id")
        with self._store._writing() as connection:
            _check_ids(connection, ids, allowed=(PENDING, DEAD, SKIPPED), verb="skip")
            result = connection.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(sorted(set(ids))))
                .where(deliveries.c.status.in_((PENDING, DEAD)))
                .values(status=SKIPPED, lease_owner=None, lease_expires_at=None)
            )
        logger.info("skipped %d deliveries", result.rowcount)
        return result.rowcount

    def counts(self) -> dict[str, dict[str, int]]:
        """The number of deliveries per registry and status."""
        deliveries = tables.deliveries
        query = sa.select(deliveries.c.registry, deliveries.c.status, sa.func.count()).group_by(
            deliveries.c.registry, deliveries.c.status
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        with self._engine.connect() as connection:
            for registry, status, count in connection.execute(query):
                counts[registry][status] = count
        return dict(sorted(counts.items()))


# Queries


def _claimable(query: sa.Select, now: dt.datetime) -> sa.Select:
    """Restricts a query of deliveries to those a worker may claim now: pending, due, not
    leased (or the lease expired), of an enabled registry, and the lowest version of their
    order for that registry that is neither pending nor dead."""
    deliveries = tables.deliveries
    registries = tables.registries
    earlier = deliveries.alias("earlier")
    held_back = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.registry == deliveries.c.registry,
            earlier.c.order_id == deliveries.c.order_id,
            earlier.c.order_version < deliveries.c.order_version,
            earlier.c.status.in_((PENDING, DEAD)),
        )
        .exists()
    )
    return (
        query.select_from(deliveries)
        .join(registries, registries.c.name == deliveries.c.registry)
        .where(
            deliveries.c.status == PENDING,
            deliveries.c.next_attempt_at <= now,
            _lease_free(now),
            registries.c.enabled.is_(True),
            ~held_back,
        )
    )


def _lease_free(now: dt.datetime) -> sa.ColumnElement[bool]:
    deliveries = tables.deliveries
    return sa.or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at <= now)


def _filtered(query: sa.Select, status: str | None, registry: str | None) -> sa.Select:
    deliveries = tables.deliveries
    if status == FAILING:
        query = query.where(deliveries.c.status == PENDING, deliveries.c.attempts > 0)
    elif status is not None:
        if status not in STATUSES:
            raise DeliveryError(
                f"unknown delivery status {status!r}: choose from {', '.join(STATUSES)}, {FAILING}"
            )
        query = query.where(deliveries.c.status == status)
    if registry is not None:
        query = query.where(deliveries.c.registry == registry)
    return query


def _check_registry(connection: sa.Connection, registry: str | None) -> None:
    """A filter on a registry that does not exist is a mistake, not an empty list (a deleted
    registry's deliveries go with it)."""
    if registry is None:
        return
    registries = tables.registries
    query = sa.select(registries.c.name).where(registries.c.name == registry)
    if connection.execute(query).first() is None:
        raise UnknownRegistry(registry)


def _delivery_select() -> sa.Select:
    deliveries = tables.deliveries
    columns = [column for column in deliveries.c if column.name != "body"]
    return sa.select(*columns, sa.func.length(deliveries.c.body).label("body_bytes"))


def _delivery(row: sa.Row) -> Delivery:
    return Delivery(**row._mapping)


def _next_state(
    attempts_made: int, result: AttemptResult, now: dt.datetime, random: random_module.Random
) -> tuple[Outcome, dict[str, Any]]:
    """A delivery's outcome and new column values after its `attempts_made`-th attempt."""
    update: dict[str, Any] = {
        "status": PENDING,
        "attempts": attempts_made,
        "next_attempt_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": result.status_code,
        "last_error": result.error,
        "delivered_at": None,
    }
    if result.succeeded:
        return Outcome.SUCCEEDED, {**update, "status": SUCCEEDED, "delivered_at": now}
    if result.gone:
        return Outcome.GONE, update
    delay = schedule.retry_delay(attempts_made, result.retry_after, random)
    if delay is None:
        return Outcome.DEAD, {**update, "status": DEAD}
    return Outcome.RETRIED, {**update, "next_attempt_at": now + delay}


def _last_attempt_numbers(connection: sa.Connection, ids: Sequence[int]) -> dict[int, int]:
    attempts = tables.delivery_attempts
    numbers: dict[int, int] = {}
    for batch in _chunks(sorted(set(ids)), IN_LIST_SIZE):
        rows = connection.execute(
            sa.select(attempts.c.delivery_id, sa.func.max(attempts.c.number))
            .where(attempts.c.delivery_id.in_(batch))
            .group_by(attempts.c.delivery_id)
        )
        numbers.update((delivery_id, number) for delivery_id, number in rows)
    return numbers


def _check_ids(
    connection: sa.Connection, ids: Sequence[int], allowed: Sequence[str], verb: str
) -> None:
    deliveries = tables.deliveries
    found = dict(
        connection.execute(
            sa.select(deliveries.c.id, deliveries.c.status).where(
                deliveries.c.id.in_(sorted(set(ids)))
            )
        ).all()
    )
    missing = sorted(set(ids) - set(found))
    if missing:
        raise _unknown(missing)
    refused = sorted(delivery_id for delivery_id, status in found.items() if status not in allowed)
    if refused:
        raise DeliveryError(
            f"cannot {verb} delivery {', '.join(map(str, refused))}: it has succeeded"
        )


def _registries(connection: sa.Connection, names: Iterable[str] | None = None) -> list[Registry]:
    query = sa.select(tables.registries).order_by(tables.registries.c.name)
    if names is not None:
        query = query.where(tables.registries.c.name.in_(sorted(names)))
    return [
        Registry(**{name: getattr(row, name) for name in REGISTRY_FIELDS})
        for row in connection.execute(query)
    ]


def _lock_shared(connection: sa.Connection, names: Sequence[str]) -> None:
    """Takes PostgreSQL transaction-scoped advisory locks in shared mode (see `_lock`)."""
    if connection.dialect.name != "postgresql":
        return
    for name in sorted(names):
        connection.execute(
            sa.text("select pg_advisory_xact_lock_shared(:key)"),
            {"key": _lock_key(name)},
        )


def _unknown(ids: Sequence[int]) -> DeliveryError:
    listed = ", ".join(map(str, ids))
    return DeliveryError(f"there is no delivery {listed}: see `ledger-pipeline deliveries list`")
