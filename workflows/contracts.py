"""The types crossing the workflow boundary (inputs, results, signals, queries, activity arguments).

`core.temporal.DATA_CONVERTER` (temporalio's pydantic converter, writing the default converter's
bytes) encodes and decodes them, so what a saga wrote into its history keeps decoding, typed. Event
data is typed as the `schemas` payload models; on the wire it is the camelCase JSON it always was.
Free of I/O, so the workflow sandbox imports them deterministically.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pydantic_core
from pydantic import SerializeAsAny, ValidationError, ValidationInfo, field_serializer, field_validator
from pydantic.dataclasses import dataclass as wire_dataclass

import schemas
from schemas import Money, Payload
from schemas._internal.ids import stable_event_id
from schemas.payloads._base import BillingCycle, ResourceRef
from schemas.payloads.order import CompensationStep, OrderChannel, OrderCreatedV3, OrderLine
from workflows.states import SagaStatus, SagaStep

__all__ = [
    "AskBook",
    "CancelRequest",
    "CompensationEntry",
    "CompensationView",
    "InboundEvent",
    "IncidentAction",
    "IncidentClosure",
    "IncidentDecision",
    "IncidentRequest",
    "IncidentTicket",
    "OrderRequest",
    "OrderResult",
    "OrderSnapshot",
    "PaymentConfirmation",
    "PaymentFailure",
    "PublishRequest",
    "PublishedEvent",
    "SagaTimings",
    "TimelineEntry",
    "REPLIES",
    "WireData",
    "correlation_id_for",
    "order_workflow_id",
    "step_event_id",
]

#: Event data as JSON values (camelCase keys), the shape a payload model dumps to.
WireData = dict[str, Any]

_CORRELATION_NAMESPACE = uuid.UUID("6f1c7a8e-3c1b-4b7e-9d1e-2a4f0c9b5e10")


def order_workflow_id(tenant_id: str, order_id: str) -> str:
    """One workflow per order: the id is derived from tenant + order so a re-submit is rejected."""
    return f"order-{tenant_id}-{order_id}"


def correlation_id_for(workflow_id: str) -> str:
    """The flow's correlationId, a pure function of the workflow id (so the bridge can check a match)."""
    return str(uuid.uuid5(_CORRELATION_NAMESPACE, workflow_id))


def step_event_id(workflow_id: str, step: str) -> str:
    """The event id of one saga step: a retried activity re-sends the same event, and the saga knows
    the id of each of its asks before publishing it (so an answer can never outrun the ask)."""
    return str(stable_event_id(workflow_id, step))


#: The saga's asks and the only event types that may answer each (`causationId` = the ask's id).
REPLIES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "order.provisioning-started": ("provisioning.completed", "provisioning.failed"),
    "order.cancelled": ("provisioning.deprovisioned",),
    "billing.refund-requested": ("billing.refund-completed", "billing.refund-failed"),
})


