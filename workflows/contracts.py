"""Plain dataclasses crossing the workflow/activity boundary (Temporal's JSON converter encodes them).

Kept free of pydantic and I/O so the workflow sandbox imports them cheaply and deterministically.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

__all__ = ["OrderRequest", "OrderResult", "PublishRequest", "PublishedEvent", "order_workflow_id"]

_CORRELATION_NAMESPACE = uuid.UUID("6f1c7a8e-3c1b-4b7e-9d1e-2a4f0c9b5e10")


def order_workflow_id(tenant_id: str, order_id: str) -> str:
    """One workflow per order: the id is derived from tenant + order so a re-submit is rejected."""
    return f"order-{tenant_id}-{order_id}"


@dataclass
class OrderRequest:
    tenant_id: str
    order_id: str
    customer_id: str
    plan_id: str
    region: str
    amount_minor: int
    currency: str = "EUR"
    tax_minor: int = 0
    quantity: int = 1
    billing_cycle: str = "monthly"
    channel: str = "web"
    actor_id: str = "order-service"
    actor_type: str = "service"
    correlation_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.correlation_id:
            # The flow's id: stable for the order, so every event of the saga shares it.
            self.correlation_id = str(uuid.uuid5(_CORRELATION_NAMESPACE, order_workflow_id(self.tenant_id, self.order_id)))

    @property
    def workflow_id(self) -> str:
        return order_workflow_id(self.tenant_id, self.order_id)

    def created_payload(self) -> dict:
        """`order.created` data in its wire (camelCase) shape."""
        unit = {"amountMinor": self.amount_minor, "currency": self.currency}
        subtotal = {"amountMinor": self.amount_minor * self.quantity, "currency": self.currency}
        return {
            "orderId": self.order_id,
            "customerId": self.customer_id,
            "lines": [{"planId": self.plan_id, "quantity": self.quantity, "amount": unit}],
            "subtotal": subtotal,
            "tax": {"amountMinor": self.tax_minor, "currency": self.currency},
            "total": {"amountMinor": subtotal["amountMinor"] + self.tax_minor, "currency": self.currency},
            "region": self.region,
            "billingCycle": self.billing_cycle,
            "channel": self.channel,
        }


@dataclass
class PublishRequest:
    workflow_id: str
    step: str
    event_type: str
    data: dict
    tenant_id: str
    correlation_id: str
    causation_id: str | None
    actor_id: str
    actor_type: str
    occurred_at: str


@dataclass
class PublishedEvent:
    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int


@dataclass
class OrderResult:
    order_id: str
    status: str
    events: list[str]
    last_event_id: str
