"""Signing of record values by services, with key rotation and a signed timestamp.

The signature covers the signing time and the exact value bytes, so it is computed after encoding
and checked before decoding. Every key belongs to one service (see `schemas._internal.keys`): a
keyring signs only when bound to its own service (`as_signer`) and only with that service's first
key; every key verifies, and a verified record names the service that signed it. Rotate by putting
a new key of a service first, deploying everywhere, then dropping the old one.

Wire format: ``x-cf-signature: sha256=<hex>`` (or ``ed25519=<base64url>``), ``x-cf-key-id``, and
``x-cf-signed-at`` (milliseconds since the epoch). The signed bytes are ``<signed-at>\n<value>``,
so neither the time nor the value can be changed or dropped without breaking the signature. A record
without ``x-cf-signed-at`` is unsigned (MISSING): accepting the value-only signatures of earlier
releases would give them a second signed format whose age nobody vouches for, and their keys (one
shared key for every service) cannot say who signed anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from schemas._internal.errors import ContractError, SignatureError
from schemas._internal.keys import KeyEntry, parse_entries
from schemas._internal.services import Service

__all__ = [
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "SIGNED_AT_HEADER",
    "Headers",
    "Keyring",
    "SignatureCheck",
    "SignatureStatus",
    "SigningMode",
    "enforce_signature",
]

SIGNATURE_HEADER = "x-cf-signature"
KEY_ID_HEADER = "x-cf-key-id"
SIGNED_AT_HEADER = "x-cf-signed-at"
_NAMES = frozenset({SIGNATURE_HEADER, KEY_ID_HEADER, SIGNED_AT_HEADER})
_MAX_SIGNATURE = 200

Headers = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None
"""Kafka headers as confluent-kafka returns them (list of pairs, possibly None) or a mapping."""

log = logging.getLogger("schemas.signing")


class SignatureStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    UNKNOWN_KEY = "unknown_key"
    MISMATCH = "mismatch"


# `check.ok` runs several times a consumed record; the member read through its class costs ~70 ns.
_OK = SignatureStatus.OK


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Outcome of verifying one record: never raises, the policy decides what to do with it.

    `service` is the signer (the owner of `key_id`) and `signed_at_ms` the signed time, when the
    signature verified."""

    status: SignatureStatus
    key_id: str | None = None
    detail: str = ""
    service: Service | None = None
    signed_at_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is _OK

    def __bool__(self) -> bool:
        return self.ok


