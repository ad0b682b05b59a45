"""HMAC-SHA256 signing of record values, with key rotation.

The signature covers the exact value bytes, so it must be computed after encoding and checked before
decoding. Several keys may be configured: the first signs, every one verifies — rotate by prepending a
new key, deploying everywhere, then dropping the old one. Key material never appears in reprs, errors or
logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from schemas._internal.errors import ContractError, SignatureError

__all__ = [
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "Headers",
    "Keyring",
    "SignatureCheck",
    "SignatureStatus",
    "SigningMode",
    "enforce_signature",
]

SIGNATURE_HEADER = "x-cf-signature"
KEY_ID_HEADER = "x-cf-key-id"
_PREFIX = "sha256="
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SIGNATURE_LENGTH = len(_PREFIX) + 64
_NAMES = frozenset({SIGNATURE_HEADER, KEY_ID_HEADER})

Headers = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None
"""Kafka headers as confluent-kafka returns them (list of pairs, possibly None) or a mapping."""

log = logging.getLogger("schemas.signing")


class SignatureStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    UNKNOWN_KEY = "unknown_key"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Outcome of verifying one record: never raises, the policy decides what to do with it."""

    status: SignatureStatus
    key_id: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is SignatureStatus.OK

    def __bool__(self) -> bool:
        return self.ok


class SigningMode(StrEnum):
    """PRODUCTION rejects unverifiable records (→ DLQ); DEVELOPMENT logs a warning and processes them."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"


class _HmacSha256:
    """HMAC-SHA256 keyed once: the stdlib `hmac` object is built per key and copied per record.

    Copying the keyed object skips re-deriving the padded key states on every call, which roughly
    halves the cost per record; every produced and consumed record is signed or verified.
    """

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes) -> None:
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def hexdigest(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "_HmacSha256(<secret>)"


class Keyring:
    """Named HMAC keys; the first one signs, all of them verify."""

    __slots__ = ("_keys", "_ok")

    def __init__(self, keys: Iterable[tuple[str, bytes | str]] = ()) -> None:
        ordered: dict[str, _HmacSha256] = {}
        for position, (key_id, secret) in enumerate(keys, start=1):
            if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
                raise ContractError(f"key {position}: key id must match {_KEY_ID.pattern}", field="keyring")
            if key_id in ordered:
                raise ContractError(f"key id {key_id!r} appears twice", field="keyring")
            material = secret.encode() if isinstance(secret, str) else bytes(secret)
            if not material:
                raise ContractError(f"key {key_id!r} has an empty secret", field="keyring")
            ordered[key_id] = _HmacSha256(material)
        self._keys = ordered
        self._ok = {key_id: SignatureCheck(SignatureStatus.OK, key_id) for key_id in ordered}

    @classmethod
    def parse(cls, config: str) -> Keyring:
        """Build from ``"kid:secret,kid2:secret2"`` (first = signing key). Blank → empty keyring."""
        pairs: list[tuple[str, str]] = []
        for position, item in enumerate((config or "").split(","), start=1):
            item = item.strip()
            if not item:
                continue
            key_id, sep, secret = item.partition(":")
            if not sep:
                # Never echo the entry: a missing colon may mean it is a bare secret.
                raise ContractError(f"entry {position} is not of the form kid:secret", field="keyring")
            pairs.append((key_id.strip(), secret.strip()))
        return cls(pairs)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @property
    def signing_key_id(self) -> str | None:
        return next(iter(self._keys), None)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={list(self._keys)!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Keyring holds secrets and cannot be pickled")

    def sign(self, value: bytes) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the signature of `value` with the first key."""
        key_id = self.signing_key_id
        if key_id is None:
            raise SignatureError("no signing key configured", field="keyring")
        digest = self._keys[key_id].hexdigest(_as_bytes(value))
        return [(SIGNATURE_HEADER, f"{_PREFIX}{digest}".encode()), (KEY_ID_HEADER, key_id.encode())]

    def verify(self, value: bytes, headers: Headers) -> SignatureCheck:
        """Check `value` against its signature headers. Never raises for any header content."""
        signatures, key_ids = _signature_headers(headers)
        return self.verify_found(value, signatures, key_ids)

    def verify_found(self, value: bytes, signatures: list[str], key_ids: list[str]) -> SignatureCheck:
        """`verify` for a caller that already picked the signature and key-id header values out of
        the headers (stripped text, in header order) — the consumer does so in the one pass over the
        headers that also finds `traceparent`. Never raises."""
        if not signatures:
            return SignatureCheck(SignatureStatus.MISSING, None, "no x-cf-signature header")
        if len(key_ids) != 1:
            if not key_ids:
                return SignatureCheck(SignatureStatus.MISSING, None, "no x-cf-key-id header")
            return SignatureCheck(SignatureStatus.MISMATCH, None, "several x-cf-key-id headers")
        key_id = key_ids[0]
        if len(signatures) > 1:
            return SignatureCheck(
                SignatureStatus.MISMATCH, _printable(key_id), "several x-cf-signature headers"
            )
        key = self._keys.get(key_id)
        if key is None:
            return SignatureCheck(SignatureStatus.UNKNOWN_KEY, _printable(key_id), "key id not in keyring")
        provided = signatures[0]
        if len(provided) != _SIGNATURE_LENGTH or not provided.startswith(_PREFIX):
            return SignatureCheck(SignatureStatus.MISMATCH, key_id, "malformed x-cf-signature header")
        try:
            payload = value if type(value) is bytes else _as_bytes(value)
        except (TypeError, ValueError):
            return SignatureCheck(SignatureStatus.MISMATCH, key_id, "record value is not bytes")
        expected = _PREFIX + key.hexdigest(payload)
        if hmac.compare_digest(expected, provided):
            return self._ok[key_id]
        return SignatureCheck(SignatureStatus.MISMATCH, key_id, "signature does not match value")


def enforce_signature(
    check: SignatureCheck, mode: SigningMode | str, *, context: str = "", logger: logging.Logger | None = None
) -> SignatureCheck:
    """Apply the signing policy: OK passes; otherwise PRODUCTION raises `SignatureError` (reject to the
    DLQ) and DEVELOPMENT logs a warning and lets the record through. Returns `check` when it passes."""
    if check.ok:
        return check
    where = f" ({context})" if context else ""
    reason = f"signature {check.status.value}: {check.detail}{where}"
    if SigningMode(mode) is SigningMode.PRODUCTION:
        raise SignatureError(reason, field=SIGNATURE_HEADER, check=check)
    (logger or log).warning(
        "processing unverified record in development mode: %s (key id %s)", reason, check.key_id
    )
    return check


def _signature_headers(headers: Headers) -> tuple[list[str], list[str]]:
    """(signature values, key id values) from any header shape; junk entries are skipped."""
    signatures: list[str] = []
    key_ids: list[str] = []
    if not headers:
        return signatures, key_ids
    try:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for item in items:
            key, raw = item
            if raw is None or not isinstance(key, str):
                continue
            name = key if key in _NAMES else key.lower()
            if name == SIGNATURE_HEADER:
                bucket = signatures
            elif name == KEY_ID_HEADER:
                bucket = key_ids
            else:
                continue
            text = raw if isinstance(raw, str) else bytes(raw).decode("ascii", errors="replace")
            bucket.append(text.strip())
    except (TypeError, ValueError):
        pass
    return signatures, key_ids


def _as_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if value is None:
        return b""
    return bytes(value)  # type: ignore[call-overload]


def _printable(text: str, limit: int = 64) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean[:limit]
