"""Payloads of the Order domain (the saga's own lifecycle events).

`order.created` has evolved twice and `order.compensation-failed` once; older versions stay here
verbatim because old producers and retained records still carry them (see `schemas.upcasters`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field, model_validator

from schemas.payloads._base import (
    BillingCycle,
    ErrorCode,
    Money,
    Payload,
    PlanId,
    Region,
    ResourceRef,
    ResourceSpec,
    ShortText,
    WireModel,
)

__all__ = [
    "CompensationStep",
    "FailureStage",
    "OrderCancellationReason",
    "OrderCancelledV1",
    "OrderChannel",
    "OrderCompensationCompletedV1",
    "OrderCompensationFailedV1",
    "OrderCompensationFailedV2",
    "OrderCompensationStartedV1",
    "OrderCreatedV1",
    "OrderCreatedV2",
    "OrderCreatedV3",
    "OrderFailedV1",
    "OrderFulfilledV1",
    "OrderLine",
    "OrderPaymentConfirmedV1",
    "OrderProvisioningStartedV1",
    "OrderServiceDeliveredV1",
    "PaymentMethod",
]


class PaymentMethod(StrEnum):
    CARD = "card"
    SEPA_DEBIT = "sepa_debit"
    BANK_TRANSFER = "bank_transfer"
    INVOICE = "invoice"


class OrderChannel(StrEnum):
    WEB = "web"
    API = "api"
    PARTNER = "partner"


class OrderLine(WireModel):
    """One plan bought in an order (v2+)."""

    plan_id: PlanId
    quantity: Annotated[int, Field(ge=1, le=1000)]
    amount: Money


class OrderCreatedV1(Payload):
    """v1: one plan per order, prices were USD-only cents."""

    order_id: UUID
    customer_id: UUID
    plan_id: PlanId
    quantity: Annotated[int, Field(ge=1, le=1000)]
    total_cents: Annotated[int, Field(ge=0)]
    region: Region


class OrderCreatedV2(Payload):
    """v2: multi-currency totals and several lines per order."""

    order_id: UUID
    customer_id: UUID
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]
    total: Money
    region: Region


class OrderCreatedV3(Payload):
    """v3: explicit billing cycle, tax split out of the total, sales channel and promotion code."""

    order_id: UUID
    customer_id: UUID
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]
    subtotal: Money
    tax: Money
    total: Money
    region: Region
    billing_cycle: BillingCycle
    channel: OrderChannel
    promotion_code: Annotated[str, Field(pattern=r"^[A-Z0-9]{4,20}$")] | None = None


class OrderPaymentConfirmedV1(Payload):
    order_id: UUID
    payment_id: UUID
    amount: Money
    method: PaymentMethod


class OrderProvisioningStartedV1(Payload):
    order_id: UUID
    customer_id: UUID
    plan_id: PlanId
    region: Region
    resources: Annotated[list[ResourceSpec], Field(min_length=1, max_length=100)]


class OrderFulfilledV1(Payload):
    order_id: UUID
    customer_id: UUID
    subscription_plan_id: PlanId
    billing_cycle: BillingCycle
    total: Money
    resources: Annotated[list[ResourceRef], Field(min_length=1, max_length=100)]


class FailureStage(StrEnum):
    VALIDATION = "validation"
    PAYMENT = "payment"
    PROVISIONING = "provisioning"
    BILLING = "billing"


class OrderFailedV1(Payload):
    order_id: UUID
    customer_id: UUID
    stage: FailureStage
    error_code: ErrorCode
    reason: ShortText
    compensated: bool


class OrderCancellationReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    PAYMENT_FAILED = "payment_failed"
    FRAUD_SUSPECTED = "fraud_suspected"
    OUT_OF_CAPACITY = "out_of_capacity"
    ADMINISTRATIVE = "administrative"


class OrderCancelledV1(Payload):
    order_id: UUID
    customer_id: UUID
    reason: OrderCancellationReason
    note: ShortText | None = None
    resources_to_release: Annotated[list[ResourceRef], Field(max_length=100)]


class OrderServiceDeliveredV1(Payload):
    order_id: UUID
    customer_id: UUID
    resources: Annotated[list[ResourceRef], Field(min_length=1, max_length=100)]
    console_url: Annotated[str, Field(pattern=r"^https://[^\s]+$", max_length=2048)]


class CompensationStep(StrEnum):
    REFUND_PAYMENT = "refund_payment"
    DEPROVISION_RESOURCES = "deprovision_resources"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    RELEASE_QUOTA = "release_quota"


class OrderCompensationStartedV1(Payload):
    order_id: UUID
    failed_stage: FailureStage
    steps: Annotated[list[CompensationStep], Field(min_length=1)]


class OrderCompensationCompletedV1(Payload):
    order_id: UUID
    completed_steps: Annotated[list[CompensationStep], Field(min_length=1)]
    refunded: Money | None = None


class OrderCompensationFailedV1(Payload):
    """v1: one `failedStep`; when several undos failed, the others were named only in `reason`."""

    order_id: UUID
    failed_step: CompensationStep
    completed_steps: list[CompensationStep]
    reason: ShortText
    requires_manual_action: bool


class OrderCompensationFailedV2(Payload):
    """v2: `failedSteps` names every undo that failed, in the order they failed (the saga tries every
    undo after one fails).

    `failedStep` stays and always equals `failedSteps[0]`: the first failure is what incidents are
    keyed on, and consumers written against v1 keep reading it unchanged. The two cannot disagree:
    a payload whose `failedSteps` does not start with `failedStep`, or names a step twice (each undo
    runs once), is rejected. v1 records are read with `failedSteps = [failedStep]`.
    """

    order_id: UUID
    failed_step: CompensationStep
    failed_steps: Annotated[
        list[CompensationStep],
        Field(
            min_length=1,
            max_length=len(CompensationStep),
            description="Every undo that failed, in the order they failed; the first is failedStep.",
        ),
    ]
    completed_steps: list[CompensationStep]
    reason: ShortText
    requires_manual_action: bool

    @model_validator(mode="after")
    def _first_failure_leads(self) -> OrderCompensationFailedV2:
        """One source of truth for the first failure: `failed_step` must be `failed_steps[0]`."""
        if self.failed_steps[0] != self.failed_step:
            raise ValueError("failedSteps must start with failedStep (the first undo that failed)")
        if len(set(self.failed_steps)) != len(self.failed_steps):
            raise ValueError("failedSteps names each undo once")
        return self
