"""Which workers a process can run, derived from the services instead of listed beside them.

Order runs as two workers — the saga (Temporal) and the bridge (its Kafka consumer); every other
domain service is one worker: its consumer when the catalog routes events to it, its outbox relay
when it keeps an outbox (Notification runs both). `all` runs every kind in one process.
"""

from __future__ import annotations

import enum

from schemas import Service, catalog
from services.common.outbox_services import OUTBOX_SERVICES

__all__ = ["CONSUMER_KINDS", "EVERY_KIND", "CONSUMING_SERVICES", "OUTBOX_KINDS", "RELAY_KINDS", "WorkerKind"]

WorkerKind = enum.StrEnum(
    "WorkerKind",
    {
        "SAGA": "saga",
        "BRIDGE": "bridge",
        **{service.name: service.value for service in Service if service is not Service.ORDER},
        "API": "api",
        "ALL": "all",
    },
)
"""`cloud-factory worker KIND`: saga, bridge, one per domain service but Order, the HTTP API (an edge
process, `edge.api`), all."""

EVERY_KIND = frozenset(WorkerKind) - {WorkerKind.ALL, WorkerKind.API}
"""What `all` runs: every worker but the HTTP API, which listens on a port and is run on its own."""

CONSUMING_SERVICES = tuple(
    service for service in Service if service is not Service.ORDER and catalog.subscriptions(service)
)
"""Services the catalog routes events to; each declares them in `services.<service>.subscriptions`.
Order's subscriptions are the bridge's."""

CONSUMER_KINDS = (WorkerKind.BRIDGE, *(WorkerKind(service.value) for service in CONSUMING_SERVICES))
# Every kind whose service keeps an outbox: its process runs that outbox's relay.
OUTBOX_KINDS = tuple(WorkerKind(service) for service in OUTBOX_SERVICES)
# Services without subscriptions: their worker relays the service's outbox to Kafka.
RELAY_KINDS = tuple(kind for kind in OUTBOX_KINDS if kind not in CONSUMER_KINDS)

