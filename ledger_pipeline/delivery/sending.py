"""One webhook attempt: POST the stored body bytes to a registry's URL and say what happened.

`Sender.send` never raises for a network or HTTP problem: every outcome is an `AttemptResult`
(status, latency, the start of the response, a short reason). Only a 2xx is a success, and a
redirect is never followed.

The SSRF guard: at every send, the URL's host is resolved (by the Sender, cached briefly), and
the attempt is refused when any of its addresses is loopback, private, link-local, a cloud
metadata address, unspecified, multicast, reserved or otherwise not public, including the
IPv4-mapped, 6to4 and NAT64 forms of those. The connection then goes to the address that was
checked (no second DNS lookup, so a host cannot resolve to a public address for the check and
to an internal one for the connection), with the `Host` header, and for https the SNI and
certificate check, still naming the URL's host. `LEDGER_ALLOW_PRIVATE_URLS=1` lifts the check
for loopback, private and link-local addresses (the demo and tests deliver to 127.0.0.1); the
metadata addresses, unspecified and multicast stay refused.

The connection pinning is done by `_PinningAdapter` below, the approach of the maintained
`requests-hardened` package (which is not a dependency: it checks only the first resolved
address and allows loopback but not private networks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.connection import allowed_gai_family

from ledger_pipeline.delivery.schedule import parse_retry_after
from ledger_pipeline.errors import UrlRefused

__all__ = [
    "ALLOW_PRIVATE_URLS_VARIABLE",
    "AttemptResult",
    "Resolver",
    "Sender",
    "UrlRefused",
    "allow_private_urls",
    "refusal_reason",
    "system_resolver",
]

logger = logging.getLogger(__name__)
# urllib3 logs each request line at DEBUG, the URL's query included, and a registry's URL may
# carry a token there: its request log stays quiet whatever level the host asks for.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

ALLOW_PRIVATE_URLS_VARIABLE = "LEDGER_ALLOW_PRIVATE_URLS"
# How much of a response body is read and kept with the attempt.
RESPONSE_EXCERPT_BYTES = 4096
# How long a Sender reuses a host's resolved addresses.
DNS_CACHE_SECONDS = 30.0
# How many of a host's addresses one attempt tries in turn when a connection cannot be made;
# they share the attempt's connect timeout.
ADDRESSES_PER_ATTEMPT = 3
# How much of a redirect's Location an error message shows.
LOCATION_CHARS = 200

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A resolver takes a host name and a port and gives the host's addresses as text.
Resolver = Callable[[str, int], Sequence[str]]

# Instance metadata services (AWS, GCP and Azure share the first; AWS over IPv6; ECS task
# metadata; Alibaba Cloud): refused even when private URLs are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def allow_private_urls() -> bool:
    """Whether `LEDGER_ALLOW_PRIVATE_URLS` is set to `1` or `true` (any case)."""
    return os.environ.get(ALLOW_PRIVATE_URLS_VARIABLE, "").strip().lower() in ("1", "true")


@dataclasses.dataclass(frozen=True)
class AttemptResult:
    """What one attempt got back.

    Attributes:
        status_code: the response's status, None when none arrived.
        latency_ms: from sending to the response's status line (or the failure).
        response_excerpt: the start of the response body (at most 4 KiB, decoded as UTF-8
            with replacement), empty when there was none.
        error: None on a 2xx, else a short reason that holds no secret: "status 500",
            "redirect to https://... not followed", "timeout after 10 s",
            "connection refused", "refused: hooks.example resolves to a private address
            10.0.0.1"...
        retry_after: the delay the response's `Retry-After` asked for, if any.
        refused: the SSRF guard (or a URL that is not http or https) stopped the attempt
            before anything was sent.
    """

    status_code: int | None
    latency_ms: int
    response_excerpt: str = ""
    error: str | None = None
    retry_after: dt.timedelta | None = None
    refused: bool = False

    @property
    def succeeded(self) -> bool:
        """The receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: it wants no more deliveries."""
        return self.status_code == 410


def refusal_reason(address: IPAddress, allow_private: bool = False) -> str | None:
    """Why the guard refuses to connect to `address` ("a private address 10.0.0.1"), or None
    when it is allowed. An IPv4 address inside an IPv6 one (`::ffff:10.0.0.1`, 6to4, NAT64)
    is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal_reason(embedded, allow_private)
            return f"{reason} (as {address})" if reason else None

    if address in METADATA_ADDRESSES:
        return f"a cloud metadata address {address}"
    if address.is_unspecified:
        return f"an unspecified address {address}"
    if address.is_multicast:
        return f"a multicast address {address}"
    if allow_private:
        return None
    if address.is_loopback:
        return f"a loopback address {address}"
    if address.is_link_local:
        return f"a link-local address {address}"
    if address.is_private:
        return f"a private address {address}"
    if address.is_reserved or not address.is_global:
        return f"a non-public address {address}"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system's resolver (getaddrinfo), in its order."""
    infos = socket.getaddrinfo(host, port, family=allowed_gai_family(), type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Sender:
    """Sends webhook attempts over one keep-alive HTTP session: one Sender per worker thread.

    Args:
        timeout: seconds allowed to connect, for each read of the response, and for the
            whole attempt from sending to the last byte of the excerpt.
        allow_private: whether loopback, private and link-local addresses are allowed;
            None reads `LEDGER_ALLOW_PRIVATE_URLS`.
        resolver: resolves a host to its addresses (tests inject one); the system's by
            default.
        dns_cache_seconds: how long resolved addresses are reused; 0 resolves every time.
        verify: certificate verification for https: True (the system's CAs) or the path of
            a CA bundle.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        allow_private: bool | None = None,
        *,
        resolver: Resolver | None = None,
        dns_cache_seconds: float = DNS_CACHE_SECONDS,
        verify: bool | str = True,
    ):
        if timeout <= 0:
            raise ValueError(f"timeout is {timeout}: it must be above 0 seconds")
        self.timeout = timeout
        self.allow_private = allow_private_urls() if allow_private is None else allow_private
        self._resolver = resolver or system_resolver
        self._dns_cache_seconds = dns_cache_seconds
        self._dns_cache: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}
        self._verify = verify

        # The host's addresses as resolved for the current attempt, those that took no
        # connection, and the one its latest request went to (one Sender sends one attempt at
        # a time).
        self._resolved: list[IPAddress] = []
        self._unreachable: list[IPAddress] = []
        self._pinned: IPAddress | None = None

        self._session = requests.Session()
        self._session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
        self._session.headers.clear()
        self._session.headers.update({"accept": "*/*", "accept-encoding": "identity"})
        adapter = _PinningAdapter(self._pinned_address)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POSTs `body` with `headers` to `url` once and returns what happened; never raises
        for a network or HTTP problem."""
        started = time.monotonic()

        def failed(error: str, refused: bool = False) -> AttemptResult:
            return AttemptResult(None, _ms_since(started), error=error, refused=refused)

        try:
            _check_url(url)
            response = self._post_to_an_address(url, body, headers)
        except UrlRefused as refusal:
            logger.info("webhook attempt %s", refusal)
            return failed(str(refusal), refused=True)
        except requests.RequestException as error:
            reason = self._failure_reason(error)
            if len(self._unreachable) > 1:
                reason = f"{reason} ({len(self._unreachable)} addresses tried)"
            logger.debug("webhook attempt failed after %d ms: %s", _ms_since(started), reason)
            return failed(reason)

        return self._response_result(response, started)

    def _post_to_an_address(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> requests.Response:
        """POSTs to the first of the host's checked addresses that takes the connection, of
        at most ADDRESSES_PER_ATTEMPT, which share the connect timeout. An address is left
        for the next only when no connection was made, so nothing was sent to it."""
        self._unreachable = []
        parts = urlsplit(url)
        host = parts.hostname or ""
        # Resolved once for the attempt: every connection of it goes to these addresses.
        self._resolved = self._addresses(host, parts.port or _DEFAULT_PORTS[parts.scheme.lower()])
        tries = min(len(self._resolved), ADDRESSES_PER_ATTEMPT)
        try:
            while True:
                self._pinned = None
                try:
                    return self._session.post(
                        url,
                        data=body,
                        headers=dict(headers),
                        timeout=(self.timeout / tries, self.timeout),
                        allow_redirects=False,
                        stream=True,
                        verify=self._verify,
                        proxies={},
                    )
                except requests.RequestException as error:
                    if not _not_connected(error) or self._pinned is None:
                        raise
                    self._unreachable.append(self._pinned)
                    if len(self._unreachable) >= tries:
                        raise
                    logger.debug("webhook attempt: no connection to an address, trying the next")
        finally:
            self._resolved = []

    def close(self) -> None:
        """Closes the session's connections."""
        self._session.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _response_result(self, response: requests.Response, started: float) -> AttemptResult:
        """The result of an attempt that got a response: its status decides, and the start
        of its body is read within what is left of the timeout."""
        latency_ms = _ms_since(started)
        excerpt = _read_excerpt(response, deadline=started + self.timeout)
        status = response.status_code
        retry_after = None
        if not 200 <= status < 300:
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), dt.datetime.now(dt.UTC)
            )

        logger.debug("webhook attempt: status %d in %d ms", status, latency_ms)
        return AttemptResult(
            status_code=status,
            latency_ms=latency_ms,
            response_excerpt=excerpt.decode("utf-8", errors="replace"),
            error=_status_error(response),
            retry_after=retry_after,
        )

    def _pinned_address(self, host: str, port: int) -> IPAddress:
        """The address to connect to for `host`: the first of the attempt's addresses that it
        has not found unreachable, once all of them passed the guard. Raises UrlRefused."""
        addresses = self._resolved  # as `_post_to_an_address` resolved them for the attempt
        for address in addresses:
            reason = refusal_reason(address, self.allow_private)
            if reason is not None:
                raise UrlRefused(f"refused: {host} resolves to {reason}")
        self._pinned = next(
            (address for address in addresses if address not in self._unreachable), addresses[0]
        )
        return self._pinned

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass

        now = time.monotonic()
        cached = self._dns_cache.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            addresses = [ipaddress.ip_address(address) for address in self._resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as error:
            raise _ResolutionFailed(f"cannot resolve host {host}") from error
        if not addresses:
            raise _ResolutionFailed(f"cannot resolve host {host}")
        if self._dns_cache_seconds > 0:
            self._dns_cache[(host, port)] = (now + self._dns_cache_seconds, addresses)
        return addresses

    def _failure_reason(self, error: requests.RequestException) -> str:
        """A short reason for an attempt that got no response, without the URL (which may
        hold a token) or anything the server sent."""
        if isinstance(error, _ResolutionFailed):
            return str(error)
        if isinstance(error, requests.ConnectTimeout):
            return f"connect timeout after {self.timeout:g} s"
        if isinstance(error, requests.ReadTimeout):
            return f"timeout after {self.timeout:g} s"
        if isinstance(error, requests.exceptions.SSLError):
            return f"TLS error: {_short(_root_cause(error))}"

        cause = _root_cause(error)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, TimeoutError | socket.timeout):
            return f"timeout after {self.timeout:g} s"
        if isinstance(error, requests.ConnectionError):
            return f"connection failed: {_short(cause)}"
        return f"request failed: {type(error).__name__}"


