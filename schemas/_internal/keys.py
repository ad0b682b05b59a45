"""Signing keys: who a key belongs to, which algorithm it uses, and the material behind it.

A key is always a service's key: its id names it on the wire (`x-cf-key-id`) and resolves to exactly
one service, so a verified record says *who* signed it, not only that someone with a key did.

Two algorithms:

- **HMAC-SHA256** (the default): one shared secret per key. Fast (~3 µs to sign, ~6 µs to verify an
  823-byte record with its headers on the development machine), but every
  verifier holds the secret and so could sign with it: choose it when every process that verifies a
  service's events is trusted as much as that service (one deployment, one operator).
- **Ed25519** (PyPI `cryptography`): the signer holds the private key, verifiers only the public
  one, so a consumer that is broken into cannot forge its upstream's events. Slower (~36 µs to
  sign, ~113 µs to verify the same record); choose it when services are run or reachable by
  different people.

Entry syntax (`CF_SIGNING_KEYS`, comma separated; `CF_SIGNING_KEYS_FILE`, one per line)::

    service/kid:secret                      HMAC-SHA256 with that secret
    service/kid:hmac:secret                 the same, explicitly
    service/kid:ed25519:<base64 seed>       Ed25519 private key (signs and verifies)
    service/kid:ed25519-public:<base64>     Ed25519 public key (verifies only)

Key material never appears in reprs, errors or logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from schemas._internal.errors import ContractError
from schemas._internal.services import Service

__all__ = ["Algorithm", "KeyEntry", "KeyMaterial", "generate_entry", "parse_entries", "public_entry"]

KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ED25519 = "ed25519:"
_ED25519_PUBLIC = "ed25519-public:"
_HMAC = "hmac:"


class Algorithm(StrEnum):
    HMAC_SHA256 = "hmac-sha256"
    ED25519 = "ed25519"

    @property
    def prefix(self) -> str:
        """What the `x-cf-signature` header value starts with."""
        return "sha256=" if self is Algorithm.HMAC_SHA256 else "ed25519="


class KeyMaterial:
    """One key's secret (or public) half behind a uniform sign/verify; never printable."""

    __slots__ = ("_keyed", "_private", "_public", "algorithm", "fingerprint")

    def __init__(self, algorithm: Algorithm, *, secret: bytes | None = None, private: object = None,
                 public: object = None, fingerprint: bytes = b"") -> None:
        self.algorithm = algorithm
        #: A digest of the key material, so a keyring can refuse one secret under two key ids (the key
        #: id is not signed: two ids with one secret would let a record be relabelled to either signer).
        self.fingerprint = fingerprint
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256) if secret is not None else None
        self._private = private
        self._public = public

    @property
    def can_sign(self) -> bool:
        return self._keyed is not None or self._private is not None

    def signature(self, parts: tuple[bytes, ...]) -> str:
        """The header value for the concatenation of `parts` (HMAC: no copy of the value is made)."""
        if self._keyed is not None:
            mac = self._keyed.copy()
            for part in parts:
                mac.update(part)
            return "sha256=" + mac.hexdigest()
        if self._private is None:
            raise ContractError("this key is a public key: it verifies but cannot sign", field="keyring")
        raw = self._private.sign(b"".join(parts))  # type: ignore[attr-defined]
        return "ed25519=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def matches(self, provided: str, parts: tuple[bytes, ...]) -> bool:
        """Timing-safe check of a header value (already known to start with this key's prefix); False
        for any text that is not a signature at all, never an exception."""
        if not provided.isascii():
            return False
        if self._keyed is not None:
            return hmac.compare_digest(self.signature(parts), provided)
        try:
            raw = base64.urlsafe_b64decode(provided[len("ed25519="):] + "==")
        except (binascii.Error, ValueError, TypeError):
            return False
        from cryptography.exceptions import InvalidSignature

        try:
            self._public.verify(raw, b"".join(parts))  # type: ignore[attr-defined]
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"KeyMaterial({self.algorithm.value}, <secret>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("key material cannot be pickled")


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One parsed entry: whose key, its id, and its material (kept out of repr)."""

    service: Service
    key_id: str
    material: KeyMaterial

    @property
    def algorithm(self) -> Algorithm:
        return self.material.algorithm

    @property
    def can_sign(self) -> bool:
        return self.material.can_sign


def _service(text: str, position: int) -> Service:
    try:
        return Service(text.strip())
    except ValueError:
        known = ", ".join(s.value for s in Service)
        raise ContractError(
            f"entry {position}: {text.strip()[:40]!r} is not a service (one of {known})", field="keyring"
        ) from None


def _material(spec: str, position: int, key_id: str) -> KeyMaterial:
    if spec.startswith(_ED25519) or spec.startswith(_ED25519_PUBLIC):
        public = spec.startswith(_ED25519_PUBLIC)
        encoded = spec[len(_ED25519_PUBLIC if public else _ED25519):]
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ContractError(f"key {key_id!r}: Ed25519 key is not base64", field="keyring") from None
        if len(raw) != 32:
            raise ContractError(f"key {key_id!r}: an Ed25519 key is 32 bytes, not {len(raw)}",
                                field="keyring")
        try:
            from cryptography.hazmat.primitives.asymmetric import ed25519
        except ImportError:  # pragma: no cover - a dependency of the project
            raise ContractError("Ed25519 keys need the `cryptography` package", field="keyring") from None
        if public:
            key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            return KeyMaterial(Algorithm.ED25519, public=key, fingerprint=_fingerprint(b"ed25519", raw))
        private = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return KeyMaterial(Algorithm.ED25519, private=private, public=private.public_key(),
                           fingerprint=_fingerprint(b"ed25519", public_raw))
    secret = spec[len(_HMAC):] if spec.startswith(_HMAC) else spec
    if not secret:
        raise ContractError(f"key {key_id!r} has an empty secret", field="keyring")
    return KeyMaterial(Algorithm.HMAC_SHA256, secret=secret.encode(),
                       fingerprint=_fingerprint(b"hmac", secret.encode()))


def _fingerprint(kind: bytes, material: bytes) -> bytes:
    return hashlib.sha256(kind + b"\x00" + material).digest()


def parse_entries(config: str, *, separator: str = ",", source: str = "keyring") -> list[KeyEntry]:
    """Entries of the form ``service/kid:secret`` separated by `separator` (blank ones and, in a
    file, lines starting with ``#`` are skipped). Errors name the entry's position, never its text
    past the service (a malformed entry may be a bare secret)."""
    entries: list[KeyEntry] = []
    for position, item in enumerate((config or "").split(separator), start=1):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        owner, slash, rest = item.partition("/")
        key_id, colon, spec = rest.partition(":")
        if not slash or not colon or ":" in owner:
            raise ContractError(f"{source} entry {position} is not of the form service/kid:secret",
                                field="keyring")
        service = _service(owner, position)
        key_id = key_id.strip()
        if not KEY_ID_PATTERN.match(key_id):
            raise ContractError(f"{source} entry {position}: key id must match {KEY_ID_PATTERN.pattern}",
                                field="keyring")
        entries.append(KeyEntry(service, key_id, _material(spec.strip(), position, key_id)))
    return entries


def generate_entry(service: Service | str, key_id: str, algorithm: Algorithm = Algorithm.HMAC_SHA256) -> str:
    """A new random key as an entry line (`service/kid:…`); for Ed25519 the private half."""
    service = Service(service)
    if algorithm is Algorithm.HMAC_SHA256:
        return f"{service.value}/{key_id}:{secrets.token_urlsafe(32)}"
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    seed = ed25519.Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{service.value}/{key_id}:{_ED25519}{base64.urlsafe_b64encode(seed).decode().rstrip('=')}"


def public_entry(entry_line: str) -> str:
    """The verify-only line for an Ed25519 private entry (what consumers of that service get)."""
    [entry] = parse_entries(entry_line)
    if entry.algorithm is not Algorithm.ED25519:
        raise ContractError("only Ed25519 keys have a public half; HMAC secrets are shared", field="keyring")
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = entry.material._public.public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[union-attr]
    encoded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{entry.service.value}/{entry.key_id}:{_ED25519_PUBLIC}{encoded}"