class SigningMode(StrEnum):
    """PRODUCTION rejects unverifiable records (→ DLQ); DEVELOPMENT logs a warning and processes them."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"


class Keyring:
    """The keys of every service a process knows; bound to one service (`as_signer`) it also signs."""

    __slots__ = ("_by_id", "_signer", "_signing")

    def __init__(self, entries: Iterable[KeyEntry] = (), *, signer: Service | str | None = None) -> None:
        by_id: dict[str, KeyEntry] = {}
        owners: dict[bytes, KeyEntry] = {}
        for entry in entries:
            if entry.key_id in by_id:
                raise ContractError(f"key id {entry.key_id!r} appears twice", field="keyring")
            same = owners.get(entry.material.fingerprint)
            if same is not None and same.service is not entry.service:
                raise ContractError(
                    f"keys {same.key_id!r} ({same.service.value}) and {entry.key_id!r} "
                    f"({entry.service.value}) are the same secret: every service needs its own",
                    field="keyring")
            owners.setdefault(entry.material.fingerprint, entry)
            by_id[entry.key_id] = entry
        self._by_id = by_id
        self._signer = Service(signer) if signer is not None else None
        self._signing: KeyEntry | None = None
        if self._signer is not None:
            own = [e for e in by_id.values() if e.service is self._signer and e.can_sign]
            if not own:
                raise SignatureError(
                    f"no signing key of service {self._signer.value} in the keyring "
                    "(set CF_SIGNING_KEYS or CF_SIGNING_KEYS_FILE, or run `cloud-factory stack up`)",
                    field="keyring")
            self._signing = own[0]

    @classmethod
    def parse(cls, config: str, *, signer: Service | str | None = None) -> Keyring:
        """Build from ``"service/kid:secret,service/kid2:secret2"`` (a service's first key signs).
        Blank → empty keyring."""
        return cls(parse_entries(config), signer=signer)

    @classmethod
    def from_file_text(cls, text: str, *, source: str = "key file") -> Keyring:
        """Build from a key file: one entry per line, ``#`` comments."""
        return cls(parse_entries(text, separator="\n", source=source))

    def merged(self, other: Keyring) -> Keyring:
        """Both keyrings' keys (a key id in both is an error); the signer of neither."""
        return Keyring([*self._by_id.values(), *other._by_id.values()])

    def as_signer(self, service: Service | str) -> Keyring:
        """The same keys, signing as `service` with its first signing key (SignatureError if none)."""
        return Keyring(self._by_id.values(), signer=service)

    @property
    def signer(self) -> Service | None:
        return self._signer

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    @property
    def signing_key_id(self) -> str | None:
        return self._signing.key_id if self._signing is not None else None

    def services(self) -> tuple[Service, ...]:
        """Services with at least one key here, in first-seen order."""
        return tuple(dict.fromkeys(e.service for e in self._by_id.values()))

    def owner_of(self, key_id: str) -> Service | None:
        entry = self._by_id.get(key_id)
        return entry.service if entry is not None else None

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        signer = f", signer={self._signer.value!r}" if self._signer is not None else ""
        return f"Keyring(key_ids={list(self._by_id)!r}{signer})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Keyring holds secrets and cannot be pickled")

    def sign(self, value: bytes, *, event_type: str | None = None,
             signed_at_ms: int | None = None) -> list[tuple[str, bytes]]:
        """Kafka headers signing `value` (now, or at `signed_at_ms`) as this keyring's service.

        With `event_type`, refuses (SignatureError) to sign an event type another service publishes:
        a process signs only what its own service may say."""
        entry = self._signing
        if entry is None:
            raise SignatureError("this keyring has no signing service (Keyring.as_signer)", field="keyring")
        if event_type is not None:
            from schemas.definitions import catalog

            publisher = catalog.require(event_type).publisher
            if publisher is not entry.service:
                raise SignatureError(
                    f"{entry.service.value} may not sign {event_type}: its publisher is {publisher.value}",
                    field="eventType")
        stamp = str(int(time.time() * 1000) if signed_at_ms is None else int(signed_at_ms)).encode()
        signature = entry.material.signature((stamp, b"\n", _as_bytes(value)))
        return [(SIGNATURE_HEADER, signature.encode()), (KEY_ID_HEADER, entry.key_id.encode()),
                (SIGNED_AT_HEADER, stamp)]

    def verify(self, value: bytes, headers: Headers) -> SignatureCheck:
        """Check `value` against its signature headers. Never raises for any header content."""
        signatures, key_ids, stamps = _signature_headers(headers)
        return self.verify_found(value, signatures, key_ids, stamps)

    def verify_found(self, value: bytes, signatures: list[str], key_ids: list[str],
                     signed_at: list[str] | None = None) -> SignatureCheck:
        """`verify` for a caller that already picked the signature, key-id and signed-at header values
        out of the headers (stripped text, in header order) — the consumer does so in the one pass
        over the headers that also finds `traceparent`. Never raises."""
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
        entry = self._by_id.get(key_id)
        if entry is None:
            return SignatureCheck(SignatureStatus.UNKNOWN_KEY, _printable(key_id), "key id not in keyring")
        provided = signatures[0]
        if len(provided) > _MAX_SIGNATURE or not provided.startswith(entry.algorithm.prefix):
            return SignatureCheck(SignatureStatus.MISMATCH, key_id, "malformed x-cf-signature header")
        if not signed_at:
            return SignatureCheck(SignatureStatus.MISSING, key_id, "no x-cf-signed-at header")
        if len(signed_at) > 1:
            return SignatureCheck(SignatureStatus.MISMATCH, key_id, "several x-cf-signed-at headers")
        text = signed_at[0]
        if not (text.isascii() and text.isdigit() and len(text) <= 15):
            return SignatureCheck(SignatureStatus.MISMATCH, key_id, "malformed x-cf-signed-at header")
        stamp = int(text)
        try:
            payload = value if type(value) is bytes else _as_bytes(value)
        except (TypeError, ValueError):
            return SignatureCheck(SignatureStatus.MISMATCH, key_id, "record value is not bytes")
        if entry.material.matches(provided, (text.encode(), b"\n", payload)):
            return SignatureCheck(SignatureStatus.OK, key_id, "", entry.service, stamp)
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


def _signature_headers(headers: Headers) -> tuple[list[str], list[str], list[str]]:
    """(signature values, key id values, signed-at values) from any header shape; junk is skipped."""
    signatures: list[str] = []
    key_ids: list[str] = []
    stamps: list[str] = []
    if not headers:
        return signatures, key_ids, stamps
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
            elif name == SIGNED_AT_HEADER:
                bucket = stamps
            else:
                continue
            text = raw if isinstance(raw, str) else bytes(raw).decode("ascii", errors="replace")
            bucket.append(text.strip())
    except (TypeError, ValueError):
        pass
    return signatures, key_ids, stamps


def _as_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if value is None:
        return b""
    return bytes(value)  # type: ignore[call-overload]


def _printable(text: str, limit: int = 64) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean[:limit]
