"""Payloads of the Billing domain: payments, invoices, refunds and subscriptions.

`billing.refund-requested` is published by the order saga (it asks Billing for money back) and has
evolved twice (see `schemas.upcasters`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.payloads._base import (
    BillingCycle,
    ErrorCode,
    Money,
    Payload,
    PlanId,
    ShortText,
    WireModel,
)
from schemas.payloads.order import PaymentMethod

__all__ = [
    "BillingInvoiceCreatedV1",
    "BillingInvoiceOverdueV1",
    "BillingInvoicePaidV1",
    "BillingPaymentCapturedV1",
    "BillingPaymentFailedV1",
    "BillingRefundCompletedV1",
    "BillingRefundFailedV1",
    "BillingRefundRequestedV1",
    "BillingRefundRequestedV2",
    "BillingRefundRequestedV3",
    "BillingSubscriptionCancelledV1",
    "BillingSubscriptionRenewedV1",
    "BillingSubscriptionStartedV1",
    "InvoiceLine",
    "PaymentFailureCode",
    "RefundInitiator",
    "RefundReason",
    "SubscriptionCancellationReason",
]


class BillingPaymentCapturedV1(Payload):
    payment_id: UUID
    order_id: UUID
    customer_id: UUID
    amount: Money
    method: PaymentMethod
    psp_reference: Annotated[str, Field(min_length=1, max_length=128)]


class PaymentFailureCode(StrEnum):
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    FRAUD_SUSPECTED = "fraud_suspected"
    PROCESSOR_ERROR = "processor_error"


class BillingPaymentFailedV1(Payload):
    payment_id: UUID
    order_id: UUID
    customer_id: UUID
    amount: Money
    failure_code: PaymentFailureCode
    retryable: bool


class InvoiceLine(WireModel):
    description: ShortText
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]
    unit_price: Money
    amount: Money


class BillingInvoiceCreatedV1(Payload):
    invoice_id: UUID
    invoice_number: Annotated[str, Field(pattern=r"^INV-[0-9]{4}-[0-9]{6,}$")]
    customer_id: UUID
    order_id: UUID | None
    subscription_id: UUID | None
    lines: Annotated[list[InvoiceLine], Field(min_length=1, max_length=500)]
    subtotal: Money
    tax: Money
    total: Money
    due_date: dt.date


class BillingInvoicePaidV1(Payload):
    invoice_id: UUID
    customer_id: UUID
    payment_id: UUID
    amount: Money


class BillingInvoiceOverdueV1(Payload):
    invoice_id: UUID
    customer_id: UUID
    amount_due: Money
    due_date: dt.date
    days_overdue: Annotated[int, Field(ge=1)]


class BillingRefundRequestedV1(Payload):
    """v1: USD cents and a free-text reason."""

    order_id: UUID
    payment_id: UUID
    amount_cents: Annotated[int, Field(ge=1)]
    reason: ShortText


class RefundReason(StrEnum):
    ORDER_FAILED = "order_failed"
    ORDER_CANCELLED = "order_cancelled"
    PARTIAL_DELIVERY = "partial_delivery"
    GOODWILL = "goodwill"
    OTHER = "other"


class BillingRefundRequestedV2(Payload):
    """v2: any currency, and a reason code Billing can report on (free text kept as a note)."""

    order_id: UUID
    payment_id: UUID
    amount: Money
    reason: RefundReason
    note: ShortText | None = None


class RefundInitiator(StrEnum):
    SAGA = "saga"
    SUPPORT = "support"
    CUSTOMER = "customer"


class BillingRefundRequestedV3(Payload):
    """v3: an idempotency key so Billing refunds exactly once, and who asked for it."""

    order_id: UUID
    payment_id: UUID
    amount: Money
    reason: RefundReason
    note: ShortText | None = None
    idempotency_key: Annotated[str, Field(min_length=8, max_length=128)]
    initiated_by: RefundInitiator


class BillingRefundCompletedV1(Payload):
    refund_id: UUID
    order_id: UUID
    payment_id: UUID
    amount: Money


class BillingRefundFailedV1(Payload):
    refund_id: UUID
    order_id: UUID
    payment_id: UUID
    amount: Money
    error_code: ErrorCode
    reason: ShortText
    retryable: bool


class BillingSubscriptionStartedV1(Payload):
    subscription_id: UUID
    customer_id: UUID
    order_id: UUID
    plan_id: PlanId
    billing_cycle: BillingCycle
    price: Money
    period_start: dt.date
    period_end: dt.date


class BillingSubscriptionRenewedV1(Payload):
    subscription_id: UUID
    customer_id: UUID
    plan_id: PlanId
    invoice_id: UUID
    price: Money
    period_start: dt.date
    period_end: dt.date


class SubscriptionCancellationReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    NON_PAYMENT = "non_payment"
    ORDER_COMPENSATED = "order_compensated"
    PLAN_RETIRED = "plan_retired"


class BillingSubscriptionCancelledV1(Payload):
    subscription_id: UUID
    customer_id: UUID
    plan_id: PlanId
    reason: SubscriptionCancellationReason
    effective_on: dt.date
    prorated_refund: Money | None = None
