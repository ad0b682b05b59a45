"""Per-service signing keys: rotation, a signed timestamp, timing-safe verification, who may sign what,
Ed25519, and the production/development policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import pickle

import pytest

import schemas
from schemas import (
    ContractError,
    Keyring,
    Service,
    SignatureError,
    SignatureStatus,
    SigningMode,
    UnauthorizedSignerError,
    encode,
    enforce_signature,
)
from schemas.examples import example_event

EVENT = example_event("order.created")
VALUE = encode(EVENT)
KEYS = "order/o2:secret2,order/o1:secret1,billing/b1:bsecret"
STAMP = 1_796_000_000_000
STAMPED = ("x-cf-signed-at", str(STAMP).encode())


def test_sign_produces_hmac_sha256_over_the_signed_time_and_value_with_the_services_first_key() -> None:
    ring = Keyring.parse(KEYS).as_signer("order")
    headers = dict(ring.sign(VALUE, signed_at_ms=STAMP))
    expected = hmac.new(b"secret2", f"{STAMP}\n".encode() + VALUE, hashlib.sha256).hexdigest()
    assert headers == {"x-cf-signature": f"sha256={expected}".encode(), "x-cf-key-id": b"o2",
                       "x-cf-signed-at": str(STAMP).encode()}
    check = ring.verify(VALUE, headers)
    assert check.ok and check.service is Service.ORDER and check.signed_at_ms == STAMP


def test_a_keyring_signs_only_as_its_service_and_only_that_services_types() -> None:
    ring = Keyring.parse(KEYS)
    with pytest.raises(SignatureError, match="no signing service"):
        ring.sign(VALUE)
    with pytest.raises(SignatureError, match="no signing key of service provisioning"):
        ring.as_signer("provisioning")
    billing = ring.as_signer(Service.BILLING)
    assert billing.signing_key_id == "b1"
    with pytest.raises(SignatureError, match="billing may not sign order.created: its publisher is order"):
        billing.sign(VALUE, event_type="order.created")
    assert (billing.verify(VALUE, billing.sign(VALUE, event_type="billing.refund-completed")).service
            is Service.BILLING)


def test_all_keys_of_a_service_verify_for_rotation() -> None:
    old = Keyring.parse("order/o1:secret1").as_signer("order")
    rotated = Keyring.parse("order/o2:secret2, order/o1:secret1").as_signer("order")
    assert rotated.verify(VALUE, old.sign(VALUE)).status is SignatureStatus.OK
    assert rotated.verify(VALUE, rotated.sign(VALUE)).key_id == "o2"
    assert old.verify(VALUE, rotated.sign(VALUE)).status is SignatureStatus.UNKNOWN_KEY


def test_a_value_only_signature_without_a_signed_time_is_not_a_signature() -> None:
    legacy = "sha256=" + hmac.new(b"secret1", VALUE, hashlib.sha256).hexdigest()
    check = Keyring.parse(KEYS).verify(VALUE, [("x-cf-signature", legacy), ("x-cf-key-id", "o1")])
    assert check.status is SignatureStatus.MISSING and check.detail == "no x-cf-signed-at header"


def test_junk_signature_text_is_a_mismatch_never_an_exception() -> None:
    ring = Keyring.parse(KEYS + ",billing/ed:ed25519:" + "A" * 43)
    stamp = ("x-cf-signed-at", b"1")
    for value in (b"sha256=\xff", "sha256=ä" + "0" * 63, b"ed25519=\xff\xfe", "ed25519=ü"):
        for kid in (b"o1", b"ed"):
            check = ring.verify(VALUE, [("x-cf-signature", value), ("x-cf-key-id", kid), stamp])
            assert check.status is SignatureStatus.MISMATCH


def test_one_secret_under_two_services_is_refused() -> None:
    with pytest.raises(ContractError, match="are the same secret"):
        Keyring.parse("order/o1:shared,billing/b1:shared")
    assert len(Keyring.parse("order/o1:shared,order/o2:shared")) == 2  # one service's own rotation


def test_the_signed_time_cannot_be_changed_or_dropped() -> None:
    ring = Keyring.parse(KEYS).as_signer("order")
    headers = ring.sign(VALUE, signed_at_ms=STAMP)
    later = [(k, str(STAMP + 86_400_000).encode()) if k == "x-cf-signed-at" else (k, v) for k, v in headers]
    dropped = [(k, v) for k, v in headers if k != "x-cf-signed-at"]
    doubled = headers + [("x-cf-signed-at", b"1")]
    junk = [(k, b"12ab") if k == "x-cf-signed-at" else (k, v) for k, v in headers]
    for forged in (later, doubled, junk):
        assert ring.verify(VALUE, forged).status is SignatureStatus.MISMATCH
    assert ring.verify(VALUE, dropped).status is SignatureStatus.MISSING


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (None, SignatureStatus.MISSING),
        ([], SignatureStatus.MISSING),
        ([("x-cf-key-id", b"o1")], SignatureStatus.MISSING),
        ([("x-cf-signature", b"sha256=" + b"0" * 64)], SignatureStatus.MISSING),
        ([("x-cf-signature", b"sha256=" + b"0" * 64), ("x-cf-key-id", b"o1"), STAMPED],
         SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"md5=abc"), ("x-cf-key-id", b"o1"), STAMPED], SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"ed25519=abc"), ("x-cf-key-id", b"o1"), STAMPED], SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"\xff\xfe"), ("x-cf-key-id", b"o1"), STAMPED], SignatureStatus.MISMATCH),
        ([("x-cf-signature", b"sha256=" + b"0" * 64), ("x-cf-key-id", b"nope")], SignatureStatus.UNKNOWN_KEY),
        ([("x-cf-signature", None), ("x-cf-key-id", b"o1")], SignatureStatus.MISSING),
    ],
)
def test_verify_statuses(headers: object, status: SignatureStatus) -> None:
    check = Keyring.parse(KEYS).verify(VALUE, headers)  # type: ignore[arg-type]
    assert check.status is status
    assert not check.ok and not check and check.service is None


def test_tampered_value_or_signature_is_a_mismatch() -> None:
    ring = Keyring.parse(KEYS).as_signer("order")
    headers = ring.sign(VALUE)
    assert ring.verify(VALUE, headers).ok
    assert ring.verify(VALUE.replace(b"acme-corp", b"evil-corp"), headers).status is SignatureStatus.MISMATCH
    flipped = [
        (k, v[:-1] + (b"0" if v[-1:] != b"0" else b"1")) if k == "x-cf-signature" else (k, v)
        for k, v in headers
    ]
    assert ring.verify(VALUE, flipped).status is SignatureStatus.MISMATCH


def test_verify_accepts_mapping_and_str_headers_and_duplicate_headers_are_suspicious() -> None:
    ring = Keyring.parse(KEYS).as_signer("order")
    headers = ring.sign(VALUE)
    assert ring.verify(VALUE, {k: v.decode() for k, v in headers}).ok
    assert ring.verify(VALUE, headers + [("unrelated", b"x")]).ok
    doubled = headers + [("x-cf-signature", headers[0][1])]
    assert ring.verify(VALUE, doubled).status is SignatureStatus.MISMATCH


def test_verify_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("schemas._internal.keys.hmac.compare_digest", spy)
    ring = Keyring.parse(KEYS).as_signer("order")
    assert ring.verify(VALUE, ring.sign(VALUE)).ok
    assert len(calls) == 1


def test_keys_never_leak_into_repr_errors_or_pickles() -> None:
    ring = Keyring.parse("order/k2:topsecret-2,order/k1:topsecret-1")
    assert "topsecret" not in repr(ring) and "topsecret" not in str(ring)
    assert repr(ring) == "Keyring(key_ids=['k2', 'k1'])"
    assert repr(ring.as_signer("order")) == "Keyring(key_ids=['k2', 'k1'], signer='order')"
    with pytest.raises(TypeError):
        pickle.dumps(ring)
    for bad in ("order/k1:ok,just-a-bare-topsecret", "order/k1:ok,topsecret:x", "nobody/k:topsecret"):
        with pytest.raises(ContractError) as info:
            Keyring.parse(bad)
        assert "topsecret" not in str(info.value)
    check = Keyring.parse("order/k1:topsecret-1").verify(VALUE, [("x-cf-signature", b"x"),
                                                                 ("x-cf-key-id", b"k1")])
    assert "topsecret" not in repr(check)


def test_parse_validation() -> None:
    assert len(Keyring.parse("")) == 0
    assert Keyring.parse(" order / k1 : s1 ,, ").key_ids == ("k1",)
    signer = Keyring.parse("order/k1:a:b").as_signer("order")
    assert Keyring.parse("order/k1:hmac:a:b").verify(b"v", signer.sign(b"v")).ok
    for bad in ("order/k1:", "order/:secret", "order/k1:a,order/k1:b", "order/k1:a,billing/k1:b",
                "order/bad id:x", "k1:secret", "nobody/k1:x", "order/k1:ed25519:xyz"):
        with pytest.raises(ContractError):
            Keyring.parse(bad)
    ring = Keyring.from_file_text("# comment\norder/k1:s1\n\nbilling/b1:s2\n")
    assert ring.key_ids == ("k1", "b1") and ring.owner_of("b1") is Service.BILLING


def test_ed25519_signs_with_the_private_key_and_verifies_with_the_public_one() -> None:
    private = schemas.generate_entry("billing", "b-ed", schemas.Algorithm.ED25519)
    public = schemas.public_entry(private)
    assert private.split(":", 1)[1] not in public
    signer = Keyring.parse(private).as_signer("billing")
    headers = signer.sign(VALUE)
    assert dict(headers)["x-cf-signature"].startswith(b"ed25519=")
    verifier = Keyring.parse(public)
    check = verifier.verify(VALUE, headers)
    assert check.ok and check.service is Service.BILLING
    assert verifier.verify(VALUE + b" ", headers).status is SignatureStatus.MISMATCH
    with pytest.raises(SignatureError, match="no signing key of service billing"):
        verifier.as_signer("billing")  # a consumer holding the public key cannot forge billing's events
    raw = base64.urlsafe_b64decode(dict(headers)["x-cf-signature"][8:] + b"==")
    flipped = bytes([raw[0] ^ 1]) + raw[1:]
    forged = [(k, b"ed25519=" + base64.urlsafe_b64encode(flipped).rstrip(b"="))
              if k == "x-cf-signature" else (k, v)
              for k, v in headers]
    assert verifier.verify(VALUE, forged).status is SignatureStatus.MISMATCH
    with pytest.raises(ContractError, match="only Ed25519"):
        schemas.public_entry("billing/b1:shared")


def test_only_the_catalog_publisher_may_sign_an_event_type_and_producer_must_agree() -> None:
    ring = Keyring.parse("order/o1:s1,notification/n1:s2")
    refund = example_event("billing.refund-completed")
    value = encode(refund)
    forged = ring.as_signer("notification").sign(value)  # signed, but notification does not publish it
    check = ring.verify(value, forged)
    assert check.ok and check.service is Service.NOTIFICATION
    with pytest.raises(UnauthorizedSignerError) as info:
        schemas.authorize_signer(refund, check, SigningMode.PRODUCTION)
    assert info.value.field == "eventType"
    assert ("published by billing" in info.value.reason
            and "signed by notification (key n1)" in info.value.reason)
    assert isinstance(info.value, SignatureError)
    lying = refund.model_copy(update={"producer": "order-service"})
    assert schemas.signer_violation(EVENT.model_copy(update={"producer": "billing-service"}),
                                    ring.verify(VALUE, ring.as_signer("order").sign(VALUE)))[0] == "producer"
    assert schemas.signer_violation(EVENT, ring.verify(VALUE, ring.as_signer("order").sign(VALUE))) is None
    # unverified: the signature policy decides
    assert schemas.signer_violation(lying, ring.verify(value, [])) is None


def test_read_record_applies_the_signer_policy() -> None:
    ring = Keyring.parse("order/o1:s1,notification/n1:s2")
    record = schemas.build_record(EVENT, ring.as_signer("order"))
    assert schemas.read_record(record.value, record.headers, ring, SigningMode.PRODUCTION)[1].ok
    wrong = ring.as_signer("notification").sign(record.value)
    with pytest.raises(UnauthorizedSignerError):
        schemas.read_record(record.value, wrong, ring, SigningMode.PRODUCTION)
    envelope, check = schemas.read_record(record.value, wrong, ring, SigningMode.DEVELOPMENT)
    assert check.service is Service.NOTIFICATION and envelope.event_id == EVENT.event_id
    with pytest.raises(SignatureError):
        schemas.build_record(example_event("billing.refund-completed"), ring.as_signer("order"))


def test_production_mode_rejects(caplog: pytest.LogCaptureFixture) -> None:
    check = Keyring.parse(KEYS).verify(VALUE, [])
    with pytest.raises(SignatureError) as info:
        enforce_signature(check, SigningMode.PRODUCTION)
    assert info.value.check is check
    assert info.value.field == "x-cf-signature"
    assert isinstance(info.value, ContractError)


def test_development_mode_warns_and_processes(caplog: pytest.LogCaptureFixture) -> None:
    ring = Keyring.parse(KEYS).as_signer("order")
    bad = [("x-cf-signature", b"sha256=" + b"1" * 64), ("x-cf-key-id", b"o1"), STAMPED]
    with caplog.at_level(logging.WARNING, logger="schemas.signing"):
        check = enforce_signature(ring.verify(VALUE, bad), "development")
        schemas.authorize_signer(EVENT.model_copy(update={"producer": "x-service"}),
                                 ring.verify(VALUE, ring.sign(VALUE)), "development")
    assert check.status is SignatureStatus.MISMATCH
    assert "mismatch" in caplog.text and "secret1" not in caplog.text
    assert "disagrees with the signer order" in caplog.text
    good = ring.verify(VALUE, ring.sign(VALUE))
    assert enforce_signature(good, SigningMode.PRODUCTION) is good


def test_build_and_read_record_round_trip() -> None:
    ring = Keyring.parse("order/k1:secret1")
    event = example_event("billing.refund-requested", "v2")
    record = schemas.build_record(event, ring.as_signer("order"), env="prod")
    assert record.topic == "cloud-factory.prod.billing.refund-requested.v1"
    assert record.key == str(event.correlation_id).encode()
    names = [name for name, _ in record.headers]
    assert names[:3] == ["x-cf-signature", "x-cf-key-id", "x-cf-signed-at"] and "ce_id" in names
    decoded, check = schemas.read_record(record.value, record.headers, ring, SigningMode.PRODUCTION)
    assert check.ok and decoded.version == "v3" and decoded.event_id == event.event_id
    with pytest.raises(SignatureError):
        schemas.read_record(record.value + b" ", record.headers, ring, SigningMode.PRODUCTION)


@pytest.mark.parametrize(
    "secret", ["k", "x" * 63, "y" * 64, "z" * 65, "päss" * 30]
)
@pytest.mark.parametrize("value", [b"", b"{}", VALUE, VALUE * 20])
def test_signature_equals_stdlib_hmac_for_all_key_lengths(secret: str, value: bytes) -> None:
    ring = Keyring.parse(f"order/k:{secret}").as_signer("order")
    expected = "sha256=" + hmac.new(secret.encode(), f"{STAMP}\n".encode() + value,
                                    hashlib.sha256).hexdigest()
    assert dict(ring.sign(value, signed_at_ms=STAMP))["x-cf-signature"].decode() == expected
    assert ring.verify(value, [("x-cf-signature", expected), ("x-cf-key-id", "k"),
                               ("x-cf-signed-at", str(STAMP))]).ok