class _ResolutionFailed(requests.ConnectionError):
    """The URL's host has no address."""


class _PinningAdapter(HTTPAdapter):
    """Connects to the address `pin` checked for the URL's host, keeping the host name for the
    `Host` header, the SNI and the certificate check. Connection pools are keyed by the
    address, so keep-alive connections are reused per checked address."""

    def __init__(self, pin: Callable[[str, int], IPAddress]):
        super().__init__(max_retries=0)
        self._pin = pin

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        scheme, host, port = host_params["scheme"], host_params["host"], host_params["port"]
        address = self._pin(host, port or _DEFAULT_PORTS[scheme])

        shown_host = f"[{host}]" if ":" in host else host
        request.headers["Host"] = shown_host if port is None else f"{shown_host}:{port}"
        if scheme == "https":
            pool_kwargs["server_hostname"] = host
            pool_kwargs["assert_hostname"] = host
        host_params["host"] = f"[{address}]" if address.version == 6 else str(address)
        return host_params, pool_kwargs


def _check_url(url: str) -> None:
    """Refuses a URL that is not http or https with a host (the message never shows it)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError on a port out of range)
    except ValueError:
        raise UrlRefused("refused: the URL cannot be parsed") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host:
        raise UrlRefused("refused: the URL is not http or https with a host")


def _read_excerpt(response: requests.Response, deadline: float) -> bytes:
    """Up to RESPONSE_EXCERPT_BYTES of the body, read until the body ends or `deadline`
    (monotonic), so that a server dripping its body cannot hold the worker. The connection
    goes back to the pool only when the body was read to its end."""
    raw = response.raw
    excerpt = bytearray()
    ended = False
    try:
        while len(excerpt) <= RESPONSE_EXCERPT_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            _set_read_timeout(raw, remaining)
            chunk = raw.read1(RESPONSE_EXCERPT_BYTES + 1 - len(excerpt), decode_content=True)
            if not chunk:
                ended = True
                break
            excerpt += chunk
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # a body cut short or too slow: keep what arrived
    finally:
        if ended:
            response.raw.release_conn()
        else:
            response.close()
    return bytes(excerpt[:RESPONSE_EXCERPT_BYTES])


def _set_read_timeout(raw: urllib3.BaseHTTPResponse, seconds: float) -> None:
    """Shortens the socket's timeout for the next read to what is left of the attempt
    (urllib3 sets it again before the connection's next request)."""
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _status_error(response: requests.Response) -> str | None:
    status = response.status_code
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        location = response.headers.get("location")
        if not location:
            return f"status {status}: redirect without a Location not followed"
        return f"status {status}: redirect to {_shown_location(location)} not followed"
    return f"status {status}"


def _shown_location(location: str) -> str:
    """A redirect's target without its user info, query and fragment (which may hold
    tokens), cut to LOCATION_CHARS."""
    try:
        parts = urlsplit(location.strip())
        netloc = parts.netloc.rpartition("@")[2]
        shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        shown = "an unparsable location"
    return shown[:LOCATION_CHARS]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: IPv4-mapped, 6to4 or NAT64 (64:ff9b::/96)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _not_connected(error: requests.RequestException) -> bool:
    """Whether the request failed before a connection was made (refused, unreachable, or
    the connect timeout), so that nothing of it was sent."""
    return isinstance(error, requests.ConnectTimeout) or any(
        isinstance(inner, urllib3.exceptions.NewConnectionError) for inner in _causes(error)
    )


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception under requests' and urllib3's wrappers."""
    *_, innermost = _causes(error)
    return innermost


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and, in turn, each exception it wraps, down to the innermost."""
    seen: set[int] = set()
    while id(error) not in seen:
        yield error
        seen.add(id(error))
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            inner = error.__cause__ or error.__context__
        if inner is None and error.args and isinstance(error.args[0], BaseException):
            inner = error.args[0]
        if inner is None:
            break
        error = inner


def _short(error: BaseException) -> str:
    """An exception's class and first line, cut short; urllib3's messages hold no URL."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
