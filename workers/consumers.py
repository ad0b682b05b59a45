"""The one way a worker builds a Kafka consumer: from a service's `Subscriptions` (or, for Order, the
bridge), with the service's schema, its emitter, and the process's tenant scope.

Every builder takes a `group_id` (replicas share it; tests pass their own) and a `TenantScope`
(default: all tenants). The returned consumer runs until its stop flag is set.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging import EventConsumer, Handler, HandlerSpec, consumer_from, idempotency_from
from messaging.wiring import keyring_from, shared_producer_from
from schemas import Service
from services.common import ALL_TENANTS, Emitter, TenantScope
from services.common.outbox_emitter import OutboxEmitter
from services.common.subscriptions import Subscriptions

__all__ = ["build_bridge_consumer", "build_consumer", "consumer_for", "subscriptions_of"]


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
    return consumer_from(
        settings,
        group_id=group_id,
        handlers=handlers,
        accept=scope.record_filter,
        extra_config=extra_config,
        idempotency=idempotency_from(settings, lease_s=lease_s),
    )


def subscriptions_of(service: Service | str) -> Subscriptions:
    """`services.<service>.subscriptions.SUBSCRIPTIONS`, loaded on first use (the CLI's `--help` stays
    fast)."""
    return importlib.import_module(f"services.{Service(service).value}.subscriptions").SUBSCRIPTIONS


def build_consumer(
    settings: Settings,
    subscriptions: Subscriptions,
    *,
    group_id: str | None = None,
    scope: TenantScope = ALL_TENANTS,
    **tuning: object,
) -> EventConsumer:
    """The service's consumer (in its own group unless `group_id` says otherwise): its schema ensured,
    its handler object built with an emitter into its outbox — or, without one, the process's producer
    signing as the service — and its routes bound."""
    engine = engine_for(settings.dsn)
    ensure_schema(engine, subscriptions.schema)
    service = subscriptions.service.value
    outbox = subscriptions.outbox
    if outbox is None:
        emitter: Emitter | OutboxEmitter = Emitter(shared_producer_from(settings, service=service), service)
    else:
        if outbox.metadata is not subscriptions.schema:
            ensure_schema(engine, outbox.metadata)
        emitter = OutboxEmitter(service, outbox, keyring_from(settings), env=settings.env, track=False)
    handlers = subscriptions.bind(subscriptions.handlers(engine, emitter))
    return consumer_for(
        settings, group_id=group_id or subscriptions.group_id, scope=scope, handlers=handlers, **tuning
    )


def build_bridge_consumer(
    settings: Settings, *, group_id: str | None = None, scope: TenantScope = ALL_TENANTS, **tuning: object
) -> EventConsumer:
    """The inbound bridge's consumer, from the bridge's own wiring (`bridges.worker`)."""
    from bridges.worker import ORDER_BRIDGE_GROUP, bridge_handlers

    group = group_id or ORDER_BRIDGE_GROUP
    return consumer_for(settings, group_id=group, scope=scope, **tuning, handlers=bridge_handlers(settings))
