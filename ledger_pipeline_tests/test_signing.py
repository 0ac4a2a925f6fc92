"""Standard Webhooks signing, checked against the LEDGER.md §7 test vector and verified by the
independent `standardwebhooks` package."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import standardwebhooks
import standardwebhooks.webhooks

from ledger_pipeline.core.payloads import idempotency_key
from ledger_pipeline.delivery.signing import (
    signature,
    signature_header,
    user_agent,
    webhook_headers,
    webhook_id,
)
from ledger_pipeline.errors import MalformedSecret

# LEDGER.md §7
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# Two secrets of 32 bytes each, written out (base64 of bytes 0..31 and of 32 times 0xff).
SECRET_A = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SECRET_B = "whsec_//////////////////////////////////////////8="
BODY = b'{"order_id": "2e7f2d6f", "ledger_entries": []}'


@pytest.fixture
def frozen_verifier_clock(monkeypatch):
    """Freezes the clock standardwebhooks checks timestamps against at the test vector's."""

    class FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.fromtimestamp(VECTOR_TIMESTAMP, tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", FrozenDatetime)


def test_the_ledger_test_vector_signs_to_its_signature():
    assert signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_test_vector_headers_verify_with_standardwebhooks(frozen_verifier_clock):
    headers = webhook_headers(VECTOR_ID, VECTOR_BODY, [VECTOR_SECRET], VECTOR_TIMESTAMP)

    assert headers["webhook-signature"] == VECTOR_SIGNATURE
    assert standardwebhooks.Webhook(VECTOR_SECRET).verify(VECTOR_BODY, headers) == {
        "test": 2432232314
    }


def test_headers_of_now_verify_with_standardwebhooks():
    msg_id = webhook_id("2e7f2d6f-0473-4935-8cfb-c11b2caa6dab")
    headers = webhook_headers(msg_id, BODY, [SECRET_A], int(time.time()))

    assert standardwebhooks.Webhook(SECRET_A).verify(BODY, headers) == {
        "order_id": "2e7f2d6f",
        "ledger_entries": [],
    }


def test_a_changed_body_does_not_verify():
    headers = webhook_headers("msg_1", BODY, [SECRET_A], int(time.time()))

    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET_A).verify(BODY.replace(b"[]", b"[1]"), headers)


def test_during_a_rotation_both_secrets_verify_and_no_other_does():
    headers = webhook_headers("msg_1", BODY, [SECRET_A, SECRET_B], int(time.time()))

    assert len(headers["webhook-signature"].split(" ")) == 2
    standardwebhooks.Webhook(SECRET_A).verify(BODY, headers)
    standardwebhooks.Webhook(SECRET_B).verify(BODY, headers)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(VECTOR_SECRET).verify(BODY, headers)


def test_the_signature_header_is_each_secrets_signature_in_order():
    header = signature_header([VECTOR_SECRET, SECRET_A], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    first, second = header.split(" ")
    assert first == VECTOR_SIGNATURE
    assert second.startswith("v1,") and second != VECTOR_SIGNATURE


def test_the_webhook_id_is_msg_and_the_idempotency_keys_hex_digits():
    assert (
        webhook_id("2e7f2d6f-0473-4935-8cfb-c11b2caa6dab") == "msg_2e7f2d6f047349358cfbc11b2caa6dab"
    )


def test_every_attempt_has_the_same_webhook_id_and_a_fresh_timestamp_and_signature():
    msg_id = webhook_id(idempotency_key("books", "evt_01HV7W3K5Q"))
    first = webhook_headers(msg_id, BODY, [SECRET_A], 1_700_000_000)
    retry = webhook_headers(
        webhook_id(idempotency_key("books", "evt_01HV7W3K5Q")), BODY, [SECRET_A], 1_700_000_300
    )

    assert first["webhook-id"] == retry["webhook-id"] == msg_id
    assert (first["webhook-timestamp"], retry["webhook-timestamp"]) == ("1700000000", "1700000300")
    assert first["webhook-signature"] != retry["webhook-signature"]


def test_the_headers_name_the_content_type_and_the_product():
    headers = webhook_headers("msg_1", BODY, [SECRET_A], 1_700_000_000)

    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == user_agent()
    assert user_agent().startswith("ledger-pipeline/0.")
    assert set(headers) == {
        "content-type",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no whsec_ prefix
        "whsec_not*base64*at*all*not*base64*at*all",
        "whsec_AAECAwQFBgcICQoLDA0ODw==",  # 16 bytes: too short
    ],
)
def test_a_malformed_secret_is_refused_without_showing_it(secret):
    with pytest.raises(MalformedSecret, match="whsec_") as refusal:
        signature(secret, "msg_1", 1_700_000_000, BODY)

    assert secret.removeprefix("whsec_") not in str(refusal.value)


def test_an_empty_secret_is_refused():
    with pytest.raises(MalformedSecret):
        signature("whsec_", "msg_1", 1_700_000_000, BODY)


def test_signing_needs_at_least_one_secret():
    with pytest.raises(MalformedSecret):
        signature_header([], "msg_1", 1_700_000_000, BODY)


def test_a_webhook_id_needs_a_uuid_key():
    with pytest.raises(ValueError, match="not a UUID"):
        webhook_id("evt_1")
