"""A delivery pass: claim due deliveries, POST them concurrently, record every attempt.

`deliver_pass` is what `ledger-pipeline deliver` and the Dagster `deliver_job` run. It claims
a batch under a lease (`DeliveryStore.claim`), sends it on a pool of threads, each with its own
`Sender` (one keep-alive HTTP session per thread), signs every attempt with a fresh timestamp,
records the batch in one transaction (`DeliveryStore.record`), and goes on until nothing is due
or its time budget is spent.

A worker that dies mid-batch leaves its claims leased; they are claimed again when the lease
expires, and sent with the same bytes, idempotency key and `webhook-id`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random as random_module
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ledger_pipeline.delivery.sending import Sender
from ledger_pipeline.delivery.signing import webhook_headers
from ledger_pipeline.storage.deliveries import (
    ClaimedDelivery,
    DeliveryStore,
    Outcome,
    SentAttempt,
)
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100
DEFAULT_WORKERS = 8
DEFAULT_TIMEOUT_SECONDS = 10.0
MIN_LEASE = dt.timedelta(minutes=1)
SLOWEST_ENDPOINTS = 5


@dataclass
class RegistryCounts:
    """One registry's attempts in a pass: sent, and what became of them; `last_failure` is the
    error of the pass's last attempt that failed (retried or dead), for the person on call."""

    sent: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    gone: int = 0
    lost: int = 0
    last_failure: str | None = None

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        setattr(self, str(outcome), getattr(self, str(outcome)) + 1)


@dataclass
class EndpointLatency:
    """The latencies of one endpoint (a host, with its port when the URL gives one)."""

    host: str
    attempts: int = 0
    total_ms: int = 0
    max_ms: int = 0

    @property
    def mean_ms(self) -> int:
        return round(self.total_ms / self.attempts) if self.attempts else 0


@dataclass
class DeliveryPassReport:
    """What one delivery pass did: counts per registry, and latencies per endpoint."""

    worker: str
    batches: int = 0
    seconds: float = 0.0
    registries: dict[str, RegistryCounts] = field(default_factory=dict)
    endpoints: dict[str, EndpointLatency] = field(default_factory=dict)
    stopped_by_budget: bool = False

    @property
    def totals(self) -> RegistryCounts:
        total = RegistryCounts()
        for counts in self.registries.values():
            for name in ("sent", "succeeded", "retried", "dead", "gone", "lost"):
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return total

    @property
    def sent(self) -> int:
        return self.totals.sent

    def slowest_endpoints(self, count: int = SLOWEST_ENDPOINTS) -> list[EndpointLatency]:
        """The endpoints of the highest mean latency first."""
        ranked = sorted(self.endpoints.values(), key=lambda e: (-e.mean_ms, -e.max_ms, e.host))
        return ranked[:count]

    def add(self, attempt: SentAttempt, outcome: Outcome) -> None:
        delivery = attempt.delivery
        counts = self.registries.setdefault(delivery.registry, RegistryCounts())
        counts.add(outcome)
        if outcome in (Outcome.RETRIED, Outcome.DEAD) and attempt.result.error:
            counts.last_failure = attempt.result.error
        host = endpoint(delivery.url)
        latency = self.endpoints.setdefault(host, EndpointLatency(host))
        latency.attempts += 1
        latency.total_ms += attempt.result.latency_ms
        latency.max_ms = max(latency.max_ms, attempt.result.latency_ms)


