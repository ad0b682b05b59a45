"""The API's own projection of Identity's API keys, and the check of a presented key against it.

Event-carried state: `identity.api-key-created` (v2: the secret's SHA-256) and
`identity.api-key-revoked` fill `edge_api.api_keys`; the API never reads Identity's tables nor calls
it. A key upcast from v1 has no hash and is refused. A presented secret is hashed and compared with
`hmac.compare_digest`, and an unknown prefix is compared against a dummy hash, so the answer takes
the same time whether the prefix exists or not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Date, DateTime, Engine, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert

import schemas

__all__ = [
    "API_KEY_GROUP",
    "ApiPrincipal",
    "AuthenticationFailed",
    "KeyProjection",
    "KeyStore",
    "api_keys",
    "metadata",
]

API_KEY_GROUP = "edge-api"
"""The consumer group of the key projection (every replica shares the one table)."""

metadata = MetaData(schema="edge_api")

api_keys = Table(
    "api_keys",
    metadata,
    Column("api_key_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_sha256", String(64)),  # None: announced by a v1 producer, never usable here
    Column("scopes", JSONB, nullable=False),
    Column("expires_on", Date),
    Column("revoked_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_BEARER = re.compile(r"Bearer (cfk_[a-z0-9]{6,8})_([A-Za-z0-9_-]{16,128})")
_DUMMY = hashlib.sha256(b"no such key").hexdigest()


class AuthenticationFailed(Exception):
    """The request carries no usable key; the message says why in one line (401)."""


@dataclass(frozen=True)
class ApiPrincipal:
    """Who a request acts for: an API key of one tenant, with its scopes."""

    api_key_id: uuid.UUID
    tenant_id: str
    user_id: uuid.UUID
    scopes: frozenset[str]

    @property
    def actor(self) -> schemas.Actor:
        """The key as the actor of the events its requests cause."""
        return schemas.Actor(id=str(self.api_key_id), type=schemas.ActorType.API_KEY)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class KeyProjection:
    """The handlers of the projection's consumer: one upsert per event, idempotent on redelivery."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def handlers(self) -> dict[str, Any]:
        return {"identity.api-key-created": self.on_created, "identity.api-key-revoked": self.on_revoked}

    def on_created(self, event: schemas.Envelope, _context: object) -> None:
        data = event.data
        row = {
            "api_key_id": data.api_key_id,
            "tenant_id": event.tenant_id,
            "user_id": data.user_id,
            "prefix": data.prefix,
            "secret_sha256": data.secret_sha256,
            "scopes": [str(scope) for scope in data.scopes],
            "expires_on": data.expires_on,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys).values(**row).on_conflict_do_nothing(index_elements=["api_key_id"]))

    def on_revoked(self, event: schemas.Envelope, _context: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.api_key_id == event.data.api_key_id,
                       api_keys.c.tenant_id == event.tenant_id)
                .values(revoked_at=event.occurred_at, updated_at=func.now())
            )


class KeyStore:
    """Checks `Authorization` headers against the projection, trusting a row for `cache_s` seconds."""

    def __init__(self, engine: Engine, *, cache_s: float = 1.0) -> None:
        self.engine, self.cache_s = engine, cache_s
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> ApiPrincipal:
        """The key's principal; `AuthenticationFailed` naming what is wrong otherwise."""
        if not authorization:
            raise AuthenticationFailed("no API key: send `Authorization: Bearer cfk_…`")
        match = _BEARER.fullmatch(authorization.strip())
        if match is None:
            raise AuthenticationFailed("malformed Authorization header: "
                                       "expected `Bearer cfk_<prefix>_<secret>`")
        prefix = match.group(1)
        row = self._row(prefix)
        presented = hashlib.sha256(f"{prefix}_{match.group(2)}".encode()).hexdigest()
        stored = (row or {}).get("secret_sha256") or _DUMMY
        matches = hmac.compare_digest(presented, stored)
        if row is not None and row["secret_sha256"] is None:
            raise AuthenticationFailed(f"API key {prefix} predates hashed keys (v1): create a new one")
        if row is None or not matches:
            raise AuthenticationFailed("unknown API key or wrong secret")
        if row["revoked_at"] is not None:
            raise AuthenticationFailed(f"API key {prefix} was revoked")
        if row["expires_on"] is not None and row["expires_on"] < dt.datetime.now(dt.UTC).date():
            raise AuthenticationFailed(f"API key {prefix} expired on {row['expires_on']}")
        return ApiPrincipal(row["api_key_id"], row["tenant_id"], row["user_id"], frozenset(row["scopes"]))

    def _row(self, prefix: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(prefix)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        with self.engine.connect() as conn:
            found = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
        row = dict(found) if found is not None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[prefix] = (now, row)
        return row
