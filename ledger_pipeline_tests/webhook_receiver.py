"""A real HTTP server on 127.0.0.1 that receives webhooks in tests.

It runs in a thread of the test process, so a test can deliver to it from the same process
or from a subprocess (the `ledger-pipeline` command):

    with WebhookReceiver() as receiver:
        receiver.reply("/hooks", Reply(500), Reply(429, headers={"Retry-After": "7"}))
        ...  # deliver to receiver.url("/hooks"): 500 first, then 429, then 200 (the default)
        (request,) = receiver.wait_for(1)
        request.headers["webhook-id"], request.body

Each path has a queue of replies, used in order; when a path's queue is empty the receiver
answers `receiver.default` (200 with an empty JSON object). Every request is recorded
with its headers (names in lower case), body bytes and arrival time. `start()` and `stop()`
do what the context manager does, for a fixture or a subprocess test that manages them.

Tests get one with the `webhook_receiver` fixture:

    from ledger_pipeline_tests.webhook_receiver import webhook_receiver_fixture  # noqa: F401

(imported under that name, the fixture does not clash with the test's `webhook_receiver`
argument)
or, for a receiver of their own, `with WebhookReceiver() as receiver:`.

`python -m ledger_pipeline_tests.webhook_receiver [--port N]` serves until interrupted,
answering 200 and printing the webhook-id and size of each request (for trying delivery by
hand; set LEDGER_ALLOW_PRIVATE_URLS=1 to deliver to it).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import http.server
import ssl
import threading
import time
from collections.abc import Iterator, Mapping

import pytest


@dataclasses.dataclass(frozen=True)
class Reply:
    """One programmed response.

    Attributes:
        status: the status code.
        headers: extra response headers (`Location`, `Retry-After`...).
        body: the response body.
        delay: seconds to wait before answering (longer than a sender's timeout: a timeout).
        drip: seconds to wait between the body's bytes, sent one at a time (a slow drip).
    """

    status: int = 200
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b"{}"
    delay: float = 0.0
    drip: float = 0.0


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    """A request the receiver got. `headers` has lower-case names; `received_at` is
    `time.time()` when its body had been read; `client` is the sender's address and port
    (the same port for two requests: one keep-alive connection)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    client: tuple[str, int]


class WebhookReceiver:
    """A threaded HTTP/1.1 server (keep-alive) on 127.0.0.1 with programmed replies.

    Args:
        port: the port to listen on; 0 takes a free one.
        ssl_context: a server TLS context, to serve https.
    """

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None):
        self.default = Reply()
        self._port = port
        self._ssl_context = ssl_context
        self._lock = threading.Condition()
        self._replies: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self._requests: list[ReceivedRequest] = []
        self._stopping = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return self._server.server_address[1]

    def url(self, path: str = "/hooks", host: str = "127.0.0.1") -> str:
        """The URL of `path` on this receiver (`host` may be a name a test resolves)."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def reply(self, path: str, *replies: Reply) -> None:
        """Queues replies for the next requests to `path`, in order."""
        with self._lock:
            self._replies[path].extend(replies)

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        """The requests received so far (to `path` only, when given), oldest first."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Waits until `count` requests have arrived and returns all received so far; fails
        with AssertionError after `timeout` seconds."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(
                    f"the receiver got {len(self._requests)} requests, expected {count}"
                )
            return list(self._requests)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(_Handler):
            pass

        Handler.receiver = receiver
        self._stopping.clear()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        if self._ssl_context is not None:
            self._server.socket = self._ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving; replies still waiting out a delay are abandoned."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            queue = self._replies.get(path)
            return queue.popleft() if queue else self.default

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: WebhookReceiver

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.receiver._record(
            ReceivedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at=time.time(),
                client=(self.client_address[0], self.client_address[1]),
            )
        )

        reply = self.receiver._next_reply(self.path)
        if reply.delay and self.receiver._stopping.wait(reply.delay):
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply.body)))
            self.send_header("content-type", "application/json")
            self.end_headers()
            self._write_body(reply)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True  # the sender gave up (a timeout test)

    def _write_body(self, reply: Reply) -> None:
        if not reply.drip:
            self.wfile.write(reply.body)
            return
        for position in range(len(reply.body)):
            self.wfile.write(reply.body[position : position + 1])
            self.wfile.flush()
            if self.receiver._stopping.wait(reply.drip):
                return

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output quiet


@pytest.fixture(name="webhook_receiver")
def webhook_receiver_fixture() -> Iterator[WebhookReceiver]:
    """The `webhook_receiver` fixture: a started receiver, stopped after the test."""
    with WebhookReceiver() as receiver:
        yield receiver


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive webhooks on 127.0.0.1, answer 200.")
    parser.add_argument("--port", type=int, default=8765)
    arguments = parser.parse_args()

    receiver = WebhookReceiver(port=arguments.port).start()
    print(f"receiving on {receiver.url('/')}", flush=True)
    seen = 0
    try:
        while True:
            try:
                requests = receiver.wait_for(seen + 1, timeout=60)
            except AssertionError:
                continue  # nothing arrived in the last minute
            for request in requests[seen:]:
                print(
                    f"{request.method} {request.path} webhook-id "
                    f"{request.headers.get('webhook-id')} {len(request.body)} bytes",
                    flush=True,
                )
            seen = len(requests)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