@dataclass
class SagaTimings:
    """How long the saga waits; defaults suit production, tests shorten them.

    `compensation_windows_s` is the backoff of each compensation step: wait that long for the
    confirmation, then ask again (2 s → 4 s → 8 s → 16 s → 30 s cap); when the last window passes
    unconfirmed, compensation has failed and a person must look.
    """

    payment_timeout_s: float = 3600.0
    provisioning_timeout_s: float = 300.0
    compensation_windows_s: list[float] = field(default_factory=lambda: [2.0, 4.0, 8.0, 16.0, 30.0, 30.0])
    #: How long an incident waits for a person before the saga ends `compensation_failed` anyway.
    incident_deadline_s: float = 30 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.payment_timeout_s <= 0 or self.provisioning_timeout_s <= 0 or self.incident_deadline_s <= 0:
            raise ValueError("SagaTimings: timeouts must be positive seconds")
        if not self.compensation_windows_s or any(w <= 0 for w in self.compensation_windows_s):
            raise ValueError("SagaTimings.compensation_windows_s: need at least one positive window")


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
    timings: SagaTimings = field(default_factory=SagaTimings)

    def __post_init__(self) -> None:
        if not self.correlation_id:
            # The flow's id: stable for the order, so every event of the saga shares it.
            self.correlation_id = correlation_id_for(order_workflow_id(self.tenant_id, self.order_id))
        if isinstance(self.timings, dict):  # tolerate a plain mapping from JSON callers
            self.timings = SagaTimings(**self.timings)

    @property
    def workflow_id(self) -> str:
        return order_workflow_id(self.tenant_id, self.order_id)

    @property
    def total(self) -> Money:
        """What the customer pays: the lines plus tax."""
        return Money(amount_minor=self.amount_minor * self.quantity + self.tax_minor, currency=self.currency)

    def created_payload(self) -> OrderCreatedV3:
        """The order's `order.created` data."""
        unit = Money(amount_minor=self.amount_minor, currency=self.currency)
        return OrderCreatedV3(
            order_id=uuid.UUID(self.order_id),
            customer_id=uuid.UUID(self.customer_id),
            lines=[OrderLine(plan_id=self.plan_id, quantity=self.quantity, amount=unit)],
            subtotal=Money(amount_minor=self.amount_minor * self.quantity, currency=self.currency),
            tax=Money(amount_minor=self.tax_minor, currency=self.currency),
            total=self.total,
            region=self.region,
            billing_cycle=BillingCycle(self.billing_cycle),
            channel=OrderChannel(self.channel),
        )


def _wire_json(data: Mapping[str, Any]) -> bytes:
    return pydantic_core.to_json(dict(data))


@wire_dataclass
class PublishRequest:
    """Activity input of `publish_event`: one saga step's event, its data typed by `event_type`.

    `data` is the payload model of the type's latest version. On the wire it is only the fields the
    saga set (`exclude_unset`), camelCase — the JSON the saga always sent, so an activity scheduled by
    an earlier build decodes into the same typed model. The one exception is kept a plain `WireData`
    dict: data an earlier build scheduled in a shape only an older version fits (its retry still
    carries it after a deploy added a version). Which older version it is, and the upcast, are the
    outbound bridge's (`bridges.outbound.envelope_for`), which also rejects data that fits none.
    """

    workflow_id: str
    step: str
    event_type: str
    data: SerializeAsAny[Payload] | WireData
    tenant_id: str
    correlation_id: str
    causation_id: str | None
    actor_id: str
    actor_type: str
    occurred_at: str

    @field_validator("data", mode="before")
    @classmethod
    def _typed(cls, data: Any, info: ValidationInfo) -> Any:
        """Wire data becomes the latest version's model when it fits (validated as JSON, as on Kafka)."""
        entry = schemas.catalog.get(info.data.get("event_type", ""))
        if isinstance(data, Payload) or entry is None or not isinstance(data, Mapping):
            return data
        try:
            return entry.latest_payload.model_validate_json(_wire_json(data))
        except ValidationError:
            return dict(data)

    @field_serializer("data")
    def _wire(self, data: Payload | WireData) -> WireData:
        return data.model_dump(mode="json", exclude_unset=True) if isinstance(data, Payload) else data


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
    status: SagaStatus
    events: list[str]
    last_event_id: str


@dataclass
class PaymentConfirmation:
    """Signal `confirm_payment`: the order API saw the payment authorised."""

    payment_id: str
    method: str = "card"


@dataclass
class PaymentFailure:
    """Signal `fail_payment`: the authorisation was declined; the order ends without provisioning."""

    error_code: str = "PAYMENT_DECLINED"
    reason: str = "the payment was declined"


@dataclass
class CancelRequest:
    """Signal `cancel`: the customer (or an operator) cancels before delivery."""

    reason: str = "customer_request"
    note: str | None = None