def deliver_pass(
    store: LedgerStore,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
    lease: dt.timedelta | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    time_budget: dt.timedelta | None = None,
    allow_private: bool | None = None,
    worker: str | None = None,
    random: random_module.Random | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    sender_factory: Callable[[], Sender] | None = None,
) -> DeliveryPassReport:
    """Delivers what is due, batch after batch, until nothing is due or `time_budget` is spent.

    Args:
        store: the ledger.
        batch_size: deliveries claimed (and recorded) at a time.
        workers: threads sending at once, each with its own HTTP session.
        lease: how long a claim holds; an unrecorded claim is taken again after it. Default:
            `batch_lease(batch_size, workers, timeout)`.
        timeout: seconds allowed to connect and to read the response, per attempt.
        time_budget: no new batch is claimed after this long; None: until nothing is due.
        allow_private: deliver to loopback and private addresses; None reads
            `LEDGER_ALLOW_PRIVATE_URLS`.
        worker: the name the claims and attempts carry; default host, process and a random
            suffix.
        random: the retry schedule's jitter.
        clock: the current moment (tests move it); default the system's clock in UTC.
        sender_factory: builds each thread's Sender; default `Sender(timeout, allow_private)`.
    """
    worker = worker or worker_name()
    lease = lease or batch_lease(batch_size, workers, timeout)
    clock = clock or _now
    random = random or random_module.Random()  # noqa: S311 (jitter, not a secret)
    deliveries = DeliveryStore(store)
    report = DeliveryPassReport(worker)
    started = time.monotonic()
    senders = _ThreadSenders(sender_factory or (lambda: Sender(timeout, allow_private)))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver")
    try:
        while not _budget_spent(started, time_budget):
            batch = deliveries.claim(worker, batch_size, lease, clock())
            if not batch:
                break

            sent = list(pool.map(lambda delivery: _send(senders, delivery, clock), batch))
            outcomes = deliveries.record(worker, sent, clock(), random)
            for attempt, outcome in zip(sent, outcomes, strict=True):
                report.add(attempt, outcome)
            report.batches += 1
            logger.debug("worker %s delivered a batch of %d", worker, len(batch))
        else:
            report.stopped_by_budget = True
    finally:
        pool.shutdown(wait=True)
        senders.close()

    report.seconds = time.monotonic() - started
    totals = report.totals
    logger.info(
        "delivery pass %s: %d sent in %d batches, %d succeeded, %d retried, %d dead in %.1f s",
        worker,
        totals.sent,
        report.batches,
        totals.succeeded,
        totals.retried,
        totals.dead,
        report.seconds,
    )
    return report


def batch_lease(batch_size: int, workers: int, timeout: float) -> dt.timedelta:
    """A lease longer than a batch can take: each thread sends `batch_size / workers`
    attempts, each of which may spend `timeout` connecting and `timeout` reading; a third more
    for the claim and the record. At least `MIN_LEASE`."""
    attempts_per_thread = -(-batch_size // workers)
    return max(MIN_LEASE, dt.timedelta(seconds=3 * timeout * attempts_per_thread))


def _budget_spent(started: float, budget: dt.timedelta | None) -> bool:
    return budget is not None and time.monotonic() - started >= budget.total_seconds()


def worker_name() -> str:
    """A name unique to this pass: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def endpoint(url: str) -> str:
    """The host of a URL, with its port when the URL names one: never its path, query or
    user info, which may hold a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "?"
    return host if port is None else f"{host}:{port}"


def _send(
    senders: _ThreadSenders, delivery: ClaimedDelivery, clock: Callable[[], dt.datetime]
) -> SentAttempt:
    """One attempt: the stored body, signed now."""
    started_at = clock()
    headers = webhook_headers(
        delivery.webhook_id, delivery.body, delivery.secrets, int(started_at.timestamp())
    )
    result = senders.get().send(delivery.url, delivery.body, headers)
    return SentAttempt(delivery, started_at, result)


class _ThreadSenders:
    """One Sender per thread, built on the thread's first attempt and closed at the end."""

    def __init__(self, factory: Callable[[], Sender]):
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Sender] = []

    def get(self) -> Sender:
        sender = getattr(self._local, "sender", None)
        if sender is None:
            sender = self._local.sender = self._factory()
            with self._lock:
                self._all.append(sender)
        return sender

    def close(self) -> None:
        with self._lock:
            for sender in self._all:
                sender.close()
            self._all.clear()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
