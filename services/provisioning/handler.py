"""Provisioning's handlers: create an order's resources in order, delete them in reverse.

Idempotent per order: resource ids are derived from (order, name) and rows are unique per
(order, name), so a redelivered request resumes where the last run stopped and re-sends the same
events (same ids) instead of creating anything twice. That holds for a request replayed after its
idempotency key expired as well: a resource the provider refused for good is reported failed again
(its stored error) and never asked for again, and once any resource of an order was deleted nothing
of it is created again. One order is handled by one process at a time (a PostgreSQL advisory lock),
so a cancel never races a create.

An order belongs to the tenant of the first event that named it: an event of another tenant naming
it is refused (`PermissionDeniedError` → DLQ) before anything is written, created, deleted or emitted.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator

from sqlalchemy import ColumnElement, Connection, Engine, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

import schemas
from messaging import HandlerContext
from schemas.payloads.order import OrderCancelledV1
from services.common.emitter import Emitter
from services.common.tenancy import require_tenant
from services.provisioning.simulator import (
    PermanentProviderError,
    ProviderError,
    SimulatedProvider,
    TransientProviderError,
)
from services.provisioning.tables import cloud, orders, resources

__all__ = [
    "ProvisioningHandlers",
    "count_live_resources",
    "deprovision_reason",
    "is_notice",
    "resource_id_for",
]

log = logging.getLogger(__name__)

_RESOURCE_NS = uuid.UUID("1b0e3a52-5f0c-4a8e-8f4e-3f9d2b7c6a11")
LOCAL_ATTEMPTS = 3


def resource_id_for(order_id: uuid.UUID, name: str) -> uuid.UUID:
    return uuid.uuid5(_RESOURCE_NS, f"{order_id}/{name}")


def _of_tenant(tenant_id: str) -> ColumnElement[bool]:
    """Resources of `tenant_id` (rows from before resources carried a tenant count as their order's)."""
    return or_(resources.c.tenant_id == tenant_id, resources.c.tenant_id.is_(None))


def _admit(conn: Connection, envelope: schemas.Envelope, order_id: uuid.UUID, **row: object) -> str:
    """Record the order unless it is known (the first event naming it creates its row) and return its
    state; an event of another tenant than the order's is refused before anything else happens."""
    conn.execute(
        insert(orders)
        .values(
            order_id=order_id, tenant_id=envelope.tenant_id, correlation_id=envelope.correlation_id, **row
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
    )
    owner, state = conn.execute(
        select(orders.c.tenant_id, orders.c.state).where(orders.c.order_id == order_id)
    ).one()
    require_tenant(envelope.tenant_id, owner, f"order {order_id}")
    return state


class ProvisioningHandlers:
    def __init__(self, engine: Engine, emitter: Emitter, provider: SimulatedProvider) -> None:
        self.engine = engine
        self.emit = emitter
        self.provider = provider

    @contextlib.contextmanager
    def _order_lock(self, order_id: uuid.UUID) -> Iterator[None]:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"provisioning/{order_id}"})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"provisioning/{order_id}"}
                )
                conn.commit()

    def _set_state(self, order_id: uuid.UUID, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(orders).where(orders.c.order_id == order_id).values(state=state))

    # ------------------------------------------------------------------ create
    def on_provisioning_started(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = envelope.data
        with self._order_lock(data.order_id):
            with self.engine.begin() as conn:
                state = _admit(
                    conn,
                    envelope,
                    data.order_id,
                    customer_id=data.customer_id,
                    region=data.region,
                    state="provisioning",
                )
                released = conn.execute(
                    select(resources.c.name)
                    .where(resources.c.order_id == data.order_id, resources.c.state == "deleted")
                    .limit(1)
                ).first()
            if state in {"cancelled", "deprovisioned"} or released is not None:
                log.info("order %s is cancelled or being released; nothing to create", data.order_id)
                return
            self._create_all(envelope)

    def _create_all(self, envelope: schemas.Envelope) -> None:
        data = envelope.data
        order_id = data.order_id
        self.emit.derive(
            envelope,
            "provisioning.started",
            {
                "orderId": order_id,
                "customerId": data.customer_id,
                "region": data.region,
                "resources": [spec.model_dump(mode="json", by_alias=True) for spec in data.resources],
                "estimatedSeconds": max(1, len(data.resources)),
            },
            key=f"{order_id}/started",
        )
        created: list[dict] = []
        endpoints: list[dict] = []
        max_attempts = 1
        for seq, spec in enumerate(data.resources):
            rid = resource_id_for(order_id, spec.name)
            ref = {"resourceId": str(rid), "kind": spec.kind.value, "region": data.region, "name": spec.name}
            with self.engine.begin() as conn:
                conn.execute(
                    insert(resources)
                    .values(
                        resource_id=rid,
                        order_id=order_id,
                        tenant_id=envelope.tenant_id,
                        seq=seq,
                        name=spec.name,
                        kind=spec.kind.value,
                        sku=spec.sku,
                        region=data.region,
                        state="creating",
                    )
                    .on_conflict_do_nothing(index_elements=["resource_id"])
                )
                row = conn.execute(select(resources).where(resources.c.resource_id == rid)).mappings().one()
            if row["state"] == "failed":  # refused for good earlier: report it again, never ask again
                refusal = PermanentProviderError(
                    row["error_code"] or "PROVISIONING_FAILED",
                    row["error_reason"] or f"creating {spec.name} failed",
                )
                self._fail(envelope, refusal, created)
                return
            if row["state"] == "created":
                endpoint, attempts = row["endpoint"], row["attempts"]
            else:
                try:
                    endpoint, attempts = self._create_one(
                        rid, order_id, spec.name, spec.kind.value, data.region
                    )
                except ProviderError as exc:
                    with self.engine.begin() as conn:
                        conn.execute(
                            update(resources)
                            .where(resources.c.resource_id == rid)
                            .values(
                                attempts=resources.c.attempts + LOCAL_ATTEMPTS,
                                state="creating" if exc.retryable else "failed",
                                error_code=None if exc.retryable else exc.code,
                                error_reason=None if exc.retryable else str(exc)[:200],
                            )
                        )
                    if exc.retryable:
                        raise  # the consumer retries the message in place
                    self._fail(envelope, exc, created)
                    return
                with self.engine.begin() as conn:
                    conn.execute(
                        update(resources)
                        .where(resources.c.resource_id == rid)
                        .values(state="created", endpoint=endpoint, attempts=attempts)
                    )
            max_attempts = max(max_attempts, attempts)
            created.append(ref)
            endpoints.append({"resourceId": str(rid), "url": endpoint})
            self.emit.derive(
                envelope,
                "provisioning.resource-created",
                {"orderId": order_id, "resource": ref, "attempt": attempts},
                key=f"{order_id}/created/{spec.name}",
            )
        self.emit.derive(
            envelope,
            "provisioning.completed",
            {
                "orderId": order_id,
                "resources": created,
                "endpoints": endpoints,
                "attempts": min(max_attempts, 100),
            },
            key=f"{order_id}/completed",
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(orders)
                .where(orders.c.order_id == order_id, orders.c.state == "provisioning")
                .values(state="completed")
            )

    def _create_one(
        self, rid: uuid.UUID, order_id: uuid.UUID, name: str, kind: str, region: str
    ) -> tuple[str, int]:
        """Create with a few quick local retries for transient provider errors; (endpoint, attempts)."""
        for attempt in range(1, LOCAL_ATTEMPTS + 1):
            try:
                return self.provider.create(rid, order_id, name, kind, region), attempt
            except TransientProviderError as exc:
                log.warning(
                    "transient provider error creating %s for %s (attempt %d): %s",
                    name,
                    order_id,
                    attempt,
                    exc,
                )
                if attempt == LOCAL_ATTEMPTS:
                    raise
                time.sleep(0.1 * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _fail(self, envelope: schemas.Envelope, exc: ProviderError, created: list[dict]) -> None:
        data = envelope.data
        self._set_state(data.order_id, "failed")
        self.emit.derive(
            envelope,
            "provisioning.failed",
            {
                "orderId": data.order_id,
                "region": data.region,
                "errorCode": exc.code,
                "reason": str(exc)[:200],
                "retryable": False,
                "partialResources": created,
            },
            key=f"{data.order_id}/failed",
        )

    # ------------------------------------------------------------------ delete
    def on_order_cancelled(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = envelope.data
        order_id = data.order_id
        with self._order_lock(order_id):
            with self.engine.begin() as conn:
                _admit(conn, envelope, order_id, customer_id=data.customer_id, region=None, state="cancelled")
                rows = (
                    conn.execute(
                        select(resources)
                        .where(
                            resources.c.order_id == order_id,
                            _of_tenant(envelope.tenant_id),
                            resources.c.state != "failed",
                        )
                        .order_by(resources.c.seq.desc())
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                self._set_state(order_id, "cancelled")
                self._confirm_nothing_to_release(envelope)
                return
            refs = [
                {
                    "resourceId": str(r["resource_id"]),
                    "kind": r["kind"],
                    "region": r["region"],
                    "name": r["name"],
                }
                for r in rows
            ]
            reason = deprovision_reason(data)
            self.emit.derive(
                envelope,
                "provisioning.deprovisioning-started",
                {"orderId": order_id, "resources": refs, "reason": reason},
                key=f"{order_id}/deprovisioning-started",
            )
            for row, ref in zip(rows, refs, strict=True):  # newest first
                if row["state"] != "deleted":
                    try:
                        self.provider.delete(row["resource_id"], order_id, row["name"])
                    except ProviderError as exc:
                        self.emit.derive(
                            envelope,
                            "provisioning.deprovision-failed",
                            {
                                "orderId": order_id,
                                "failedResources": [ref],
                                "errorCode": exc.code,
                                "reason": str(exc)[:200],
                            },
                            key=f"{order_id}/deprovision-failed",
                        )
                        return
                    with self.engine.begin() as conn:
                        conn.execute(
                            update(resources)
                            .where(resources.c.resource_id == row["resource_id"])
                            .values(state="deleted")
                        )
                self.emit.derive(
                    envelope,
                    "provisioning.resource-deleted",
                    {"orderId": order_id, "resource": ref},
                    key=f"{order_id}/deleted/{row['name']}",
                )
            self.emit.derive(
                envelope,
                "provisioning.deprovisioned",
                {"orderId": order_id, "customerId": data.customer_id, "resources": refs, "reason": reason},
                key=f"{order_id}/deprovisioned",
            )
            self._set_state(order_id, "deprovisioned")

    def _confirm_nothing_to_release(self, envelope: schemas.Envelope) -> None:
        """Answer an ask to release whatever exists, when nothing does, with an empty
        `provisioning.deprovisioned` — so a saga whose provisioning timed out before anything was
        created ends `compensated` at once instead of after every backoff window.

        A customer's cancellation listing nothing is only a notice (the saga sends it when it knows
        nothing was created and waits for no answer; an answer would reach a finished saga and be
        dead-lettered), so it stays unanswered. The create path sees the order `cancelled` and
        creates nothing, so the empty answer stays true.
        """
        data = envelope.data
        if is_notice(data):
            log.info("order %s cancelled with nothing provisioned", data.order_id)
            return
        log.info("order %s: asked to release its resources, none exist", data.order_id)
        self.emit.derive(
            envelope,
            "provisioning.deprovisioned",
            {
                "orderId": data.order_id,
                "customerId": data.customer_id,
                "resources": [],
                "reason": deprovision_reason(data),
            },
            key=f"{data.order_id}/deprovisioned",
        )


def is_notice(cancelled: OrderCancelledV1) -> bool:
    """An `order.cancelled` that asks nothing of Provisioning: the customer's, releasing nothing."""
    return cancelled.reason.value == "customer_request" and not cancelled.resources_to_release


def deprovision_reason(cancelled: OrderCancelledV1) -> str:
    """Why Provisioning releases: the customer cancelled, or the saga compensates a failure."""
    return "order_cancelled" if cancelled.reason.value == "customer_request" else "compensation"


def count_live_resources(engine: Engine, order_id: uuid.UUID) -> int:
    """How many of an order's resources exist at the simulated provider (tests, `order show`)."""
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(cloud)
            .where(cloud.c.order_id == order_id, cloud.c.deleted_at.is_(None))
        ).scalar_one()
