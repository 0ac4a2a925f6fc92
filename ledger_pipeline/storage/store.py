"""The ledger's storage: landing order events, posting them, ledger-code rules, and reading back.

`LedgerStore` is the one object callers use. It works on any SQLAlchemy database and is tested
on SQLite and PostgreSQL.

Concurrency: several processes may import and post into one ledger at once.

- SQLite runs in WAL mode (readers never wait for the writer) with a 30 s busy timeout, and
  every write transaction starts with `BEGIN IMMEDIATE`, so it holds the database's write lock
  from its first statement: two writers never interleave, and a landing decision is always
  taken on facts no other writer can change before the commit.
- PostgreSQL runs at READ COMMITTED; a write transaction first takes a transaction-scoped
  advisory lock per order (and per event id) it touches, in one global order so that two
  transactions cannot deadlock. Two imports of overlapping files therefore decide one order at
  a time, and the second sees what the first committed. The unique constraint on
  (order_id, order_version) and the event id's primary key are the last line of defence: a
  chunk that breaks them is retried, and decides again on the new facts.

Parallel work: the pure part of a large import (an adapter's reading of each record, parsing
each line, its canonical JSON and hash) and of a large posting run (replaying each order's
landed events) runs in a pool of worker processes, while this process keeps every database
read, landing decision and write in the chunk's transactions above, and stores one batch while
the workers work on the next ones.
Workers get plain values and give back plain values (a parsed line comes back as its
`EventHead`, hash and document), in input order, so a run gives the same rows, in the same
order, with any number of workers.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hashlib
import itertools
import json
import logging
import multiprocessing
import operator
import os
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ledger_pipeline.core.events import (
    canonical_json,
    canonical_json_hash,
    event_document,
    parse_event,
    parse_stored_event,
)
from ledger_pipeline.core.landing import (
    EventHead,
    LandedOrder,
    LandingDecision,
    Outcome,
    decide_landing,
)
from ledger_pipeline.core.model import EventType, OrderEvent
from ledger_pipeline.core.posting import ACCOUNTS, LedgerEntry, OrderLedger, post_event
from ledger_pipeline.errors import ConfigurationError, LedgerError, MalformedEvent
from ledger_pipeline.schemas import LedgerEntryFrame, OrderEventFrame
from ledger_pipeline.settings import DATABASE_URL_VARIABLE, TIMEZONE_VARIABLE, Settings
from ledger_pipeline.storage import sql_models, tables
from ledger_pipeline.storage.tables import CODE_RULE_FIELDS

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# On PostgreSQL a chunk takes an advisory lock per order and event id, and every lock held takes
# a place in the server's shared lock table (64 x max_connections places by default), so chunks
# stay small there. SQLite takes no such locks, and a chunk's commit costs more than its lines.
LANDING_CHUNK_LINES = 1000
POSTING_CHUNK_ORDERS = 1000
SQLITE_LANDING_CHUNK_LINES = 20_000
SQLITE_POSTING_CHUNK_ORDERS = 10_000
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# SQLite's page cache per connection, in KiB. Entries land at random places of the entry id's
# index, and with the default 2 MiB storing the hotel file's 616,120 entries took 22 s of
# inserts where 64 MiB takes 17 s.
SQLITE_CACHE_KIB = 64 * 1024
CHUNK_ATTEMPTS = 3
# Below these sizes an import (in records read: lines, or the records `expand` reads lines from)
# or a posting run works in this process: starting workers would cost more.
PARALLEL_MIN_LINES = 2500
PARALLEL_MIN_ORDERS = 2500
# Lines or orders handed to one worker at a time (at most: a posting chunk is cut in at least two
# batches per worker, so that its entries are stored while the workers post the rest), and how
# many such batches a run keeps in flight per worker (bounding the memory that lines and
# histories read ahead take).
PARALLEL_BATCH_LINES = 2000
PARALLEL_BATCH_ORDERS = 500
PARALLEL_BATCHES_AHEAD = 3
# Values bound in one `IN (...)` list, below SQLite's limit of 32,766 variables a statement.
IN_LIST_SIZE = 10_000

# A connection execution option: the transaction it begins will write.
_WRITES = "ledger_writes"
_ENTRY_FIELDS = tuple(entry_field.name for entry_field in fields(LedgerEntry))
_entry_values = operator.attrgetter(*_ENTRY_FIELDS)
_ORDER_EVENT_COLUMNS = (
    "event_id",
    "order_id",
    "order_version",
    "type",
    "occurred_at",
    "date",
    "document",
    "content_hash",
    "source",
    "line_number",
    "landed_at",
    "posted_at",
)

T = TypeVar("T")

ImportedLine = tuple[str, int, str | bytes | Mapping[str, Any]]
"""(source name, line number, raw line or the JSON object it holds) of one imported line."""
Expand = Callable[[Any], tuple[Iterable[ImportedLine], Any]]
"""Turns a record of some format into its lines, and, when it can read none, what to report
about the record (else None). See `LedgerStore.land`."""


class Rejection(NamedTuple):
    """A line that was not accepted and is kept for inspection (stale or quarantined)."""

    line_number: int
    event_id: str | None
    outcome: Outcome
    reason: str


@dataclass
class LandingReport:
    """What an import did, line by line counted by outcome."""

    accepted: int = 0
    duplicate: int = 0
    stale: int = 0
    quarantined: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # What `expand` gave for the records it could read no line from, in input order.
    unreadable: list[Any] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicate + self.stale + self.quarantined

    def count(self, outcome: Outcome) -> None:
        setattr(self, str(outcome), getattr(self, str(outcome)) + 1)


@dataclass
class PostingReport:
    """What a posting run added to the ledger; money in minor units per currency."""

    events: int = 0
    entries: int = 0
    deliveries: int = 0
    entries_per_account: Counter[str] = field(default_factory=Counter)
    debit_per_currency: Counter[str] = field(default_factory=Counter)
    credit_per_currency: Counter[str] = field(default_factory=Counter)

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        self.events += 1
        self.entries += len(entries)
        for entry in entries:
            self.entries_per_account[entry.account] += 1
            self.debit_per_currency[entry.currency] += entry.debit
            self.credit_per_currency[entry.currency] += entry.credit

    def merge(self, other: PostingReport) -> None:
        """Adds the counts of another report (of other events) to this one."""
        self.events += other.events
        self.entries += other.entries
        self.deliveries += other.deliveries
        self.entries_per_account.update(other.entries_per_account)
        self.debit_per_currency.update(other.debit_per_currency)
        self.credit_per_currency.update(other.credit_per_currency)


@dataclass(frozen=True)
class CodeRule:
    """A ledger-code rule: entries whose attributes equal every non-null match get `code`."""

    id: int
    position: int
    code: str
    match: Mapping[str, str]
    created_at: dt.datetime

    def matches(self, attributes: Mapping[str, object]) -> bool:
        return all(attributes.get(name) == value for name, value in self.match.items())


@dataclass(frozen=True)
class UnpostedSummary:
    """The landed events that are not posted yet."""

    events: int
    first_date: dt.date
    last_date: dt.date
    last_landed_at: dt.datetime


@dataclass(frozen=True)
class RejectedEvent:
    """A stale or quarantined line as stored: never the raw line, which may hold personal
    data; `document` is the allow-listed event when the line parsed. `date` is the event's
    accounting date when it parsed, else the local date of the import that rejected it."""

    id: int
    outcome: Outcome
    reason: str
    source: str
    line_number: int
    event_id: str | None
    order_id: str | None
    order_version: int | None
    document: str | None
    date: dt.date
    rejected_at: dt.datetime


class _Line(NamedTuple):
    """One imported line after parsing: either an event (the fields landing needs), with its
    content hash and the document stored for it, or the reason it is malformed."""

    source: str
    line_number: int
    event: EventHead | None = None
    content_hash: str | None = None
    document: str | None = None
    malformed: MalformedEvent | None = None

    @property
    def event_id(self) -> str | None:
        if self.event is not None:
            return self.event.event_id
        return self.malformed.event_id if self.malformed is not None else None


class LedgerStore:
    """A ledger in a database: opened (and created or upgraded) on construction.

    Args:
        database_url: any SQLAlchemy URL. The folder of a SQLite file is created if missing.
        timezone: the ledger's time zone. It is stored when the ledger is created; opening an
            existing ledger with another one raises `ConfigurationError`. None takes the
            stored one (UTC for a new ledger).
        landing_chunk_lines: lines landed per transaction; None takes the database's default
            (`SQLITE_LANDING_CHUNK_LINES` on SQLite, `LANDING_CHUNK_LINES` elsewhere).
        posting_chunk_orders: orders posted per transaction; None takes the database's default
            (`SQLITE_POSTING_CHUNK_ORDERS` on SQLite, `POSTING_CHUNK_ORDERS` elsewhere).
        workers: worker processes for the pure part of a large import or posting run (see the
            module's docstring); None takes the number of CPUs, 1 does all the work in this
            process.
    """

    def __init__(
        self,
        database_url: str,
        timezone: ZoneInfo | None = None,
        *,
        landing_chunk_lines: int | None = None,
        posting_chunk_orders: int | None = None,
        workers: int | None = None,
    ):
        self._engine = _create_engine(database_url)
        sqlite = self._engine.dialect.name == "sqlite"
        if landing_chunk_lines is None:
            landing_chunk_lines = SQLITE_LANDING_CHUNK_LINES if sqlite else LANDING_CHUNK_LINES
        if posting_chunk_orders is None:
            posting_chunk_orders = SQLITE_POSTING_CHUNK_ORDERS if sqlite else POSTING_CHUNK_ORDERS
        self.landing_chunk_lines = landing_chunk_lines
        self.posting_chunk_orders = posting_chunk_orders
        self.workers = max(1, os.cpu_count() or 1) if workers is None else max(1, workers)
        try:
            self.timezone = self._open(timezone)
        except Exception:
            self._engine.dispose()
            raise

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LedgerStore:
        """Opens the ledger the settings name (the environment's when none are given)."""
        settings = settings or Settings.from_environment()
        return cls(settings.database_url, settings.timezone)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    # Opening

    def _open(self, timezone: ZoneInfo | None) -> ZoneInfo:
        """Migrates the schema to the latest revision and checks the ledger's time zone."""
        try:
            with self._writing() as connection:
                _lock(connection, ["schema"])
                command.upgrade(alembic_config(connection), "head")
                return _fixed_timezone(connection, timezone)
        except sa.exc.OperationalError as error:
            logger.debug("cannot open the ledger", exc_info=True)
            raise ConfigurationError(
                f"cannot open the ledger database named by {DATABASE_URL_VARIABLE} "
                f"({self._engine.url.render_as_string(hide_password=True)}): "
                f"{_first_line(error.orig)}"
            ) from error

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A write transaction (on SQLite: `BEGIN IMMEDIATE`), committed when the block ends."""
        with self._engine.connect() as connection:
            connection.execution_options(**{_WRITES: True})
            with connection.begin():
                yield connection

    # Landing

    def land(self, records: Iterable[Any], *, expand: Expand | None = None) -> LandingReport:
        """Lands imported lines: each is accepted, a duplicate, stale or quarantined.

        Decisions are taken line by line in the order given, each on what the database and
        the lines before it landed. Lines are committed in chunks, so a bad line never stops
        the others and lines committed before a crash stay landed. Importing the same lines
        again changes nothing.

        Args:
            records: (source name, line number, raw line) for each line of the input; a line
                may also be given decoded, as the JSON object it holds. With `expand`, the
                records of another format, each holding any number of lines.
            expand: turns a record into its lines, and, for a record it can read no line
                from, what to report about it instead (kept, in input order, in the report's
                `unreadable`), or None. It runs in the worker processes of a large import,
                with the parsing of the lines (an adapter's conversion of a CSV row costs
                about as much as parsing its events), so it is pure and picklable: a
                module-level function, or a `functools.partial` of one.
        """
        report = LandingReport()
        lines_read = self._parsed_lines(records, expand, report.unreadable)
        for lines in _chunks(lines_read, self.landing_chunk_lines):
            decisions = self._retried(lambda lines=lines: self._land_chunk(lines))

            for line, decision in zip(lines, decisions, strict=True):
                report.count(decision.outcome)
                if decision.outcome in (Outcome.STALE, Outcome.QUARANTINED):
                    rejection = Rejection(
                        line.line_number, line.event_id, decision.outcome, decision.reason or ""
                    )
                    report.rejections.append(rejection)
            logger.debug("committed a chunk of %d lines", len(lines))

        logger.info(
            "landed %d lines: %d accepted, %d duplicate, %d stale, %d quarantined",
            report.lines,
            report.accepted,
            report.duplicate,
            report.stale,
            report.quarantined,
        )
        return report

    def _parsed_lines(
        self, records: Iterable[Any], expand: Expand | None, unreadable: list[Any]
    ) -> Iterator[_Line]:
        """The lines of the records parsed, in order: by worker processes when there are many.
        Parsing is pure, so lines are parsed ahead of the chunk that decides them. What
        `expand` reports of a record it cannot read is appended to `unreadable`."""
        read = functools.partial(_parsed_batch, expand=expand)
        records = iter(records)
        head: list[Any] = []
        try:
            for record in itertools.islice(records, PARALLEL_MIN_LINES):
                head.append(record)
        except Exception:
            # The input failed early: the lines read before are landed as far as they go.
            yield from _lines_of(read(head), unreadable)
            raise
        if self.workers == 1 or len(head) < PARALLEL_MIN_LINES:
            for record in itertools.chain(head, records):
                yield from _lines_of(read([record]), unreadable)
            return

        batches = _chunks(itertools.chain(head, records), PARALLEL_BATCH_LINES)
        for parsed in _in_workers(read, batches, self.workers):
            yield from _lines_of(parsed, unreadable)

    def _land_chunk(self, lines: Sequence[_Line]) -> list[LandingDecision]:
        now = _now()
        with self._writing() as connection:
            events = [line.event for line in lines if line.event is not None]
            _lock(
                connection,
                [f"order:{event.order.id}" for event in events]
                + [f"event:{event.event_id}" for event in events],
            )
            facts = _LandingFacts.load(connection, events)

            decisions = []
            accepted_rows = []
            rejected_lines = []
            for line in lines:
                decision = self._decide(line, facts)
                decisions.append(decision)
                _log_decision(line, decision)

                if decision.outcome is Outcome.ACCEPTED:
                    accepted_rows.append(self._order_event_row(line, now))
                elif decision.outcome is not Outcome.DUPLICATE:
                    rejected_lines.append((line, decision))

            if accepted_rows:
                _BulkInsert(connection, tables.order_events, _ORDER_EVENT_COLUMNS).insert(
                    accepted_rows
                )
            if rejected_lines:
                self._insert_rejections(connection, rejected_lines, now)
        return decisions

    def _insert_rejections(
        self,
        connection: sa.Connection,
        rejected_lines: Sequence[tuple[_Line, LandingDecision]],
        now: dt.datetime,
    ) -> None:
        """Stores the stale and quarantined lines, but none a previous import stored already."""
        stored_rejections = _stored_rejections(connection, [line for line, _ in rejected_lines])
        rows = []
        for line, decision in rejected_lines:
            row = _rejected_row(line, decision, now, self.timezone)
            if _rejection_identity(row) not in stored_rejections:
                stored_rejections.add(_rejection_identity(row))
                rows.append(row)
        if rows:
            connection.execute(tables.rejected_events.insert(), rows)

    def _decide(self, line: _Line, facts: _LandingFacts) -> LandingDecision:
        if line.event is None:
            assert line.malformed is not None
            return LandingDecision(Outcome.QUARANTINED, line.malformed.reason)

        event = line.event
        decision = decide_landing(
            event,
            line.content_hash or "",
            landed_hash_of_same_id=facts.hashes.get(event.event_id),
            landed_order=facts.orders.get(event.order.id),
        )
        facts.remember(event, line.content_hash or "", decision.outcome)
        return decision

    def _order_event_row(self, line: _Line, now: dt.datetime) -> tuple[Any, ...]:
        """The `order_events` row of an accepted line, in `_ORDER_EVENT_COLUMNS` order."""
        event = line.event
        assert event is not None
        return (
            event.event_id,
            event.order.id,
            event.order.version,
            str(event.type),
            event.occurred_at,
            event.occurred_at.astimezone(self.timezone).date(),
            line.document,
            line.content_hash,
            line.source,
            line.line_number,
            now,
            None,
        )

    def _retried(self, attempt: Callable[[], T]) -> T:
        """Runs a write that decides on what it reads, again if a concurrent write raced it."""
        for number in range(1, CHUNK_ATTEMPTS + 1):
            try:
                return attempt()
            except sa.exc.IntegrityError:
                if number == CHUNK_ATTEMPTS:
                    raise
                logger.info("a concurrent import landed the same orders; deciding again")
        raise AssertionError("unreachable")

    # Posting

    def post(self, dates: Iterable[dt.date] | None = None) -> PostingReport:
        """Posts every landed event that is not posted yet, or those of the given dates only.

        Orders are posted in order id order, each event of an order in version order: the
        order's landed events are replayed from its first version, and the entries of the
        events not posted yet are inserted. One transaction per chunk of orders; posting
        again adds nothing.

        Each posted event's deliveries (a `ledger_summary` per registry that takes it, see
        `ledger_pipeline.storage.deliveries.Outbox`) are queued in the transaction that
        inserts its entries, so both are committed or neither.

        Args:
            dates: accounting dates (local dates in the ledger's time zone) to post; None
                posts every date.

        Raises:
            PostingError: an order's history cannot be posted. The chunks committed before
                it stay posted; the rest wait for the next run.
        """
        wanted = None if dates is None else frozenset(dates)
        order_ids = self._orders_to_post(wanted)
        rules = self.list_code_rules()

        # Decided by the run, not the chunk: PostgreSQL's chunks are smaller than a run that
        # pays for the workers.
        workers = self.workers if len(order_ids) >= PARALLEL_MIN_ORDERS else 1
        report = PostingReport()
        for chunk in _chunks(order_ids, self.posting_chunk_orders):
            with self._writing() as connection:
                _lock(connection, [f"order:{order_id}" for order_id in chunk])
                self._post_chunk(connection, chunk, wanted, rules, report, workers)
            logger.debug("committed a chunk of %d orders", len(chunk))

        logger.info(
            "posted %d events of %d orders: %d entries, %d deliveries queued",
            report.events,
            len(order_ids),
            report.entries,
            report.deliveries,
        )
        return report

    def unposted_dates(self) -> list[dt.date]:
        """The accounting dates that have landed events not posted yet, in order."""
        query = (
            sa.select(tables.order_events.c.date)
            .where(tables.order_events.c.posted_at.is_(None))
            .distinct()
            .order_by(tables.order_events.c.date)
        )
        with self._engine.connect() as connection:
            return list(connection.scalars(query))

    def unposted_summary(self) -> UnpostedSummary | None:
        """How many landed events wait to be posted, on which dates; None when none waits."""
        events = tables.order_events
        query = sa.select(
            sa.func.count(),
            sa.func.min(events.c.date),
            sa.func.max(events.c.date),
            sa.func.max(events.c.landed_at),
        ).where(events.c.posted_at.is_(None))
        with self._engine.connect() as connection:
            count, first_date, last_date, last_landed_at = connection.execute(query).one()
        if not count:
            return None
        return UnpostedSummary(count, first_date, last_date, last_landed_at)

    def earliest_event_date(self) -> dt.date | None:
        """The earliest accounting date of a landed event; None when nothing has landed."""
        query = sa.select(tables.order_events.c.date).order_by(tables.order_events.c.date).limit(1)
        with self._engine.connect() as connection:
            return connection.scalar(query)

    def _orders_to_post(self, dates: frozenset[dt.date] | None) -> list[str]:
        query = sa.select(tables.order_events.c.order_id).where(
            tables.order_events.c.posted_at.is_(None)
        )
        if dates is not None:
            query = query.where(tables.order_events.c.date.in_(sorted(dates)))
        query = query.distinct().order_by(tables.order_events.c.order_id)
        with self._engine.connect() as connection:
            return list(connection.scalars(query))

    def _post_chunk(
        self,
        connection: sa.Connection,
        order_ids: Sequence[str],
        dates: frozenset[dt.date] | None,
        rules: Sequence[CodeRule],
        report: PostingReport,
        workers: int,
    ) -> None:
        """Replays each order's landed events, in `workers` processes, and inserts the entries
        of those not yet posted, with their deliveries."""
        # Imported here: the deliveries module builds on this one.
        from ledger_pipeline.storage.deliveries import Outbox

        now = _now()
        # Read in the chunk's transaction (not once per run), so that a registry created while
        # a run posts gets the events of the chunks committed after it, and its backlog finds
        # those committed before it.
        outbox = Outbox.open(connection, now)
        landed = _landed_events(connection, order_ids)
        stored = _stored_entries(connection, order_ids)
        histories = [
            _OrderHistory(order_id, landed.get(order_id, []), stored.get(order_id, []))
            for order_id in order_ids
        ]
        work = functools.partial(
            _post_histories,
            dates=dates,
            rules=tuple(rules),
            timezone=self.timezone,
            keep_entries=bool(outbox),
        )
        if workers == 1:
            batches: Iterable[_PostedHistories] = [work(histories)]
        else:
            size = min(PARALLEL_BATCH_ORDERS, -(-len(histories) // (2 * workers)))
            batches = _in_workers(work, _chunks(histories, size), workers)

        # Each batch's entries are inserted while the workers post the next batches.
        insert = _BulkInsert(connection, tables.ledger_entries, _ENTRY_FIELDS)
        posted: list[str] = []
        for batch in batches:
            insert.insert(batch.rows)
            posted.extend(batch.posted)
            report.merge(batch.report)
            for entries in batch.entries:
                outbox.add(entries)

        report.deliveries += outbox.insert(connection)
        for batch_ids in _chunks(posted, IN_LIST_SIZE):
            connection.execute(
                tables.order_events.update()
                .where(_one_of(connection, tables.order_events.c.event_id, batch_ids))
                .values(posted_at=now)
            )

    # Ledger-code rules

    def add_code_rule(
        self, code: str, position: int | None = None, **match: str | None
    ) -> CodeRule:
        """Adds a ledger-code rule at `position` (1 is first), or after the last rule.

        Args:
            code: the ledger code an entry matching the rule gets.
            position: where the rule goes; the rules from there on move down one place.
            match: attributes to match (see `CODE_RULE_FIELDS`); None or absent matches anything.

        Raises:
            ConfigurationError: an empty code, a position below 1 or an unknown account.
        """
        unknown = sorted(set(match) - set(CODE_RULE_FIELDS))
        if unknown:
            raise TypeError(f"ledger-code rules cannot match on {', '.join(unknown)}")
        match = {name: value for name, value in match.items() if value is not None}
        if not code or not code.strip():
            raise ConfigurationError("a ledger code cannot be empty")
        if position is not None and position < 1:
            raise ConfigurationError(f"a rule's position starts at 1, got {position}")
        if "account" in match and match["account"] not in ACCOUNTS:
            raise ConfigurationError(
                f"account {match['account']!r} is not one of {', '.join(ACCOUNTS)}"
            )

        with self._writing() as connection:
            _lock(connection, ["code_rules"])
            count = connection.scalar(
                sa.select(sa.func.count()).select_from(tables.ledger_code_rules)
            )
            place = count + 1 if position is None else min(position, count + 1)
            connection.execute(
                tables.ledger_code_rules.update()
                .where(tables.ledger_code_rules.c.position >= place)
                .values(position=tables.ledger_code_rules.c.position + 1)
            )
            rule_id = connection.execute(
                tables.ledger_code_rules.insert().values(
                    position=place, code=code, created_at=_now(), **match
                )
            ).inserted_primary_key[0]
            row = connection.execute(
                sa.select(tables.ledger_code_rules).where(tables.ledger_code_rules.c.id == rule_id)
            ).one()
        logger.info("added ledger-code rule %d at position %d", rule_id, place)
        return _code_rule(row)

    def list_code_rules(self) -> list[CodeRule]:
        """The ledger-code rules in force, first match first."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(tables.ledger_code_rules).order_by(tables.ledger_code_rules.c.position)
            ).all()
        return [_code_rule(row) for row in rows]

    def remove_code_rule(self, rule_id: int) -> CodeRule:
        """Removes a ledger-code rule; the rules after it move up one place.

        Entries already posted keep their codes. Raises `LedgerError` if there is no such rule.
        """
        with self._writing() as connection:
            _lock(connection, ["code_rules"])
            row = connection.execute(
                sa.select(tables.ledger_code_rules).where(tables.ledger_code_rules.c.id == rule_id)
            ).one_or_none()
            if row is None:
                raise LedgerError(f"there is no ledger-code rule with id {rule_id}")
            connection.execute(
                tables.ledger_code_rules.delete().where(tables.ledger_code_rules.c.id == rule_id)
            )
            connection.execute(
                tables.ledger_code_rules.update()
                .where(tables.ledger_code_rules.c.position > row.position)
                .values(position=tables.ledger_code_rules.c.position - 1)
            )
        logger.info("removed ledger-code rule %d", rule_id)
        return _code_rule(row)

    # Reading

    def entries(
        self,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        *,
        validate: bool = True,
    ) -> pd.DataFrame:
        """The ledger entries of accounting dates from `date_from` to `date_to` (inclusive),
        one column per `LedgerEntry` field, validated by `LedgerEntryFrame`.

        With `validate=False` the frame is returned as read, for a caller that reports schema
        failures itself (`ledger_pipeline.schemas.entry_schema_failures`) instead of raising.
        """
        query = sa.select(*(tables.ledger_entries.c[name] for name in _ENTRY_FIELDS))
        query = _between(query, tables.ledger_entries.c.date, date_from, date_to).order_by(
            tables.ledger_entries.c.date,
            tables.ledger_entries.c.occurred_at,
            tables.ledger_entries.c.order_id,
            tables.ledger_entries.c.order_version,
            tables.ledger_entries.c.entry_id,
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=list(_ENTRY_FIELDS))
        return LedgerEntryFrame.validate(frame) if validate else frame

    def order_events(
        self, date_from: dt.date | None = None, date_to: dt.date | None = None
    ) -> pd.DataFrame:
        """The landed order events of accounting dates from `date_from` to `date_to`
        (inclusive), one row per event, validated by `OrderEventFrame`."""
        columns = [name for name in OrderEventFrame.to_schema().columns]
        query = sa.select(*(tables.order_events.c[name] for name in columns))
        query = _between(query, tables.order_events.c.date, date_from, date_to).order_by(
            tables.order_events.c.order_id, tables.order_events.c.order_version
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return OrderEventFrame.validate(frame)

    def rejected_counts(
        self, date_from: dt.date | None = None, date_to: dt.date | None = None
    ) -> dict[str, int]:
        """The number of stale and quarantined lines per outcome, of dates in the range."""
        rejected = tables.rejected_events
        query = sa.select(rejected.c.outcome, sa.func.count()).group_by(rejected.c.outcome)
        query = _between(query, rejected.c.date, date_from, date_to)
        with self._engine.connect() as connection:
            return {outcome: count for outcome, count in connection.execute(query)}

    def rejected_events(
        self, date_from: dt.date | None = None, date_to: dt.date | None = None
    ) -> list[RejectedEvent]:
        """The stale and quarantined lines of dates in the range, oldest first."""
        query = _between(
            sa.select(tables.rejected_events),
            tables.rejected_events.c.date,
            date_from,
            date_to,
        ).order_by(tables.rejected_events.c.id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            RejectedEvent(
                id=row.id,
                outcome=Outcome(row.outcome),
                reason=row.reason,
                source=row.source,
                line_number=row.line_number,
                event_id=row.event_id,
                order_id=row.order_id,
                order_version=row.order_version,
                document=row.document,
                date=row.date,
                rejected_at=row.rejected_at,
            )
            for row in rows
        ]

    # SQL models

    def query_model(self, name: str, **parameters: object) -> pd.DataFrame:
        """The rows of a `dbt_like_sql` model, run with bound parameters."""
        statement = sql_models.model_select(name, parameters).columns(date=sa.Date)
        with self._engine.connect() as connection:
            result = connection.execute(statement)
            return pd.DataFrame.from_records(result.all(), columns=list(result.keys()))

    def materialize_model(self, name: str, *, date_from: dt.date, date_to: dt.date) -> int:
        """Replaces the model's table rows of the dates `date_from`..`date_to` by the model's
        current rows, in one transaction; returns the number of rows written."""
        table = sql_models.MATERIALIZED[name]
        names = [column.name for column in table.columns]
        select = sql_models.model_select(
            name, {"date_from": date_from, "date_to": date_to}
        ).columns(*(sa.column(column_name) for column_name in names))
        with self._writing() as connection:
            connection.execute(table.delete().where(table.c.date.between(date_from, date_to)))
            result = connection.execute(table.insert().from_select(names, select))
        return result.rowcount


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic configuration built in code, running the ledger's migrations on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


# Engine and locks


def _create_engine(database_url: str) -> sa.Engine:
    try:
        url = sa.make_url(database_url)
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url)
        _make_sqlite_folder(url)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    except (sa.exc.ArgumentError, ImportError, OSError) as error:
        logger.debug("cannot create the database engine", exc_info=True)
        raise ConfigurationError(
            f"cannot use the ledger database named by {DATABASE_URL_VARIABLE}: {error}"
        ) from error

    sa.event.listen(engine, "connect", _configure_sqlite_connection)
    sa.event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _make_sqlite_folder(url: sa.URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL, a busy timeout and foreign keys; BEGIN is left to `_begin_sqlite_transaction`."""
    # SQLAlchemy's documented recipe: stop pysqlite from emitting BEGIN on its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    cursor.close()


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    """`BEGIN IMMEDIATE` for a write transaction, so that writers never interleave."""
    writes = connection.get_execution_options().get(_WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _lock(connection: sa.Connection, names: Iterable[str]) -> None:
    """Takes PostgreSQL transaction-scoped advisory locks, in one global order.

    SQLite needs none: a write transaction holds the whole database's write lock.
    """
    # Limitation: other databases (MySQL, ...) get no lock. Two imports there can read facts
    # from different moments; the unique constraints and a retried chunk stop a second
    # version N from landing, but an event may be counted stale where it was a duplicate.
    if connection.dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(name) for name in names})
    if keys:
        # One statement for all: `unnest` yields the sorted keys in array order.
        connection.execute(
            sa.text("select pg_advisory_xact_lock(key) from unnest(cast(:keys as bigint[])) key"),
            {"keys": keys},
        )


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key; two names may share one, which only serialises more."""
    digest = hashlib.sha256(f"ledger_pipeline:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _fixed_timezone(connection: sa.Connection, timezone: ZoneInfo | None) -> ZoneInfo:
    """Stores the time zone of a new ledger; checks it against an existing ledger's."""
    row = connection.execute(sa.select(tables.ledger_settings)).one_or_none()
    if row is None:
        timezone = timezone or ZoneInfo("UTC")
        connection.execute(
            tables.ledger_settings.insert().values(id=1, timezone=timezone.key, created_at=_now())
        )
        logger.info("created a ledger in time zone %s", timezone.key)
        return timezone

    if timezone is not None and timezone.key != row.timezone:
        raise ConfigurationError(
            f"{TIMEZONE_VARIABLE} is {timezone.key!r} but this ledger was created in "
            f"{row.timezone!r}, and a ledger's time zone cannot change: set "
            f"{TIMEZONE_VARIABLE}={row.timezone} to use this ledger, or point "
            f"{DATABASE_URL_VARIABLE} at a new database to start a ledger in {timezone.key}"
        )
    return ZoneInfo(row.timezone)


# Landing helpers


class _Unreadable(NamedTuple):
    """What `expand` reported of a record it could read no line from."""

    report: Any


def _parsed_batch(records: Sequence[Any], expand: Expand | None) -> list[_Line | _Unreadable]:
    """The lines of the records parsed, and what `expand` reports of those it cannot read, in
    order; pure, it runs in worker processes."""
    if expand is None:
        return [_parsed(source, number, raw) for source, number, raw in records]
    parsed: list[_Line | _Unreadable] = []
    for record in records:
        lines, unreadable = expand(record)
        if unreadable is not None:
            parsed.append(_Unreadable(unreadable))
        parsed.extend(_parsed(source, number, raw) for source, number, raw in lines)
    return parsed


def _lines_of(parsed: Iterable[_Line | _Unreadable], unreadable: list[Any]) -> Iterator[_Line]:
    for item in parsed:
        if isinstance(item, _Unreadable):
            unreadable.append(item.report)
        else:
            yield item


def _parsed(source: str, line_number: int, raw: str | bytes | Mapping[str, Any]) -> _Line:
    try:
        event = parse_event(raw)
    except MalformedEvent as error:
        return _Line(source, line_number, malformed=error)

    # The hash is of the canonical JSON, the stored document the same JSON with characters
    # outside ASCII escaped: for an ASCII event the two are one text.
    canonical = canonical_json(event)
    document = canonical if canonical.isascii() else _document_text(event)
    return _Line(
        source,
        line_number,
        event=EventHead.of(event),
        content_hash=canonical_json_hash(canonical),
        document=document,
    )


class _LandingFacts:
    """What had landed for the events of a chunk, kept up to date as the chunk is decided."""

    def __init__(self, hashes: dict[str, str], orders: dict[str, LandedOrder]):
        self.hashes = hashes
        self.orders = orders

    @classmethod
    def load(cls, connection: sa.Connection, events: Sequence[EventHead]) -> _LandingFacts:
        event_ids = sorted({event.event_id for event in events})
        order_ids = sorted({event.order.id for event in events})
        hashes: dict[str, str] = {}
        orders: dict[str, LandedOrder] = {}
        if not events:
            return cls(hashes, orders)

        # Only landed events count: a stale or quarantined event imported again is decided
        # again, so that one quarantined because its order had not landed yet (a cancellation
        # that came before its confirmation) lands once the order has. Its decision is the same
        # while nothing else changed, and its rejection is then not stored twice.
        for batch in _chunks(event_ids, IN_LIST_SIZE):
            landed = connection.execute(
                sa.select(tables.order_events.c.event_id, tables.order_events.c.content_hash).where(
                    _one_of(connection, tables.order_events.c.event_id, batch)
                )
            )
            hashes.update((row.event_id, row.content_hash) for row in landed)

        for batch in _chunks(order_ids, IN_LIST_SIZE):
            rows = connection.execute(
                sa.select(
                    tables.order_events.c.order_id,
                    tables.order_events.c.order_version,
                    tables.order_events.c.occurred_at,
                    tables.order_events.c.type,
                )
                .where(_one_of(connection, tables.order_events.c.order_id, batch))
                .order_by(tables.order_events.c.order_id, tables.order_events.c.order_version)
            )
            for row in rows:
                before = orders.get(row.order_id)
                cancelled = row.type == EventType.CANCELLED or (
                    before is not None and before.cancelled
                )
                orders[row.order_id] = LandedOrder(row.order_version, row.occurred_at, cancelled)
        return cls(hashes, orders)

    def remember(self, event: EventHead, event_hash: str, outcome: Outcome) -> None:
        if outcome is not Outcome.ACCEPTED:
            return
        self.hashes.setdefault(event.event_id, event_hash)
        before = self.orders.get(event.order.id)
        cancelled = event.type is EventType.CANCELLED or (before is not None and before.cancelled)
        self.orders[event.order.id] = LandedOrder(event.order.version, event.occurred_at, cancelled)


def _stored_rejections(connection: sa.Connection, lines: Sequence[_Line]) -> set[tuple]:
    """The rejections already stored for these lines, so that importing again adds none."""
    rejected = tables.rejected_events
    places = sorted({(line.source, line.line_number) for line in lines})
    stored: set[tuple] = set()
    # Two variables a place.
    for batch in _chunks(places, IN_LIST_SIZE // 2):
        rows = connection.execute(
            sa.select(
                rejected.c.source,
                rejected.c.line_number,
                rejected.c.outcome,
                rejected.c.reason,
                rejected.c.event_id,
                rejected.c.content_hash,
            ).where(sa.tuple_(rejected.c.source, rejected.c.line_number).in_(batch))
        )
        stored.update(tuple(row) for row in rows)
    return stored


def _rejection_identity(row: Mapping[str, Any]) -> tuple:
    return (
        row["source"],
        row["line_number"],
        row["outcome"],
        row["reason"],
        row["event_id"],
        row["content_hash"],
    )


def _rejected_row(
    line: _Line, decision: LandingDecision, now: dt.datetime, timezone: ZoneInfo
) -> dict[str, Any]:
    event = line.event
    moment = event.occurred_at if event else now
    return {
        "outcome": str(decision.outcome),
        "reason": decision.reason or "",
        "source": line.source,
        "line_number": line.line_number,
        "event_id": line.event_id,
        "order_id": event.order.id if event else None,
        "order_version": event.order.version if event else None,
        "document": line.document,
        "content_hash": line.content_hash,
        "date": moment.astimezone(timezone).date(),
        "rejected_at": now,
    }


def _document_text(event: OrderEvent) -> str:
    return json.dumps(event_document(event), sort_keys=True, separators=(",", ":"))


def _log_decision(line: _Line, decision: LandingDecision) -> None:
    event = line.event
    if event is None:
        logger.debug(
            "%s line %d: quarantined (event %s): %s",
            line.source,
            line.line_number,
            line.event_id,
            decision.reason,
        )
        return
    logger.debug(
        "%s line %d: event %s of order %s version %d %s%s",
        line.source,
        line.line_number,
        event.event_id,
        event.order.id,
        event.order.version,
        decision.outcome,
        f": {decision.reason}" if decision.reason else "",
    )


# Posting helpers


class _LandedEvent(NamedTuple):
    event_id: str
    document: str
    date: dt.date
    posted: bool


class _StoredEntry(NamedTuple):
    entry_id: str
    key: str
    ledger_code: str | None


class _OrderHistory(NamedTuple):
    """What posting an order needs from the database: its landed events in version order and
    the entries stored for it."""

    order_id: str
    events: list[_LandedEvent]
    stored: list[_StoredEntry]


@dataclass
class _PostedHistories:
    """What posting some order histories gives: the values of the entries to insert, the
    events posted, each posted event's entries (when asked for), and the counts."""

    rows: list[tuple[Any, ...]]
    posted: list[str]
    entries: list[list[LedgerEntry]]
    report: PostingReport


def _post_histories(
    histories: Sequence[_OrderHistory],
    *,
    dates: frozenset[dt.date] | None,
    rules: Sequence[CodeRule],
    timezone: ZoneInfo,
    keep_entries: bool,
) -> _PostedHistories:
    """Replays each order's landed events; the entries of the events not posted yet (of the
    given dates) are kept, less those stored already. Pure: it runs in worker processes."""
    result = _PostedHistories([], [], [], PostingReport())
    for history in histories:
        stored_ids = {entry.entry_id for entry in history.stored}
        code_for = _code_lookup(history.stored, rules)

        state: OrderLedger | None = None
        for landed in history.events:
            entries, state = post_event(
                state, parse_stored_event(landed.document), timezone=timezone, code_for=code_for
            )
            if landed.posted or (dates is not None and landed.date not in dates):
                continue

            result.rows.extend(
                _entry_values(entry) for entry in entries if entry.entry_id not in stored_ids
            )
            result.posted.append(landed.event_id)
            result.report.add(entries)
            if keep_entries and entries:
                result.entries.append(entries)
            logger.debug("posted event %s: %d entries", landed.event_id, len(entries))
    return result


def _landed_events(
    connection: sa.Connection, order_ids: Sequence[str]
) -> dict[str, list[_LandedEvent]]:
    """The landed events of each order, in version order."""
    events = tables.order_events
    landed: dict[str, list[_LandedEvent]] = defaultdict(list)
    for batch in _chunks(order_ids, IN_LIST_SIZE):
        rows = connection.execute(
            sa.select(
                events.c.order_id,
                events.c.event_id,
                events.c.document,
                events.c.date,
                events.c.posted_at,
            )
            .where(_one_of(connection, events.c.order_id, batch))
            .order_by(events.c.order_id, events.c.order_version)
        )
        for order_id, event_id, document, date, posted_at in rows:
            landed[order_id].append(_LandedEvent(event_id, document, date, posted_at is not None))
    return landed


def _stored_entries(
    connection: sa.Connection, order_ids: Sequence[str]
) -> dict[str, list[_StoredEntry]]:
    """The id, key and ledger code of each order's entries, oldest version first."""
    entries = tables.ledger_entries
    stored: dict[str, list[_StoredEntry]] = defaultdict(list)
    for batch in _chunks(order_ids, IN_LIST_SIZE):
        rows = connection.execute(
            sa.select(entries.c.order_id, entries.c.entry_id, entries.c.key, entries.c.ledger_code)
            .where(_one_of(connection, entries.c.order_id, batch))
            .order_by(entries.c.order_id, entries.c.order_version, entries.c.entry_id)
        )
        for order_id, entry_id, key, ledger_code in rows:
            stored[order_id].append(_StoredEntry(entry_id, key, ledger_code))
    return stored


def _code_lookup(
    stored: Sequence[_StoredEntry], rules: Sequence[CodeRule]
) -> Callable[[str, Mapping[str, object]], str | None]:
    """A key keeps the code stored on the order's earliest entry with that key; a new key gets
    the code of the first rule that matches, or None."""
    stored_codes: dict[str, str | None] = {}
    for row in stored:
        stored_codes.setdefault(row.key, row.ledger_code)

    def code_for(key: str, attributes: Mapping[str, object]) -> str | None:
        if key in stored_codes:
            return stored_codes[key]
        return next((rule.code for rule in rules if rule.matches(attributes)), None)

    return code_for


def _code_rule(row: sa.Row) -> CodeRule:
    match = {
        name: getattr(row, name) for name in CODE_RULE_FIELDS if getattr(row, name) is not None
    }
    return CodeRule(
        id=row.id, position=row.position, code=row.code, match=match, created_at=row.created_at
    )


# Bulk inserts


class _BulkInsert:
    """Inserts many rows into one table with one `executemany` of the database driver, or one
    `COPY` with psycopg on PostgreSQL.

    `connection.execute(table.insert(), rows)` runs every value of every row through
    SQLAlchemy's parameter processing in Python, which for the ledger's wide rows costs more than
    the database's own work. Here the statement is compiled once; each column's bind processor
    (UTC times, SQLite dates, tags as JSON) runs once per distinct value; and the rows go to the
    driver as they are, in the paramstyle it takes. On PostgreSQL, where executemany runs one
    INSERT per row, psycopg's `COPY ... FROM STDIN` stores the rows about three times faster.
    """

    def __init__(self, connection: sa.Connection, table: sa.Table, columns: Sequence[str]):
        self._connection = connection
        dialect = connection.dialect
        compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
        self._statement = compiled.string
        # The names of the statement's parameters, where a column's name needs escaping.
        names = [compiled.escaped_bind_names.get(name, name) for name in columns]
        position = {name: index for index, name in enumerate(names)}
        self._positions = [position[name] for name in compiled.positiontup or ()]
        self._names = None if compiled.positional else names
        self._copy = _copy_statement(connection, table, columns)
        self._processors = []
        for index, name in enumerate(columns):
            processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors.append((index, processor))

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        """Inserts rows given as values in the order of the columns."""
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        for index, processor in self._processors:
            columns[index] = _processed(processor, columns[index])
        if self._copy is not None:
            self._copy_rows(zip(*columns, strict=True))
            return

        parameters: list[Any]
        if self._names is None:
            parameters = list(zip(*(columns[index] for index in self._positions), strict=True))
        else:
            parameters = [
                dict(zip(self._names, values, strict=True)) for values in zip(*columns, strict=True)
            ]
        self._connection.exec_driver_sql(self._statement, parameters)

    def _copy_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        assert self._copy is not None
        dbapi = self._connection.dialect.loaded_dbapi
        cursor = self._connection.connection.driver_connection.cursor()
        try:
            with cursor.copy(self._copy) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi.Error as error:
            # As SQLAlchemy raises it for a statement it runs: an IntegrityError stays one.
            raise sa.exc.DBAPIError.instance(self._copy, None, error, dbapi.Error) from error
        finally:
            cursor.close()


def _copy_statement(
    connection: sa.Connection, table: sa.Table, columns: Sequence[str]
) -> str | None:
    """`COPY table (columns) FROM STDIN` where the driver is psycopg 3, else None."""
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        return None
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    return f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"


def _processed(processor: Callable[[Any], Any], values: Sequence[Any]) -> Sequence[Any]:
    """The processor's result for each value, computed once per distinct value."""
    try:
        results = {value: processor(value) for value in set(values)}
    except TypeError:  # an unhashable value: tags given as a list
        return [processor(value) for value in values]
    return list(map(results.__getitem__, values))


# Worker processes

_POOL: tuple[int, ProcessPoolExecutor] | None = None


def _in_workers(work: Callable[[Any], T], batches: Iterable[Any], workers: int) -> Iterator[T]:
    """`map(work, batches)` in worker processes, in order, with a few batches in flight per
    worker so that the batches are read no further ahead than that; in this process when no
    worker process can be started safely."""
    pool = _pool(workers)
    if pool is None:
        yield from map(work, batches)
        return

    pending: deque = deque()
    try:
        for batch in batches:
            pending.append(pool.submit(work, batch))
            if len(pending) >= workers * PARALLEL_BATCHES_AHEAD:
                yield pending.popleft().result()
    except Exception:
        # The input failed: the batches read before it are given out first, as they would be
        # without workers (an import commits the chunks they complete), then the error.
        while pending:
            yield pending.popleft().result()
        raise
    while pending:
        yield pending.popleft().result()


def start_workers(workers: int | None = None) -> None:
    """Starts the worker processes of large imports and posting runs now (a worker per CPU
    unless `workers` says otherwise), while this process runs no other thread.

    A command that starts a thread of its own (a progress display, a server) calls this first:
    once started, the workers serve every later run of the process, threads or not.
    """
    count = max(1, os.cpu_count() or 1) if workers is None else max(1, workers)
    if count > 1:
        _pool(count)


def _pool(workers: int) -> ProcessPoolExecutor | None:
    """The process's worker pool, started on first use and kept for later runs; None where
    workers cannot be forked safely.

    Workers are forked, so they start at once with everything imported and need no
    `if __name__ == "__main__"` guard in the caller's script (a fork server or spawned workers
    would import the caller's main module again).
    """
    global _POOL
    if _POOL is not None and _POOL[0] == workers and not _POOL[1]._broken:
        return _POOL[1]

    # Limitation: a process running other threads (a Dagster run, a web server) does the work
    # itself: a thread may hold a lock at the moment of a fork, which the worker would then
    # wait for forever.
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        logger.debug("no worker processes: this process runs other threads")
        return None
    if _POOL is not None:
        _POOL[1].shutdown(wait=False, cancel_futures=True)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    # Objects that exist at the fork are left out of the workers' garbage collections, which
    # would otherwise touch, and so copy, every page of this process.
    gc.freeze()
    try:
        pool.submit(int).result()  # forks every worker now
    finally:
        gc.unfreeze()
    _POOL = (workers, pool)
    logger.debug("started %d worker processes", workers)
    return pool


# Small helpers


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _one_of(
    connection: sa.Connection, column: sa.ColumnElement, values: Sequence[str]
) -> sa.ColumnElement[bool]:
    """`column IN (values)` for text values. On SQLite the values are bound as one JSON array,
    which `json_each` reads: SQLAlchemy names and binds the values of an `IN` list one by one,
    which for the thousands of ids of a chunk costs more than the query itself."""
    if connection.dialect.name != "sqlite":
        return column.in_(values)
    array = sa.bindparam(None, json.dumps(list(values)), type_=sa.String)
    return column.in_(sa.select(sa.func.json_each(array).table_valued("value").c.value))


def _between(
    query: sa.Select, column: sa.ColumnElement, date_from: dt.date | None, date_to: dt.date | None
) -> sa.Select:
    if date_from is not None:
        query = query.where(column >= date_from)
    if date_to is not None:
        query = query.where(column <= date_to)
    return query


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
