"""Benchmark: webhook deliveries per second with the full bookkeeping, beside a plain loop.

    .venv/bin/python bench/delivery.py [--deliveries 5000] [--database URL]
        [--workers 8] [--batch-size 100]

Lands and posts N one-event orders into a fresh ledger (SQLite in a temporary folder, or a new
schema, dropped after, of the PostgreSQL database `--database` names) with one registry, so
posting queues N deliveries for real. A local receiver runs in a separate process (so that the
sender's GIL is not the receiver's): a threaded HTTP/1.1 keep-alive server answering 200 `{}`
to every POST. Then, in the same run:

1. the baseline: a plain `requests.Session().post` loop sending the same N bodies, one after
   the other, with no signing and no bookkeeping;
2. `deliver_pass`: claim under a lease, sign each attempt, POST on a thread pool, record every
   attempt and every delivery's new state, batch after batch.

Prints both rates, their ratio, and checks that every delivery succeeded and the receiver got
exactly N requests from the pass. Targets: >= 500 deliveries/s and >= 0.5 of the plain loop.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests
import sqlalchemy as sa

from ledger_pipeline.core.registry import Registry
from ledger_pipeline.delivery.worker import deliver_pass
from ledger_pipeline.storage.deliveries import DeliveryStore
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.store import LedgerStore

TARGET_RATE = 500.0
TARGET_RATIO = 0.5


# The receiver (run as `bench/delivery.py --serve PORT` in its own process)


class _Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it a response's headers and body are two small writes, and Nagle's algorithm
    # holds the second until the client's delayed ACK: 40 ms a request.
    disable_nagle_algorithm = True
    received = 0

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        if self.path == "/count":
            body = str(_Receiver.received).encode()
        else:
            _Receiver.received += 1
            body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(port: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    server.daemon_threads = True
    server.request_queue_size = 128
    print("ready", flush=True)
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def received(session: requests.Session, base_url: str) -> int:
    return int(session.post(f"{base_url}/count", data=b"").text)


# The benchmark


def order_event(number: int) -> str:
    return json.dumps(
        {
            "event_id": f"evt-{number}",
            "type": "confirmed",
            "occurred_at": "2024-11-15T09:24:00+01:00",
            "order": {
                "id": f"order-{number}",
                "version": 1,
                "reference": f"REF-{number}",
                "destination": "Krno",
                "currency": "EUR",
                "currency_precision": 2,
                "items": [
                    {
                        "id": "li-1",
                        "product": "Museum",
                        "option": "Day ticket",
                        "unit": "Adult",
                        "quantity": 2,
                        "travel_date": "2024-11-20",
                        "status": "confirmed",
                        "retail": 2200 + number % 500,
                        "tax": 200,
                    }
                ],
            },
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument(
        "--database", help="a PostgreSQL database URL to run in (default: SQLite, temporary)"
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve)
        return

    count = arguments.deliveries
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        with (
            tempfile.TemporaryDirectory() as folder,
            fresh_ledger(
                arguments.database or f"sqlite:///{Path(folder) / 'ledger.db'}"
            ) as database,
        ):
            run(database, f"http://127.0.0.1:{port}", count, arguments)
    finally:
        receiver.terminate()
        receiver.wait()


@contextlib.contextmanager
def fresh_ledger(url: str) -> Iterator[str]:
    """The URL as it is for SQLite; on PostgreSQL the URL of a new schema, dropped after."""
    if not url.startswith("postgresql"):
        yield url
        return
    engine = sa.create_engine(url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'create schema "{schema}"'))
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


def run(database: str, base_url: str, count: int, arguments: argparse.Namespace) -> None:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with LedgerStore(database) as store:
        RegistryStore(store).create(Registry(name, url=f"{base_url}/hooks"))
        started = time.monotonic()
        store.land(("bench.jsonl", n, order_event(n)) for n in range(1, count + 1))
        report = store.post()
        queue_seconds = time.monotonic() - started
        deliveries = DeliveryStore(store)
        bodies = [deliveries.body(d.id) for d in deliveries.list(registry=name, limit=None)]
    print(
        f"landed and posted {report.events} events, queued {report.deliveries} deliveries "
        f"in {queue_seconds:.1f} s ({database.split(':')[0]})"
    )
    if len(bodies) != count:
        raise SystemExit(f"expected {count} queued deliveries, found {len(bodies)}")

    session = requests.Session()
    headers = {"content-type": "application/json"}
    before = received(session, base_url)
    started = time.monotonic()
    for body in bodies:
        session.post(f"{base_url}/hooks", data=body, headers=headers).raise_for_status()
    plain_seconds = time.monotonic() - started
    plain_rate = count / plain_seconds
    print(f"plain requests loop: {count} POSTs in {plain_seconds:.2f} s = {plain_rate:.0f}/s")

    os.environ["LEDGER_ALLOW_PRIVATE_URLS"] = "1"
    before = received(session, base_url)
    with LedgerStore(database) as store:
        started = time.monotonic()
        result = deliver_pass(
            store, batch_size=arguments.batch_size, workers=arguments.workers, allow_private=True
        )
        pass_seconds = time.monotonic() - started
        counts = DeliveryStore(store).counts()[name]
    arrived = received(session, base_url) - before
    rate = result.totals.succeeded / pass_seconds
    print(
        f"deliver_pass ({arguments.workers} threads, batches of {arguments.batch_size}): "
        f"{result.totals.succeeded} delivered in {pass_seconds:.2f} s = {rate:.0f}/s "
        f"({result.batches} batches)"
    )
    ratio = rate / plain_rate
    print(f"ratio to the plain loop: {ratio:.2f}")

    if counts != {"succeeded": count} or arrived != count:
        raise SystemExit(f"expected {count} succeeded and received, got {counts}, {arrived}")
    verdict = "met" if rate >= TARGET_RATE and ratio >= TARGET_RATIO else "NOT met"
    print(f"target (>= {TARGET_RATE:.0f}/s and >= {TARGET_RATIO} of the plain loop): {verdict}")


if __name__ == "__main__":
    main()
