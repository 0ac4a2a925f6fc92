"""One webhook attempt against a real HTTP server on loopback: outcomes, bounds, and the SSRF
guard (refusal, and the connection going to the address that was checked)."""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest
import standardwebhooks

from ledger_pipeline.delivery.sending import (
    ALLOW_PRIVATE_URLS_VARIABLE,
    AttemptResult,
    Sender,
    allow_private_urls,
    refusal_reason,
)
from ledger_pipeline.delivery.signing import webhook_headers
from ledger_pipeline_tests.webhook_receiver import (  # noqa: F401 (a fixture)
    Reply,
    WebhookReceiver,
    webhook_receiver_fixture,
)

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
BODY = b'{"order_id": "2e7f2d6f", "event": "confirmed", "ledger_entries": []}'
HEADERS = {"content-type": "application/json", "webhook-id": "msg_1"}


class Resolver:
    """A resolver with programmed answers per call; counts its calls."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def send(url: str, **sender_options) -> AttemptResult:
    sender_options.setdefault("allow_private", True)
    with Sender(**sender_options) as sender:
        return sender.send(url, BODY, HEADERS)


def test_a_2xx_is_a_success_with_the_body_and_headers_delivered(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(202, body=b'{"received": true}'))
    headers = webhook_headers("msg_2e7f2d6f", BODY, [SECRET], int(time.time()))

    with Sender(allow_private=True) as sender:
        result = sender.send(webhook_receiver.url("/hooks"), BODY, headers)

    assert (result.status_code, result.succeeded, result.gone, result.error) == (
        202,
        True,
        False,
        None,
    )
    assert result.response_excerpt == '{"received": true}'
    (request,) = webhook_receiver.requests()
    assert (request.method, request.path, request.body) == ("POST", "/hooks", BODY)
    assert request.headers["webhook-id"] == "msg_2e7f2d6f"
    assert request.headers["host"] == f"127.0.0.1:{webhook_receiver.port}"
    assert standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)["event"] == (
        "confirmed"
    )


def test_a_500_is_a_failure_with_the_response_kept(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(500, body=b"database down"))

    result = send(webhook_receiver.url("/hooks"))

    assert (result.status_code, result.succeeded, result.error) == (500, False, "status 500")
    assert result.response_excerpt == "database down"
    assert result.retry_after is None


def test_a_429_with_retry_after_seconds_says_how_long_to_wait(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(429, headers={"Retry-After": "120"}))

    result = send(webhook_receiver.url("/hooks"))

    assert (result.status_code, result.succeeded) == (429, False)
    assert result.retry_after == dt.timedelta(seconds=120)


def test_a_429_with_a_retry_after_date_says_how_long_to_wait(webhook_receiver):
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=600)
    retry_at = email.utils.format_datetime(moment, usegmt=True)
    webhook_receiver.reply("/hooks", Reply(429, headers={"Retry-After": retry_at}))

    result = send(webhook_receiver.url("/hooks"))

    assert result.status_code == 429
    assert dt.timedelta(seconds=580) <= result.retry_after <= dt.timedelta(seconds=600)


def test_a_410_is_gone(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(410))

    result = send(webhook_receiver.url("/hooks"))

    assert (result.status_code, result.gone, result.succeeded) == (410, True, False)


def test_a_receiver_slower_than_the_timeout_is_a_timeout(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(200, delay=5))

    result = send(webhook_receiver.url("/hooks"), timeout=0.5)

    assert (result.status_code, result.succeeded) == (None, False)
    assert result.error == "timeout after 0.5 s"
    assert 450 <= result.latency_ms < 3000


def test_a_closed_port_is_connection_refused():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]

        result = send(f"http://127.0.0.1:{port}/hooks")

    assert (result.status_code, result.error, result.refused) == (None, "connection refused", False)


def test_a_redirect_is_not_followed(webhook_receiver):
    target = webhook_receiver.url("/elsewhere?token=abc")
    webhook_receiver.reply("/hooks", Reply(302, headers={"Location": target}))

    result = send(webhook_receiver.url("/hooks"))

    assert (result.status_code, result.succeeded) == (302, False)
    assert result.error == (
        f"status 302: redirect to http://127.0.0.1:{webhook_receiver.port}/elsewhere not followed"
    )
    assert [request.path for request in webhook_receiver.requests()] == ["/hooks"]


def test_the_response_is_cut_to_4_kib(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(500, body=b"x" * 10_000))

    result = send(webhook_receiver.url("/hooks"))

    assert result.response_excerpt == "x" * 4096


def test_a_response_that_is_not_utf8_is_decoded_with_replacement(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(400, body=b"\xff\xfe bad"))

    result = send(webhook_receiver.url("/hooks"))

    assert result.response_excerpt == "\ufffd\ufffd bad"


def test_a_dripping_body_is_cut_at_the_timeout_and_the_status_stands(webhook_receiver):
    webhook_receiver.reply("/hooks", Reply(200, body=b"y" * 100, drip=0.1))

    started = time.monotonic()
    result = send(webhook_receiver.url("/hooks"), timeout=1.0)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0  # the whole body would take 10 s
    assert (result.status_code, result.succeeded) == (200, True)
    assert 0 < len(result.response_excerpt) < 100
    assert set(result.response_excerpt) == {"y"}


def test_sends_reuse_one_keep_alive_connection(webhook_receiver):
    with Sender(allow_private=True) as sender:
        first = sender.send(webhook_receiver.url("/hooks"), BODY, HEADERS)
        second = sender.send(webhook_receiver.url("/hooks"), BODY, HEADERS)

    assert first.succeeded and second.succeeded
    first_request, second_request = webhook_receiver.requests()
    assert first_request.client == second_request.client


def test_a_loopback_url_is_refused_without_the_variable(webhook_receiver, monkeypatch):
    monkeypatch.delenv(ALLOW_PRIVATE_URLS_VARIABLE, raising=False)

    with Sender() as sender:
        result = sender.send(webhook_receiver.url("/hooks"), BODY, HEADERS)

    assert (result.status_code, result.refused) == (None, True)
    assert result.error == "refused: 127.0.0.1 resolves to a loopback address 127.0.0.1"
    assert webhook_receiver.requests() == []


@pytest.mark.parametrize("value", ["1", "true", "TRUE"])
def test_a_loopback_url_is_allowed_with_the_variable(webhook_receiver, monkeypatch, value):
    monkeypatch.setenv(ALLOW_PRIVATE_URLS_VARIABLE, value)

    with Sender() as sender:
        result = sender.send(webhook_receiver.url("/hooks"), BODY, HEADERS)

    assert result.succeeded


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("yes", False)])
def test_only_1_or_true_allows_private_urls(monkeypatch, value, expected):
    monkeypatch.setenv(ALLOW_PRIVATE_URLS_VARIABLE, value)

    assert allow_private_urls() is expected


def test_localhost_is_refused_through_the_system_resolver(webhook_receiver):
    result = send(webhook_receiver.url("/hooks", host="localhost"), allow_private=False)

    assert result.refused
    assert result.error.startswith("refused: localhost resolves to a loopback address ")
    assert webhook_receiver.requests() == []


def test_a_host_resolving_to_a_private_address_is_refused():
    resolver = Resolver(["10.0.0.1"])

    result = send("https://hooks.example/ledger", allow_private=False, resolver=resolver)

    assert result.error == "refused: hooks.example resolves to a private address 10.0.0.1"
    assert resolver.calls == [("hooks.example", 443)]


def test_a_host_with_one_private_address_among_public_ones_is_refused():
    resolver = Resolver(["93.184.215.14", "192.168.1.20"])

    result = send("http://hooks.example:8080/", allow_private=False, resolver=resolver)

    assert result.error == "refused: hooks.example resolves to a private address 192.168.1.20"


def test_the_metadata_address_is_refused_even_when_private_urls_are_allowed():
    result = send("http://169.254.169.254/latest/meta-data/", allow_private=True)

    assert result.error == (
        "refused: 169.254.169.254 resolves to a cloud metadata address 169.254.169.254"
    )


def test_a_host_that_does_not_resolve_is_a_failure_not_a_refusal():
    def no_such_host(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = send("https://hooks.invalid/", resolver=no_such_host)

    assert (result.error, result.refused) == ("cannot resolve host hooks.invalid", False)


def test_the_connection_goes_to_the_address_that_was_checked(webhook_receiver):
    # The first lookup gives the receiver; any later one gives an address where nothing
    # listens, and the system resolver knows no `.invalid` name: delivery only reaches the
    # receiver if the connection uses the checked address without a second lookup.
    resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])

    result = send(
        webhook_receiver.url("/hooks", host="webhook.invalid"),
        resolver=resolver,
        dns_cache_seconds=0,
    )

    assert result.succeeded
    assert resolver.calls == [("webhook.invalid", webhook_receiver.port)]
    (request,) = webhook_receiver.requests()
    assert request.headers["host"] == f"webhook.invalid:{webhook_receiver.port}"


# The receiver listens on 127.0.0.1 only: 127.0.0.2 and the like refuse every connection.


def test_an_address_that_refuses_is_left_for_the_host_s_next_one(webhook_receiver):
    resolver = Resolver(["127.0.0.2", "127.0.0.1"])

    result = send(webhook_receiver.url("/hooks", host="webhook.invalid"), resolver=resolver)

    assert (result.status_code, result.succeeded, result.error) == (200, True, None)
    assert resolver.calls == [("webhook.invalid", webhook_receiver.port)]
    assert [request.body for request in webhook_receiver.requests()] == [BODY]


def test_when_every_address_refuses_the_attempt_says_how_many_were_tried(webhook_receiver):
    resolver = Resolver(["127.0.0.2", "127.0.0.3"])

    result = send(webhook_receiver.url("/hooks", host="webhook.invalid"), resolver=resolver)

    assert (result.status_code, result.error) == (None, "connection refused (2 addresses tried)")
    assert webhook_receiver.requests() == []


def test_an_attempt_tries_at_most_three_addresses(webhook_receiver):
    resolver = Resolver(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.1"])

    result = send(webhook_receiver.url("/hooks", host="webhook.invalid"), resolver=resolver)

    assert result.error == "connection refused (3 addresses tried)"
    assert webhook_receiver.requests() == []


def test_an_address_that_answers_with_an_error_is_not_left_for_the_next(webhook_receiver):
    """Once a connection is made the request may have arrived: a 500 is the attempt's result,
    never a reason to send the same bytes to another address."""
    webhook_receiver.reply("/hooks", Reply(500))
    resolver = Resolver(["127.0.0.1", "127.0.0.1"])

    result = send(webhook_receiver.url("/hooks", host="webhook.invalid"), resolver=resolver)

    assert (result.status_code, result.error) == (500, "status 500")
    assert len(webhook_receiver.requests()) == 1


def test_a_private_address_among_the_next_ones_is_still_refused_first():
    resolver = Resolver(["127.0.0.2", "10.0.0.1"])

    result = send("http://webhook.invalid/hooks", allow_private=False, resolver=resolver)

    assert result.refused
    assert result.error == "refused: webhook.invalid resolves to a loopback address 127.0.0.2"


def test_every_send_checks_the_address_again(webhook_receiver):
    resolver = Resolver(["127.0.0.1"], ["169.254.169.254"])
    url = webhook_receiver.url("/hooks", host="webhook.invalid")

    with Sender(allow_private=True, resolver=resolver, dns_cache_seconds=0) as sender:
        first = sender.send(url, BODY, HEADERS)
        rebound = sender.send(url, BODY, HEADERS)

    assert first.succeeded
    assert rebound.error == (
        "refused: webhook.invalid resolves to a cloud metadata address 169.254.169.254"
    )
    assert len(webhook_receiver.requests()) == 1


def test_resolved_addresses_are_cached_briefly(webhook_receiver):
    resolver = Resolver(["127.0.0.1"])
    url = webhook_receiver.url("/hooks", host="webhook.invalid")

    with Sender(allow_private=True, resolver=resolver, dns_cache_seconds=30) as sender:
        assert sender.send(url, BODY, HEADERS).succeeded
        assert sender.send(url, BODY, HEADERS).succeeded

    assert len(resolver.calls) == 1


@pytest.mark.parametrize("url", ["ftp://hooks.example/x", "hooks.example/x", "http:///x"])
def test_a_url_that_is_not_http_with_a_host_is_refused(url):
    result = send(url)

    assert result.refused
    assert result.error == "refused: the URL is not http or https with a host"


@pytest.mark.parametrize(
    ("address", "allow_private", "expected"),
    [
        ("93.184.215.14", False, None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False, None),
        ("127.0.0.1", False, "a loopback address 127.0.0.1"),
        ("::1", False, "a loopback address ::1"),
        ("10.1.2.3", False, "a private address 10.1.2.3"),
        ("172.16.0.1", False, "a private address 172.16.0.1"),
        ("192.168.0.1", False, "a private address 192.168.0.1"),
        ("fd12:3456::1", False, "a private address fd12:3456::1"),
        ("169.254.1.1", False, "a link-local address 169.254.1.1"),
        ("fe80::1", False, "a link-local address fe80::1"),
        ("100.64.0.1", False, "a non-public address 100.64.0.1"),  # carrier-grade NAT
        ("240.0.0.1", False, "a private address 240.0.0.1"),  # reserved, private to Python
        ("0.0.0.0", True, "an unspecified address 0.0.0.0"),  # noqa: S104
        ("224.0.0.1", True, "a multicast address 224.0.0.1"),
        ("169.254.169.254", True, "a cloud metadata address 169.254.169.254"),
        ("fd00:ec2::254", True, "a cloud metadata address fd00:ec2::254"),
        ("::ffff:10.0.0.1", False, "a private address 10.0.0.1 (as ::ffff:a00:1)"),
        ("::ffff:93.184.215.14", False, None),
        ("2002:a00:1::1", False, "a private address 10.0.0.1 (as 2002:a00:1::1)"),  # 6to4
        ("64:ff9b::7f00:1", False, "a loopback address 127.0.0.1 (as 64:ff9b::7f00:1)"),
        ("127.0.0.1", True, None),
        ("10.1.2.3", True, None),
        ("fe80::1", True, None),
    ],
)
def test_the_guard_refuses_every_non_public_address(address, allow_private, expected):
    assert refusal_reason(ipaddress.ip_address(address), allow_private) == expected


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A test CA and a server certificate for `webhook.invalid`, made by the openssl
    command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=ledger-pipeline test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    openssl(
        "req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=webhook.invalid"
    )
    (folder / "san.ext").write_text("subjectAltName=DNS:webhook.invalid\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
    )  # fmt: skip
    return folder


@pytest.fixture
def tls_receiver(certificates):
    """A receiver serving https as `webhook.invalid`, recording the SNI names it was asked
    for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    server_names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    with WebhookReceiver(ssl_context=context) as receiver:
        receiver.server_names = server_names
        yield receiver


