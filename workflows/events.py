"""The saga's outgoing event data, built from the order as the `schemas` payload models.

Pure functions of their arguments, safe in workflow code. Each sets exactly the fields the saga has
always sent (an optional field it never sent stays unset, so it stays off the wire), and the model
validates the data where it is made instead of in the activity.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from schemas import Money
from schemas.payloads._base import BillingCycle, ResourceRef
from schemas.payloads.billing import BillingRefundRequestedV3, RefundInitiator, RefundReason
from schemas.payloads.order import (
    CompensationStep,
    FailureStage,
    OrderCancellationReason,
    OrderCancelledV1,
    OrderCompensationCompletedV1,
    OrderCompensationFailedV2,
    OrderCompensationStartedV1,
    OrderFailedV1,
    OrderFulfilledV1,
    OrderPaymentConfirmedV1,
    OrderProvisioningStartedV1,
    OrderServiceDeliveredV1,
    PaymentMethod,
)
from workflows.contracts import OrderRequest, PaymentConfirmation
from workflows.plans import resources_for_plan

__all__ = [
    "cancelled",
    "compensation_completed",
    "compensation_failed",
    "compensation_started",
    "console_url",
    "failed",
    "fulfilled",
    "payment_confirmed",
    "provisioning_started",
    "refund_requested",
    "service_delivered",
    "short",
]

_SHORT_TEXT = 200


def short(text: str) -> str:
    """Event reasons are ShortText (≤ 200 characters)."""
    return text if len(text) <= _SHORT_TEXT else text[: _SHORT_TEXT - 3] + "..."


def console_url(order: OrderRequest) -> str:
    """Where the customer finds the credentials of a delivered order."""
    return f"https://console.cloud-factory.example/t/{order.tenant_id}/orders/{order.order_id}/credentials"


def payment_confirmed(order: OrderRequest, payment: PaymentConfirmation) -> OrderPaymentConfirmedV1:
    return OrderPaymentConfirmedV1(
        order_id=uuid.UUID(order.order_id),
        payment_id=uuid.UUID(payment.payment_id),
        amount=order.total,
        method=PaymentMethod(payment.method),
    )


def provisioning_started(order: OrderRequest) -> OrderProvisioningStartedV1:
    return OrderProvisioningStartedV1(
        order_id=uuid.UUID(order.order_id),
        customer_id=uuid.UUID(order.customer_id),
        plan_id=order.plan_id,
        region=order.region,
        resources=resources_for_plan(order.plan_id),
    )


def fulfilled(order: OrderRequest, resources: Sequence[ResourceRef]) -> OrderFulfilledV1:
    return OrderFulfilledV1(
        order_id=uuid.UUID(order.order_id),
        customer_id=uuid.UUID(order.customer_id),
        subscription_plan_id=order.plan_id,
        billing_cycle=BillingCycle(order.billing_cycle),
        total=order.total,
        resources=list(resources),
    )


def service_delivered(order: OrderRequest, resources: Sequence[ResourceRef]) -> OrderServiceDeliveredV1:
    return OrderServiceDeliveredV1(
        order_id=uuid.UUID(order.order_id),
        customer_id=uuid.UUID(order.customer_id),
        resources=list(resources),
        console_url=console_url(order),
    )


def failed(
    order: OrderRequest, *, stage: FailureStage, error_code: str, reason: str, compensated: bool
) -> OrderFailedV1:
    return OrderFailedV1(
        order_id=uuid.UUID(order.order_id),
        customer_id=uuid.UUID(order.customer_id),
        stage=stage,
        error_code=error_code,
        reason=short(reason),
        compensated=compensated,
    )


def compensation_started(
    order: OrderRequest, stage: FailureStage, steps: Sequence[CompensationStep]
) -> OrderCompensationStartedV1:
    return OrderCompensationStartedV1(
        order_id=uuid.UUID(order.order_id), failed_stage=stage, steps=list(steps)
    )


def cancelled(
    order: OrderRequest, reason: OrderCancellationReason, note: str | None, resources: Sequence[ResourceRef]
) -> OrderCancelledV1:
    return OrderCancelledV1(
        order_id=uuid.UUID(order.order_id),
        customer_id=uuid.UUID(order.customer_id),
        reason=reason,
        note=note,
        resources_to_release=list(resources),
    )


def refund_requested(
    order: OrderRequest, payment: PaymentConfirmation, *, by_customer: bool, round_: int = 0
) -> BillingRefundRequestedV3:
    """One idempotency key per order, for every ask: Billing refunds once however often it is asked.

    `round_` counts the refunds Billing declined: a person's retry after a decline is a new refund
    (`…-retry<n>`), since the declined one moved no money."""
    return BillingRefundRequestedV3(
        order_id=uuid.UUID(order.order_id),
        payment_id=uuid.UUID(payment.payment_id),
        amount=order.total,
        reason=RefundReason.ORDER_CANCELLED if by_customer else RefundReason.ORDER_FAILED,
        idempotency_key=f"refund-{order.workflow_id}" + (f"-retry{round_}" if round_ else ""),
        initiated_by=RefundInitiator.SAGA,
    )


def compensation_completed(
    order: OrderRequest, completed: Sequence[CompensationStep], refunded: Money | None
) -> OrderCompensationCompletedV1:
    return OrderCompensationCompletedV1(
        order_id=uuid.UUID(order.order_id), completed_steps=list(completed), refunded=refunded
    )


def compensation_failed(
    order: OrderRequest,
    failed_steps: Sequence[CompensationStep],
    completed: Sequence[CompensationStep],
    reason: str,
) -> OrderCompensationFailedV2:
    return OrderCompensationFailedV2(
        order_id=uuid.UUID(order.order_id),
        failed_step=failed_steps[0],
        failed_steps=list(failed_steps),
        completed_steps=list(completed),
        reason=short(reason),
        requires_manual_action=True,
    )
