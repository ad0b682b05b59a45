"""The bridge worker's wiring: its consumer group, the event types it subscribes to, its handlers.

One constant each, used by every process that runs the bridge (`cloud-factory worker bridge`, the
in-process workers of the demo and benchmarks, the test harness). The consumer itself is built by
`workers/` from these subscriptions, like every other consuming worker's.
"""

from __future__ import annotations

import schemas
from bridges.inbound import OrderBridge
from bridges.signaller import WorkflowSignaller
from core.settings import Settings

__all__ = ["BRIDGED_EVENT_TYPES", "ORDER_BRIDGE_GROUP", "bridge_handlers"]

#: The bridge's consumer group; replicas share it, tests and isolated runs add a suffix.
ORDER_BRIDGE_GROUP = "order-bridge"
#: Every event type the Order service subscribes to in the catalog: the saga hears each one.
BRIDGED_EVENT_TYPES = tuple(
    entry.event_type for entry in schemas.catalog.subscriptions(schemas.Service.ORDER)
)


def bridge_handlers(settings: Settings) -> dict[str, OrderBridge]:
    """One `OrderBridge` (signalling the Temporal server `settings` name) for every bridged type."""
    bridge = OrderBridge(WorkflowSignaller(settings.temporal_target, settings.temporal_namespace))
    return {event_type: bridge for event_type in BRIDGED_EVENT_TYPES}
