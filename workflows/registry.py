"""Every workflow the saga worker runs (and `cloud-factory replay` replays): one list, one place."""

from __future__ import annotations

from workflows.incident import OrderIncidentWorkflow
from workflows.order_fulfillment import OrderFulfillmentWorkflow

__all__ = ["SAGA_WORKFLOWS"]

#: The saga and the incident it starts when an undo cannot finish.
SAGA_WORKFLOWS = (OrderFulfillmentWorkflow, OrderIncidentWorkflow)
