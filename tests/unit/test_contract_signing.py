"""HMAC signing with rotation, timing-safe verification and the production/development policy."""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle

import pytest

import schemas
from schemas import (
    ContractError,
    Keyring,
    SignatureError,
    SignatureStatus,
    SigningMode,
    encode,
    enforce_signature,
)
from schemas.examples import example_event

VALUE = encode(example_event("order.created"))


def test_sign_produces_hmac_sha256_headers_with_the_first_key() -> None:
    ring = Keyring.parse("k2:secret2,k1:secret1")
    headers = dict(ring.sign(VALUE))
    expected = hmac.new(b"secret2", VALUE, hashlib.sha256).hexdigest()
    assert headers == {"x-cf-signature": f"sha256={expected}".encode(), "x-cf-key-id": b"k2"}


def test_all_keys_verify_for_rotation() -> None:
    old = Keyring.parse("k1:secret1")
    rotated = Keyring.parse("k2:secret2, k1:secret1")
    assert rotated.verify(VALUE, old.sign(VALUE)).status is SignatureStatus.OK
    assert rotated.verify(VALUE, rotated.sign(VALUE)).key_id == "k2"
    assert old.verify(VALUE, rotated.sign(VALUE)).status is SignatureStatus.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (None, SignatureStatus.MISSING),
        ([], SignatureStatus.MISSING),
        ([("x-cf-key-id", b"k1")], SignatureStatus.MISSING),
        ([("x-cf-signature", b"sha256=" + b"0" * 64)], SignatureStatus.MISSING),
        ([("x-cf-signature", b"sha256=" + b"0" * 64), ("x-cf-key-id", b"k1")], SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"md5=abc"), ("x-cf-key-id", b"k1")], SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"\xff\xfe"), ("x-cf-key-id", b"k1")], SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"sha256=" + b"0" * 64), ("x-cf-key-id", b"nope")], SignatureStatus.UNKNOWN_KEY),
        ([("x-cf-signature", None), ("x-cf-key-id", b"k1")], SignatureStatus.MISSING),
    ],
)
def test_verify_statuses(headers: object, status: SignatureStatus) -> None:
    check = Keyring.parse("k1:secret1").verify(VALUE, headers)  # type: ignore[arg-type]
    assert check.status is status
    assert not check.ok and not check


def test_tampered_value_or_signature_is_a_mismatch() -> None:
    ring = Keyring.parse("k1:secret1")
    headers = ring.sign(VALUE)
    assert ring.verify(VALUE, headers).ok
    assert ring.verify(VALUE.replace(b"acme-corp", b"evil-corp"), headers).status is SignatureStatus.MISMATCH
    flipped = [
        (k, v[:-1] + (b"0" if v[-1:] != b"0" else b"1")) if k == "x-cf-signature" else (k, v)
        for k, v in headers
    ]
    assert ring.verify(VALUE, flipped).status is SignatureStatus.MISMATCH


def test_verify_accepts_mapping_and_str_headers_and_duplicate_headers_are_suspicious() -> None:
    ring = Keyring.parse("k1:secret1")
    headers = ring.sign(VALUE)
    assert ring.verify(VALUE, {k: v.decode() for k, v in headers}).ok
    assert ring.verify(VALUE, headers + [("unrelated", b"x")]).ok
    doubled = headers + [("x-cf-signature", headers[0][1])]
    assert ring.verify(VALUE, doubled).status is SignatureStatus.MISMATCH


def test_verify_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("schemas._internal.signing.hmac.compare_digest", spy)
    ring = Keyring.parse("k1:secret1")
    assert ring.verify(VALUE, ring.sign(VALUE)).ok
    assert len(calls) == 1


def test_keys_never_leak_into_repr_errors_or_pickles() -> None:
    ring = Keyring.parse("k2:topsecret-2,k1:topsecret-1")
    assert "topsecret" not in repr(ring) and "topsecret" not in str(ring)
    assert repr(ring) == "Keyring(key_ids=['k2', 'k1'])"
    with pytest.raises(TypeError):
        pickle.dumps(ring)
    with pytest.raises(ContractError) as info:
        Keyring.parse("k1:ok,just-a-bare-topsecret")
    assert "topsecret" not in str(info.value)
    check = Keyring.parse("k1:topsecret-1").verify(VALUE, [("x-cf-signature", b"x"), ("x-cf-key-id", b"k1")])
    assert "topsecret" not in repr(check)


def test_parse_validation() -> None:
    assert len(Keyring.parse("")) == 0
    assert Keyring.parse(" k1 : s1 ,, ").key_ids == ("k1",)
    assert Keyring.parse("k1:a:b").verify(b"v", Keyring([("k1", "a:b")]).sign(b"v")).ok
    for bad in ("k1:", ":secret", "k1:a,k1:b", "bad id:x"):
        with pytest.raises(ContractError):
            Keyring.parse(bad)


def test_empty_keyring_cannot_sign() -> None:
    with pytest.raises(SignatureError):
        Keyring.parse("").sign(VALUE)


def test_production_mode_rejects(caplog: pytest.LogCaptureFixture) -> None:
    check = Keyring.parse("k1:secret1").verify(VALUE, [])
    with pytest.raises(SignatureError) as info:
        enforce_signature(check, SigningMode.PRODUCTION)
    assert info.value.check is check
    assert info.value.field == "x-cf-signature"
    assert isinstance(info.value, ContractError)


def test_development_mode_warns_and_processes(caplog: pytest.LogCaptureFixture) -> None:
    ring = Keyring.parse("k1:secret1")
    bad = [("x-cf-signature", b"sha256=" + b"1" * 64), ("x-cf-key-id", b"k1")]
    with caplog.at_level(logging.WARNING, logger="schemas.signing"):
        check = enforce_signature(ring.verify(VALUE, bad), "development")
    assert check.status is SignatureStatus.MISMATCH
    assert "mismatch" in caplog.text and "secret1" not in caplog.text
    good = ring.verify(VALUE, ring.sign(VALUE))
    assert enforce_signature(good, SigningMode.PRODUCTION) is good


def test_build_and_read_record_round_trip() -> None:
    ring = Keyring.parse("k1:secret1")
    event = example_event("billing.refund-requested", "v2")
    record = schemas.build_record(event, ring, env="prod")
    assert record.topic == "cloud-factory.prod.billing.refund-requested.v1"
    assert record.key == str(event.correlation_id).encode()
    names = [name for name, _ in record.headers]
    assert names[:2] == ["x-cf-signature", "x-cf-key-id"] and "ce_id" in names
    decoded, check = schemas.read_record(record.value, record.headers, ring, SigningMode.PRODUCTION)
    assert check.ok and decoded.version == "v3" and decoded.event_id == event.event_id
    with pytest.raises(SignatureError):
        schemas.read_record(record.value + b" ", record.headers, ring, SigningMode.PRODUCTION)


@pytest.mark.parametrize(
    "secret", [b"k", b"x" * 63, b"y" * 64, b"z" * 65, b"\x00\xff" * 100, "päss".encode()]
)
@pytest.mark.parametrize("value", [b"", b"{}", VALUE, VALUE * 20])
def test_signature_equals_stdlib_hmac_for_all_key_lengths(secret: bytes, value: bytes) -> None:
    ring = Keyring([("k", secret)])
    expected = "sha256=" + hmac.new(secret, value, hashlib.sha256).hexdigest()
    assert dict(ring.sign(value))["x-cf-signature"].decode() == expected
    assert ring.verify(value, [("x-cf-signature", expected), ("x-cf-key-id", "k")]).ok
