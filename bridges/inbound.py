"""The inbound bridge: the events Order subscribes to become `domain_event` signals of the saga.

The consumer runtime has already verified the signature, decoded and upcast the event; the bridge
finds the workflow from the event (tenant + order id → workflow id) and checks that its
correlationId is the flow's, then signals it. The workflow ignores an event id it has seen, so
redelivery is harmless. An event for no running workflow raises `NotFoundError`: the runtime
dead-letters it at once instead of retrying.
"""

from __future__ import annotations

import logging

import schemas
from bridges.signaller import WorkflowNotFound, WorkflowSignaller
from messaging.consumer import HandlerContext
from messaging.errors import NotFoundError
from workflows.contracts import InboundEvent, correlation_id_for, order_workflow_id

__all__ = ["BRIDGED_EVENT_TYPES", "ORDER_BRIDGE_GROUP", "OrderBridge", "inbound_event"]

log = logging.getLogger(__name__)

ORDER_BRIDGE_GROUP = "order-bridge"
BRIDGED_EVENT_TYPES = tuple(entry.event_type for entry in schemas.catalog.subscriptions("order"))


def inbound_event(envelope: schemas.Envelope) -> InboundEvent:
    return InboundEvent(
        event_id=str(envelope.event_id),
        event_type=envelope.event_type,
        version=envelope.version,
        data=envelope.data.model_dump(mode="json", by_alias=True),
        causation_id=str(envelope.causation_id) if envelope.causation_id else None,
        occurred_at=envelope.occurred_at.isoformat(),
    )


class OrderBridge:
    """Consumer handler for every event type in `BRIDGED_EVENT_TYPES`."""

    def __init__(self, signaller: WorkflowSignaller) -> None:
        self.signaller = signaller

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        workflow_id = order_workflow_id(envelope.tenant_id, str(envelope.data.order_id))
        if correlation_id_for(workflow_id) != str(envelope.correlation_id):
            raise NotFoundError(f"correlationId {envelope.correlation_id} is not the flow of {workflow_id}")
        try:
            self.signaller.signal(workflow_id, "domain_event", inbound_event(envelope))
        except WorkflowNotFound as exc:
            raise NotFoundError(str(exc)) from exc
        log.info("signalled %s with %s %s", workflow_id, envelope.event_type, envelope.event_id)
