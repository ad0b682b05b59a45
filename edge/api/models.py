"""The API's request and response bodies (camelCase on the wire, like the events)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["CompensationOut", "Health", "OrderIn", "OrderOut", "PaymentIn", "PaymentOutcome", "TimelineOut"]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PaymentOutcome(StrEnum):
    AUTHORIZED = "authorized"
    DECLINED = "declined"


class PaymentIn(_Wire):
    """What the customer's payment provider said, reported with the order (a checkout)."""

    outcome: PaymentOutcome


class OrderIn(_Wire):
    """A new order. `orderId` lets a client name it before the answer arrives (default: a new one);
    without `payment` the order waits for one."""

    plan_id: str = Field(min_length=1, max_length=64, examples=["vm-small-1"])
    region: str = Field(default="eu-west-1", min_length=1, max_length=32)
    customer_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    payment: PaymentIn | None = None


class CompensationOut(_Wire):
    owed: list[str]
    done: list[str]
    states: dict[str, str]
    summary: str


class TimelineOut(_Wire):
    direction: str
    event_type: str
    event_id: str
    at: str


class OrderOut(_Wire):
    order_id: str
    tenant_id: str
    correlation_id: str
    status: str
    step: str
    failure: str | None = None
    incident_id: str | None = None
    compensation: CompensationOut | None = None
    timeline: list[TimelineOut] = Field(default_factory=list)


class Health(_Wire):
    status: str
    temporal: str
    database: str
