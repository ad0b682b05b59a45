"""`Idempotency-Key`: a retried POST returns the order the first one placed, never a second order.

The first request with a key records (tenant, key) → the request's fingerprint and its order id in
`edge_api.idempotency`, before the saga starts; a retry finds the row and answers with that order.
The same key with a different body is refused (422), as the IETF Idempotency-Key draft asks. Two
racing first requests both see the row one of them wrote, so they name the same order id, and
Temporal's workflow-id uniqueness lets only one saga start.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, DateTime, Engine, PrimaryKeyConstraint, String, Table, func, select
from sqlalchemy.dialects.postgresql import UUID, insert

from edge.api.keys import metadata

__all__ = ["Claim", "IdempotencyKeys", "idempotency"]

idempotency = Table(
    "idempotency",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "idempotency_key"),
)


@dataclass(frozen=True)
class Claim:
    """The order id a keyed request stands for; `replay` when an earlier request claimed it."""

    order_id: uuid.UUID
    replay: bool
    same_request: bool


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, tenant_id: str, key: str, body: dict[str, Any], order_id: uuid.UUID) -> Claim:
        """Record `key` for `order_id` unless an earlier request did; the claim that holds."""
        mark = fingerprint(body)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert(idempotency)
                .values(tenant_id=tenant_id, idempotency_key=key, fingerprint=mark, order_id=order_id)
                .on_conflict_do_nothing()
                .returning(idempotency.c.order_id)
            ).first()
            if inserted is not None:
                return Claim(order_id, replay=False, same_request=True)
            row = conn.execute(
                select(idempotency.c.order_id, idempotency.c.fingerprint).where(
                    idempotency.c.tenant_id == tenant_id, idempotency.c.idempotency_key == key)
            ).one()
        return Claim(row.order_id, replay=True, same_request=row.fingerprint == mark)
