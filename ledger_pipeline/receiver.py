"""A local webhook receiver (`ledger-pipeline receive`): a sink to rehearse delivery against.

It checks each delivery's signature and timestamp with the `standardwebhooks` package (the
reference implementation of the Standard Webhooks specification, not the product's own signer,
so that a signing mistake of the product shows here), and answers:

- 400 when the signature or timestamp does not verify (a timestamp more than 5 minutes from
  the receiver's clock is refused, as the specification asks), or the body is not JSON;
- 503 for a chosen fraction of the verified deliveries (`fail_rate`, drawn from a seeded
  random generator so that a run can be repeated), to rehearse retries;
- 422 for a verified `ledger_summary` it cannot book (a malformed amount, say);
- 200 otherwise, with `{"received": <webhook-id>, "duplicate": <bool>}`.

Every request is appended to the `out` file as one JSON line: when it arrived, the answer, the
headers of interest, and the body as JSON (left out when the signature does not verify, since
then nobody vouches for it). With a `beancount` file, each new `ledger_summary` is also written
as one beancount transaction; a delivery seen before (the same `webhook-id`, or the same
`idempotency_key`) is answered 200 again but booked once. The keys already booked are read
back from the file when the receiver starts, so a restart books nothing twice either.

The server is the standard library's threading HTTP server: one thread per connection, with
one lock around verification's aftermath (the files and the set of keys seen). It is a
rehearsal tool for one machine, not a production endpoint.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ledger_pipeline.errors import ConfigurationError

logger = logging.getLogger(__name__)

# The headers written to the out file; the others (hosts, proxies' additions) are left out.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
MAX_BODY_BYTES = 10 * 1024 * 1024
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not a secret)

# Ledger accounts as beancount accounts, by the account's type: assets, liabilities, income and
# expenses are beancount's own root accounts.
BEANCOUNT_ACCOUNTS = {
    "cash": "Assets:Cash",
    "customer_receivable": "Assets:CustomerReceivable",
    "reseller_receivable": "Assets:ResellerReceivable",
    "deferred_revenue": "Liabilities:DeferredRevenue",
    "revenue": "Income:Revenue",
    "tax": "Liabilities:Tax",
    "commission": "Expenses:Commission",
    "commission_payable": "Liabilities:CommissionPayable",
}
# Takes the difference of a summary that does not balance: one of a registry that leaves some
# entry types out, so it receives only part of each event's entries.
OUTSIDE_ACCOUNT = "Equity:OutsideRegistry"
OPEN_DATE = "1970-01-01"
# Tolerance 0 for every currency (both for amounts without decimals and with them), so a
# transaction one minor unit off is an error, not rounding.
BEANCOUNT_HEADER = (
    "; Written by `ledger-pipeline receive`: one transaction per ledger_summary received.",
    'option "title" "Ledger summaries received"',
    'option "inferred_tolerance_default" "*:0"',
    'option "tolerance_multiplier" "0"',
    "",
    *(f"{OPEN_DATE} open {account}" for account in (*BEANCOUNT_ACCOUNTS.values(), OUTSIDE_ACCOUNT)),
)

_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
# One signature of a `webhook-signature` header: a version, a comma, and base64.
_SIGNATURE = re.compile(r"v[0-9a-z]+,[A-Za-z0-9+/]+={0,2}")
_BOOKED_KEY = re.compile(r'^\s+idempotency_key: "([^"]+)"', re.MULTILINE)
_BOOKED_WEBHOOK_ID = re.compile(r'^\s+webhook_id: "([^"]+)"', re.MULTILINE)
_COMMODITY = re.compile(rf"^{OPEN_DATE} commodity ([A-Z]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Reply:
    """What the receiver answers: a status and a JSON body."""

    status: int
    body: dict[str, Any]


class NotBookable(ValueError):
    """A verified ledger_summary that cannot become a beancount transaction; says why."""


class Receiver:
    """Verifies deliveries, records them, and books summaries (see the module's docstring).

    Args:
        secrets: the registry's `whsec_` secrets; a delivery signed with any of them verifies
            (give two while a secret is being rotated).
        out: the JSON Lines file every request is appended to.
        beancount: the beancount file summaries are booked in (created with its header).
        fail_rate: the fraction of verified deliveries answered 503, from 0 to 1.
        seed: seeds the draw of those failures; None draws differently every run.
        timezone: dates a transaction by the local date of the event's `occurred_at`, unless
            the summary's entries carry a `date` (a registry that groups by date).
    """

    def __init__(
        self,
        secrets: Sequence[str],
        out: Path,
        *,
        beancount: Path | None = None,
        fail_rate: float = 0.0,
        seed: int | None = None,
        timezone: ZoneInfo | None = None,
    ):
        if not secrets:
            raise ConfigurationError("give the registry's secret (--secret whsec_...)")
        self._webhooks = [_webhook(secret) for secret in secrets]
        if not 0.0 <= fail_rate <= 1.0:
            raise ConfigurationError(f"the fail rate {fail_rate} is not between 0 and 1")
        self._fail_rate = fail_rate
        self._random = random.Random(seed)  # noqa: S311 (chooses failures to rehearse, not keys)
        # Opened now, so that a file it cannot write stops it before the first delivery.
        try:
            out.open("a", encoding="utf-8").close()
        except OSError as error:
            raise ConfigurationError(f"cannot write {out}: {error.strerror or error}") from None
        self._out = out
        self._book = BeancountBook(beancount, timezone or ZoneInfo("UTC")) if beancount else None
        # Limitation: the keys seen are read back from the beancount file only; without one, a
        # restarted receiver takes a redelivery for a new delivery in the out file.
        self._seen: set[str] = set(self._book.booked) if self._book else set()
        self._lock = threading.Lock()
        self.counts = {"accepted": 0, "duplicate": 0, "refused": 0, "failed": 0}

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Verifies, records and (for a new summary) books one delivery; returns the answer."""
        headers = {name.lower(): value for name, value in headers.items()}
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            payload, problem = self._verified(body, headers)
            if problem is not None:
                return self._refused(headers, problem)
            if self._fail_rate and self._random.random() < self._fail_rate:
                self.counts["failed"] += 1
                self._record(headers, 503, payload, failed_on_purpose=True)
                logger.info("delivery %s: failed on purpose (503)", webhook_id)
                return Reply(503, {"error": "failed on purpose, to rehearse retries"})

            keys = {webhook_id, *_idempotency_key(payload)}
            duplicate = bool(keys & self._seen)
            if not duplicate and self._book is not None and _is_summary(payload):
                try:
                    self._book.book(payload, webhook_id)
                except NotBookable as error:
                    return self._refused(headers, f"cannot book the summary: {error}", 422)
            self._seen |= keys
            self.counts["duplicate" if duplicate else "accepted"] += 1
            self._record(headers, 200, payload, duplicate=duplicate)
        logger.info("delivery %s: accepted%s", webhook_id, " (a duplicate)" if duplicate else "")
        return Reply(200, {"received": webhook_id, "duplicate": duplicate})

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> tuple[Any, str | None]:
        """The body as JSON and no problem, or None and what is wrong."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None, "the body is not UTF-8"
        signature = {name.lower(): value for name, value in headers.items()}.get(
            "webhook-signature"
        )
        if signature is not None and not all(
            _SIGNATURE.fullmatch(part) for part in signature.split(" ")
        ):
            # Named here: how the package reports such a header differs between its versions.
            return None, "signature not verified: malformed webhook-signature header"
        problem = "no signature header"
        for webhook in self._webhooks:
            try:
                webhook.verify(text, dict(headers), json_parse=False)
            except WebhookVerificationError as error:
                problem = str(error)
                continue
            try:
                return json.loads(text), None
            except json.JSONDecodeError:
                return None, "the body is not JSON"
        return None, f"signature not verified: {problem}"

    def _refused(self, headers: Mapping[str, str], problem: str, status: int = 400) -> Reply:
        self.counts["refused"] += 1
        self._record(headers, status, None, error=problem)
        logger.info(
            "delivery %s: refused (%d): %s", headers.get("webhook-id", "-"), status, problem
        )
        return Reply(status, {"error": problem})

    def _record(self, headers: Mapping[str, str], status: int, payload: Any, **facts: Any) -> None:
        record = {
            "received_at": dt.datetime.now(dt.UTC).isoformat(),
            "status": status,
            **facts,
            "headers": {name: headers[name] for name in KEPT_HEADERS if name in headers},
        }
        if payload is not None:
            record["body"] = payload
        with self._out.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


class BeancountBook:
    """A beancount file that ledger summaries are appended to, one transaction each.

    A summary entry's debit becomes a positive posting and its credit a negative one, each at
    the amount's exact decimal text, on the beancount account of its ledger account
    (`BEANCOUNT_ACCOUNTS`). The transaction's metadata holds the idempotency key, the webhook
    id and the order; each posting's, the entry's description and ledger code. A summary that
    does not balance in a currency (a registry that leaves some entry types out) gets one more
    posting, on `OUTSIDE_ACCOUNT`, and the flag `!`, so the file still checks and the gap shows.
    """

    def __init__(self, path: Path, timezone: ZoneInfo):
        """Raises:
        ConfigurationError: the file cannot be read or written, or holds text that another
            program wrote (the transactions appended would not check against it).
        """
        self.path = path
        self.timezone = timezone
        try:
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            if not text.strip():
                path.write_text("\n".join(BEANCOUNT_HEADER) + "\n", encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ConfigurationError(f"cannot use {path} as the beancount file: {reason}") from None
        if text.strip() and not text.startswith(BEANCOUNT_HEADER[0]):
            raise ConfigurationError(
                f"{path} was not written by `ledger-pipeline receive`: give a new file, so that "
                "what the receiver books checks on its own"
            )
        self.booked = set(_BOOKED_KEY.findall(text)) | set(_BOOKED_WEBHOOK_ID.findall(text))
        self._currencies = set(_COMMODITY.findall(text))

    def book(self, summary: Mapping[str, Any], webhook_id: str) -> None:
        """Appends the summary as a transaction.

        Raises:
            NotBookable: the summary lacks a field, or an amount or currency is malformed.
        """
        lines = self.transaction(summary, webhook_id)
        new_currencies = sorted(
            {entry["currency"] for entry in summary["ledger_entries"]} - self._currencies
        )
        commodities = [f"{OPEN_DATE} commodity {currency}" for currency in new_currencies]
        with self.path.open("a", encoding="utf-8") as book:
            book.write("\n" + "".join(line + "\n" for line in (*commodities, *lines)))
        self._currencies.update(new_currencies)

    def transaction(self, summary: Mapping[str, Any], webhook_id: str) -> list[str]:
        """The lines of the summary's transaction."""
        try:
            entries = summary["ledger_entries"]
            postings, imbalance = _postings(entries)
            date = self._date(summary, entries)
            narration = (
                f"{summary['event']} order {summary['order_id']} version {summary['order_version']}"
            )
            key = str(summary["idempotency_key"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise NotBookable(_what(error)) from None

        flag = "!" if imbalance else "*"
        lines = [
            f"{date.isoformat()} {flag} {_quoted(narration)}",
            f"  idempotency_key: {_quoted(key)}",
            f"  webhook_id: {_quoted(webhook_id)}",
            f"  order_id: {_quoted(str(summary['order_id']))}",
            *postings,
        ]
        for currency, difference in sorted(imbalance.items()):
            lines.append(f"  {OUTSIDE_ACCOUNT}  {-difference} {currency}")
            lines.append('    note: "the part of the event this registry does not take"')
        return lines

    def _date(self, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> dt.date:
        dates = {entry["date"] for entry in entries if entry.get("date")}
        if len(dates) == 1:
            return dt.date.fromisoformat(dates.pop())
        occurred_at = dt.datetime.fromisoformat(summary["occurred_at"])
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at has no time zone")
        return occurred_at.astimezone(self.timezone).date()


def _postings(
    entries: Sequence[Mapping[str, Any]],
) -> tuple[list[str], dict[str, Decimal]]:
    """The posting lines of summary entries, and what each currency is off balance by."""
    if not isinstance(entries, list) or not entries:
        raise ValueError("ledger_entries is empty or not a list")
    lines = []
    balance: dict[str, Decimal] = {}
    for entry in entries:
        account = BEANCOUNT_ACCOUNTS.get(entry["account"])
        if account is None:
            raise ValueError(f"unknown account {entry['account']!r}")
        currency = entry["currency"]
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
        metadata = [f"    description: {_quoted(str(entry['description']))}"]
        if entry.get("ledger_code") is not None:
            metadata.append(f"    ledger_code: {_quoted(str(entry['ledger_code']))}")

        for side, sign in (("debit", ""), ("credit", "-")):
            amount = _amount(entry[side], side)
            if amount == 0:
                continue
            lines.append(f"  {account}  {sign}{entry[side]} {currency}")
            lines.extend(metadata)
            balance[currency] = balance.get(currency, Decimal(0)) + (
                amount if side == "debit" else -amount
            )
    if not lines:
        raise ValueError("every amount is zero")
    imbalance = {currency: total for currency, total in balance.items() if total != 0}
    return lines, imbalance


def _amount(text: object, side: str) -> Decimal:
    if not isinstance(text, str) or not _AMOUNT.fullmatch(text):
        raise ValueError(f"{side} {text!r} is not a decimal string")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{side} {text!r} is not a decimal string") from None


def _is_summary(payload: Any) -> bool:
    return isinstance(payload, dict) and "ledger_entries" in payload


def _idempotency_key(payload: Any) -> tuple[str, ...]:
    if isinstance(payload, dict) and isinstance(payload.get("idempotency_key"), str):
        return (payload["idempotency_key"],)
    return ()


def _quoted(text: str) -> str:
    """A beancount string: in double quotes, with quotes and backslashes escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


def _what(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"the field {error.args[0]!r} is missing"
    return str(error)


def _webhook(secret: str) -> Webhook:
    """The verifier of one `whsec_` secret; the message of a bad secret never shows it."""
    problem = ConfigurationError(
        "a --secret is not a webhook secret: give the registry's whsec_... secret"
    )
    if not secret.startswith(SECRET_PREFIX):
        raise problem
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise problem from None
    if not key:
        raise problem
    return Webhook(key)


# The HTTP server


def serve(receiver: Receiver, host: str = "127.0.0.1", port: int = 8787) -> ThreadingHTTPServer:
    """An HTTP server handing each POST to the receiver; call `serve_forever` on it (and
    `shutdown` from another thread to stop it). Port 0 takes a free port: see `server_port`."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "ledger-pipeline-receiver"

        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._answer(Reply(411, {"error": "send a Content-Length"}))
                return
            if int(length) > MAX_BODY_BYTES:
                self._answer(Reply(413, {"error": f"a body is at most {MAX_BODY_BYTES} bytes"}))
                return
            body = self.rfile.read(int(length))
            self._answer(receiver.receive(body, dict(self.headers.items())))

        def do_GET(self) -> None:  # noqa: N802
            self._answer(Reply(405, {"error": "POST deliveries here"}))

        def _answer(self, reply: Reply) -> None:
            content = json.dumps(reply.body).encode("utf-8")
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
