"""Standard Webhooks signatures and headers of a webhook attempt (pure: no I/O, no clock).

A payload's body bytes are built once; every attempt sends those bytes with the same
`webhook-id` and a fresh `webhook-timestamp` and `webhook-signature`. The signature is
`v1,` and the base64 of the HMAC-SHA256 of `<webhook-id>.<timestamp>.<body>` under the
secret's decoded key (https://www.standardwebhooks.com).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from ledger_pipeline.core.registry import MIN_SECRET_BYTES, SECRET_PREFIX
from ledger_pipeline.errors import MalformedSecret

SIGNATURE_VERSION = "v1"
WEBHOOK_ID_PREFIX = "msg_"


def webhook_id(idempotency_key: str) -> str:
    """The `webhook-id` of a payload: `msg_` and the 32 hex digits of its idempotency key.

    The key is a UUID (a registry's name and an event's id), so the id is stable across
    retries and replays, and a receiver can deduplicate on either header or body field.
    """
    try:
        key = uuid.UUID(idempotency_key)
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"idempotency key {idempotency_key!r} is not a UUID") from None
    return WEBHOOK_ID_PREFIX + key.hex


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature `v1,<base64>` of one attempt under one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per secret, space-separated (the current
    secret and, during a rotation, the previous one), so a receiver holding either verifies."""
    if isinstance(secrets, str) or not secrets:
        raise MalformedSecret("a webhook is signed with a sequence of at least one secret")
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)


def webhook_headers(
    msg_id: str, body: bytes, secrets: Sequence[str], timestamp: int
) -> dict[str, str]:
    """Every header of one attempt: content type, the three Standard Webhooks headers and
    the user agent. `timestamp` is the attempt's moment in whole seconds since the epoch."""
    return {
        "content-type": "application/json",
        "user-agent": user_agent(),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }


@functools.cache
def user_agent() -> str:
    """`ledger-pipeline/<version>` of the installed package."""
    try:
        installed = version("ledger_pipeline")
    except PackageNotFoundError:
        installed = "unknown"
    return f"ledger-pipeline/{installed}"


def _key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; the message never shows the secret."""
    problem = (
        f"a webhook secret must be {SECRET_PREFIX!r} followed by the base64 of at least "
        f"{MIN_SECRET_BYTES} bytes"
    )
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise MalformedSecret(problem)
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSecret(problem) from None
    if len(key) < MIN_SECRET_BYTES:
        raise MalformedSecret(problem)
    return key
