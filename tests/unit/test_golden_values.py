"""Fixed expectations: ids, keys, delays and one signed record pinned to literal values.

Every expected value below was computed once, outside the code under test (Python's `hashlib`,
`hmac` and `uuid` from the standard library over the documented formulas; the stable id of ``"a"``
by hand from the well-known SHA-256 test vector of ``"a"``), and pasted here as a literal. None is
produced by the function it checks. A change of any formula — namespace, separator, bit layout,
concatenation order, profile numbers, the signed bytes — changes a deployed system's ids, keys or
signatures (duplicate suppression across a deploy, the bridge's flow check, verification of records
already on the topics), so it must fail one of these tests first.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

import schemas
from messaging.idempotency import idempotency_key
from messaging.retry import PROFILES
from schemas import Keyring, SignatureStatus
from workflows.contracts import correlation_id_for, order_workflow_id, step_event_id

# --------------------------------------------------------------------------- stable_event_id
# uuid(sha256("\x1f".join(parts))[:16]) with the version nibble set to 4 and the RFC 4122 variant.


@pytest.mark.parametrize(("parts", "expected"), [
    (("order-acme-1", "order-created"), "cfee8323-9341-409b-a990-5d2984ce1bdf"),
    (("order-acme-1", "provisioning-started"), "bcc1e480-3854-4943-ada7-3f2d01e58efb"),
    (("order-globex-42", "completed"), "d7b36cd4-1b25-4b62-b951-b123a0148ef7"),
    # By hand: sha256("a") = ca978112 ca1b bdca fac2 31b39a23dc4d a786…; byte 6 0xbd → 0x4d (version 4),
    # byte 8 0xfa → 0xba (variant 10xx).
    (("a",), "ca978112-ca1b-4dca-bac2-31b39a23dc4d"),
])
def test_stable_event_id_golden(parts: tuple[str, ...], expected: str) -> None:
    got = schemas.stable_event_id(*parts)
    assert got == uuid.UUID(expected)
    assert str(got) == expected and got.version == 4 and got.variant == uuid.RFC_4122


# --------------------------------------------------------------------------- the saga's ids


@pytest.mark.parametrize(("workflow_id", "expected"), [
    ("order-acme-1", "2f6e977a-84e7-59d4-98cb-c5f776f75853"),
    ("order-globex-42", "897c195a-f59d-5fb0-ae4f-d98408e90e9c"),
])
def test_correlation_id_for_golden(workflow_id: str, expected: str) -> None:
    """uuid5 of the namespace 6f1c7a8e-3c1b-4b7e-9d1e-2a4f0c9b5e10 and the workflow id."""
    assert correlation_id_for(workflow_id) == expected
    assert uuid.UUID(expected).version == 5


def test_order_workflow_id_golden() -> None:
    assert order_workflow_id("acme", "1") == "order-acme-1"


def test_step_event_id_golden() -> None:
    """The event id of a saga step is the stable id of (workflow id, step)."""
    assert step_event_id("order-acme-1", "payment-confirmed") == "5b8095c8-937c-4b47-8685-ba29983e5d05"
    assert step_event_id("order-acme-1", "provisioning-started") == "bcc1e480-3854-4943-ada7-3f2d01e58efb"


# --------------------------------------------------------------------------- idempotency key

GOLDEN_EVENT_ID = "cfee8323-9341-409b-a990-5d2984ce1bdf"  # stable id of order-acme-1 / order-created
GOLDEN_CORRELATION_ID = "2f6e977a-84e7-59d4-98cb-c5f776f75853"  # correlation id of order-acme-1
GOLDEN_IDEMPOTENCY_KEY = "12e70b5f486087a04c54c71afecd5b61f6f775041878b24af23da847d94fe709"


def test_idempotency_key_golden() -> None:
    """Key = sha256(eventId + correlationId + handler) as lowercase hex, the ids in canonical text form,
    no separators: the documented formula, recomputed here, and the literal it gives."""
    documented = hashlib.sha256(
        (GOLDEN_EVENT_ID + GOLDEN_CORRELATION_ID + "billing").encode("utf-8")).hexdigest()
    assert documented == GOLDEN_IDEMPOTENCY_KEY
    assert idempotency_key(GOLDEN_EVENT_ID, GOLDEN_CORRELATION_ID, "billing") == GOLDEN_IDEMPOTENCY_KEY
    # UUID objects give the same key as their text (the consumer passes UUIDs)
    assert idempotency_key(uuid.UUID(GOLDEN_EVENT_ID), uuid.UUID(GOLDEN_CORRELATION_ID),
                           "billing") == GOLDEN_IDEMPOTENCY_KEY


# --------------------------------------------------------------------------- retry delays


@pytest.mark.parametrize(("profile", "retries", "delays"), [
    # README: critical 5 retries 0.5 s…60 s, default 3 retries 1 s…30 s, non-critical 2 retries 2 s…10 s;
    # delay = initial × 2^(n−1), capped.
    (schemas.RetryProfile.CRITICAL, 5, [0.5, 1.0, 2.0, 4.0, 8.0]),
    (schemas.RetryProfile.DEFAULT, 3, [1.0, 2.0, 4.0]),
    (schemas.RetryProfile.NON_CRITICAL, 2, [2.0, 4.0]),
])
def test_retry_delays_golden(profile: schemas.RetryProfile, retries: int, delays: list[float]) -> None:
    policy = PROFILES[profile]
    assert policy.retries == retries
    assert [policy.delay(n) for n in range(1, retries + 1)] == delays
    assert policy.allows(retries) and not policy.allows(retries + 1)


@pytest.mark.parametrize(("profile", "later"), [
    # retry n → delay, beyond the budget, to pin the caps
    (schemas.RetryProfile.CRITICAL, {6: 16.0, 7: 32.0, 8: 60.0, 20: 60.0}),
    (schemas.RetryProfile.DEFAULT, {4: 8.0, 5: 16.0, 6: 30.0, 10: 30.0}),
    (schemas.RetryProfile.NON_CRITICAL, {3: 8.0, 4: 10.0, 9: 10.0}),
])
def test_retry_caps_golden(profile: schemas.RetryProfile, later: dict[int, float]) -> None:
    assert {n: PROFILES[profile].delay(n) for n in later} == later


# --------------------------------------------------------------------------- one signed record

GOLDEN_KEYS = "order/golden-1:golden-secret-1"
GOLDEN_SIGNED_AT_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GOLDEN_VALUE = (
    b'{"eventId":"cfee8323-9341-409b-a990-5d2984ce1bdf","eventType":"order.created","version":"v3",'
    b'"tenantId":"acme","correlationId":"2f6e977a-84e7-59d4-98cb-c5f776f75853","causationId":null,'
    b'"actor":{"id":"order-service","type":"service"},"occurredAt":"2026-01-01T00:00:00Z",'
    b'"producer":"order-service","data":{"orderId":"golden-1"}}'
)
# HMAC-SHA256(b"golden-secret-1", b"1767225600000\n" + GOLDEN_VALUE), hex, computed once with the stdlib.
GOLDEN_SIGNATURE = b"sha256=ac5346a097491a879f522034c0bdb5f12a3ce15859f248c929eec469f1c9971b"


def test_signed_record_golden() -> None:
    ring = Keyring.parse(GOLDEN_KEYS).as_signer("order")
    headers = ring.sign(GOLDEN_VALUE, signed_at_ms=GOLDEN_SIGNED_AT_MS)
    assert headers == [
        ("x-cf-signature", GOLDEN_SIGNATURE),
        ("x-cf-key-id", b"golden-1"),
        ("x-cf-signed-at", b"1767225600000"),
    ]
    # the documented signed bytes, recomputed with the standard library
    documented = hmac.new(b"golden-secret-1", b"1767225600000\n" + GOLDEN_VALUE, hashlib.sha256).hexdigest()
    assert GOLDEN_SIGNATURE == f"sha256={documented}".encode()


def test_signed_record_golden_verifies_and_names_its_signer() -> None:
    """The literal record verifies with a keyring holding only the key (no signer bound), and any
    change of the time, a byte of the value or the signature is a mismatch."""
    ring = Keyring.parse(GOLDEN_KEYS)
    headers = [("x-cf-signature", GOLDEN_SIGNATURE), ("x-cf-key-id", b"golden-1"),
               ("x-cf-signed-at", b"1767225600000")]
    check = ring.verify(GOLDEN_VALUE, headers)
    assert check.status is SignatureStatus.OK
    assert check.service is schemas.Service.ORDER and check.key_id == "golden-1"
    assert check.signed_at_ms == GOLDEN_SIGNED_AT_MS
    later = [*headers[:2], ("x-cf-signed-at", b"1767225600001")]
    assert ring.verify(GOLDEN_VALUE, later).status is SignatureStatus.MISMATCH
    assert ring.verify(GOLDEN_VALUE.replace(b'"acme"', b'"acmf"'), headers).status is SignatureStatus.MISMATCH
    flipped = [("x-cf-signature", GOLDEN_SIGNATURE[:-1] + b"a"), *headers[1:]]
    assert ring.verify(GOLDEN_VALUE, flipped).status is SignatureStatus.MISMATCH