@wire_dataclass
class InboundEvent:
    """Signal `domain_event`: one verified, upcast event the bridge delivers to the saga.

    `data` is the payload model of (`event_type`, `version`) — the bridge only sends events the
    contract accepted — and goes on the wire whole (every field), as the bridge always sent it.
    """

    event_id: str
    event_type: str
    version: str
    data: SerializeAsAny[Payload]
    causation_id: str | None = None
    occurred_at: str = ""
    tenant_id: str | None = None  # None from bridges of earlier releases

    @field_validator("data", mode="before")
    @classmethod
    def _typed(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Payload) or not isinstance(data, Mapping):
            return data
        entry = schemas.catalog.require(info.data["event_type"])
        return entry.payload_model(info.data["version"]).model_validate_json(_wire_json(data))

    @field_serializer("data")
    def _wire(self, data: Payload) -> WireData:
        return data.model_dump(mode="json")


@dataclass
class AskBook:
    """The `asks` query: the saga's open asks (event id → the event types that may answer it) and the
    asks it no longer waits on (a late answer to one of those is a duplicate, not an attack).
    `checking` is False for a saga started before `trusted-replies`: it checks nothing, so the bridge
    must not hold its (empty) asks against its answers."""

    open: dict[str, list[str]] = field(default_factory=dict)
    closed: dict[str, list[str]] = field(default_factory=dict)
    checking: bool = True


@dataclass
class CompensationEntry:
    """One undo the saga owes; pushed when the step it undoes is done, popped when undone."""

    step: CompensationStep  # refund_payment | deprovision_resources
    pushed_after: str  # the event type whose success made the undo necessary
    resources: list[ResourceRef] | None = None  # when known; None = unknown (ask for all)


@dataclass
class CompensationView:
    """The `compensation` query: what is owed (next undo first), what is done, each undo's state.

    The `temporal` CLI prints every empty list as `null` (the payload is `[]`), so the view also says
    it in words (`summary`) and counts (`owed_count`), which no renderer can turn into nothing."""

    owed: list[CompensationEntry]
    done: list[CompensationStep]
    states: dict[str, str] = field(default_factory=dict)
    owed_count: int = 0
    summary: str = ""


@dataclass
class TimelineEntry:
    """One event in the saga's life: published by it (`out`) or received from the bridge (`in`)."""

    direction: str
    event_type: str
    event_id: str
    at: str
    causation_id: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    ignored: str | None = None  # why an inbound event was not applied (not an answer to an open ask)


@dataclass
class OrderSnapshot:
    """The `status` query: what the saga is doing now and what it still owes."""

    order_id: str
    tenant_id: str
    correlation_id: str
    status: SagaStatus
    step: SagaStep
    compensation_stack: list[CompensationEntry]
    completed_compensations: list[CompensationStep]
    resources: list[ResourceRef]
    failure: str | None = None
    incident_id: str | None = None  # the incident workflow that waits for a person, while it does


@dataclass
class IncidentRequest:
    """Activity input: a compensation that cannot finish goes to a person.

    `failed_step` is the first undo that failed (the incident's key); `failed_steps` names every one
    (empty from sagas that stopped at the first failure, whose only failed step is `failed_step`).
    """

    workflow_id: str
    tenant_id: str
    order_id: str
    correlation_id: str
    failed_step: CompensationStep
    completed_steps: list[CompensationStep]
    reason: str
    failed_steps: list[CompensationStep] = field(default_factory=list)


@dataclass
class IncidentTicket:
    """Input of `OrderIncidentWorkflow`: what a person needs to decide about one failed compensation.

    `attempt` counts the incidents of one saga: a retry that fails again opens the next one."""

    saga_workflow_id: str
    order_id: str
    tenant_id: str
    attempt: int
    failed_steps: list[CompensationStep]
    completed_steps: list[CompensationStep]
    reason: str
    deadline_s: float


@dataclass
class IncidentAction:
    """Update `retry` / `resolve` of an incident: who acts and, for a manual resolution, what they did."""

    note: str = ""
    by: str = "operator"


@dataclass
class IncidentDecision:
    """What a person decided (`retry`, `resolve`), or `expired` when nobody did before the deadline."""

    action: str
    note: str = ""
    by: str = ""


@dataclass
class IncidentClosure:
    """Activity input of `close_incident`: how the incident row ends (`retried`, `resolved`, `expired`)."""

    workflow_id: str
    failed_step: CompensationStep
    resolution: str
    note: str = ""
    by: str = ""