def test_https_to_a_pinned_address_checks_the_certificate_of_the_host(tls_receiver, certificates):
    resolver = Resolver(["127.0.0.1"])

    result = send(
        tls_receiver.url("/hooks", host="webhook.invalid"),
        resolver=resolver,
        verify=str(certificates / "ca.pem"),
    )

    assert result.succeeded
    assert tls_receiver.server_names == ["webhook.invalid"]
    (request,) = tls_receiver.requests()
    assert request.headers["host"] == f"webhook.invalid:{tls_receiver.port}"


def test_https_to_a_host_the_certificate_does_not_name_fails(tls_receiver, certificates):
    resolver = Resolver(["127.0.0.1"])

    result = send(
        tls_receiver.url("/hooks", host="other.invalid"),
        resolver=resolver,
        verify=str(certificates / "ca.pem"),
    )

    assert (result.status_code, result.succeeded) == (None, False)
    assert result.error.startswith("TLS error: ")
    assert "other.invalid" in result.error
    assert tls_receiver.requests() == []


def test_the_receiver_takes_requests_from_another_process(webhook_receiver):
    webhook_receiver.reply("/from-a-process", Reply(201))
    script = (
        "import sys, urllib.request\n"
        "request = urllib.request.Request(sys.argv[1], data=b'{}', method='POST')\n"
        "print(urllib.request.urlopen(request).status)\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script, webhook_receiver.url("/from-a-process")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )

    assert completed.stdout.strip() == "201"
    assert [request.body for request in webhook_receiver.wait_for(1)] == [b"{}"]
