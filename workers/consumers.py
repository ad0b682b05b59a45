"""Builds each domain service's Kafka consumer the same way: own schema, topics, tenant scope.

Every builder takes a `group_id` (replicas share it; tests pass their own) and a `TenantScope`
(default: all tenants). The returned consumer runs until its stop flag is set.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging.consumer import EventConsumer, Handler
from messaging.handlers import HandlerSpec
from messaging.idempotency import IdempotencyStore
from messaging.wiring import consumer_from, producer_from
from services.common import ALL_TENANTS, Emitter, TenantScope

__all__ = [
    "BILLING_GROUP",
    "PROVISIONING_GROUP",
    "SAGA_POLL_TIMEOUT_S",
    "build_billing_consumer",
    "build_bridge_consumer",
    "build_provisioning_consumer",
    "consumer_for",
]

# The runtime fetches in batches and waits up to the poll timeout for a batch to fill; on the saga's
# path every hop pays that wait, so these consumers poll briefly (cheap when idle, fast per hop).
SAGA_POLL_TIMEOUT_S = 0.05

PROVISIONING_GROUP = "provisioning"
BILLING_GROUP = "billing"


def consumer_for(
    settings: Settings,
    *,
    group_id: str,
    handlers: Mapping[str, Handler | HandlerSpec],
    scope: TenantScope = ALL_TENANTS,
    extra_config: dict[str, object] | None = None,
    lease_s: float | None = None,
) -> EventConsumer:
    """A consumer over exactly the topics of `handlers`' event types, serving the tenants of `scope`.

    The runtime verifies, decodes, upcasts and deduplicates (idempotency keys per group) before a
    handler runs; the handlers are idempotent in their own tables as well.
    """
    idempotency = IdempotencyStore(engine_for(settings.dsn), lease=lease_s) if lease_s else True
    return consumer_from(
        settings,
        group_id=group_id,
        handlers=handlers,
        accept=scope.record_filter,
        extra_config=extra_config,
        idempotency=idempotency,
    )


def build_provisioning_consumer(
    settings: Settings,
    *,
    group_id: str = PROVISIONING_GROUP,
    scope: TenantScope = ALL_TENANTS,
    **tuning: object,
) -> EventConsumer:
    from services.provisioning.handler import ProvisioningHandlers
    from services.provisioning.simulator import SimulatedProvider
    from services.provisioning.tables import metadata

    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    handlers = ProvisioningHandlers(
        engine,
        Emitter(producer_from(settings, service="provisioning"), "provisioning"),
        SimulatedProvider(engine),
    )
    return consumer_for(
        settings,
        group_id=group_id,
        scope=scope,
        **tuning,
        handlers={
            "order.provisioning-started": handlers.on_provisioning_started,
            "order.cancelled": handlers.on_order_cancelled,
        },
    )


def build_billing_consumer(
    settings: Settings, *, group_id: str = BILLING_GROUP, scope: TenantScope = ALL_TENANTS, **tuning: object
) -> EventConsumer:
    from services.billing.gateway import SimulatedGateway
    from services.billing.handler import BillingHandlers
    from services.billing.tables import metadata

    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    emitter = Emitter(producer_from(settings, service="billing"), "billing")
    handlers = BillingHandlers(engine, emitter, SimulatedGateway(engine))
    return consumer_for(
        settings,
        group_id=group_id,
        scope=scope,
        **tuning,
        handlers={
            "order.payment-confirmed": handlers.on_payment_confirmed,
            "order.fulfilled": handlers.on_order_fulfilled,
            "billing.refund-requested": handlers.on_refund_requested,
        },
    )


def build_bridge_consumer(
    settings: Settings, *, group_id: str | None = None, scope: TenantScope = ALL_TENANTS, **tuning: object
) -> EventConsumer:
    """The inbound bridge's consumer, from the bridge's own wiring (`bridges.worker`)."""
    from bridges.worker import ORDER_BRIDGE_GROUP, bridge_handlers

    group = group_id or ORDER_BRIDGE_GROUP
    return consumer_for(settings, group_id=group, scope=scope, **tuning, handlers=bridge_handlers(settings))
