"""Where a saga is: its status and step (both mirrored into search attributes and the memo).

The values are the strings sagas have always written into their histories and search attributes, so
every reader — the Web UI, `order show`, the demo, a history replayed from before these enums — sees
the same words.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.payloads.order import CompensationStep

__all__ = ["ENDED_STATUSES", "FINAL_STATUSES", "FINAL_STEPS", "SagaStatus", "SagaStep"]


class SagaStatus(StrEnum):
    """What the order is (`OrderResult.status`, the `OrderStatus` search attribute)."""

    PENDING = "pending"
    CREATED = "created"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PROVISIONING = "provisioning"
    FULFILLED = "fulfilled"
    DELIVERED = "delivered"
    PAYMENT_FAILED = "payment_failed"
    COMPENSATING = "compensating"
    CANCELLED = "cancelled"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    RESOLVED_MANUALLY = "resolved_manually"


class SagaStep(StrEnum):
    """What the saga does or waits for now (the `OrderStep` search attribute)."""

    START = "start"
    ORDER_CREATED = "order-created"
    AWAITING_PAYMENT = "awaiting-payment"
    PAYMENT_CONFIRMED = "payment-confirmed"
    AWAITING_PROVISIONING = "awaiting-provisioning"
    FULFILLED = "fulfilled"
    COMPENSATION_STARTED = "compensation-started"
    COMPENSATE_REFUND_PAYMENT = "compensate:refund_payment"
    COMPENSATE_DEPROVISION_RESOURCES = "compensate:deprovision_resources"
    MANUAL_REVIEW = "manual-review"
    DONE = "done"

    @classmethod
    def undoing(cls, undo: CompensationStep) -> SagaStep:
        """The step of running one undo (`compensate:<undo>`)."""
        return cls(f"compensate:{undo.value}")


#: A customer cancel arriving in one of these is too late: the order has ended.
FINAL_STATUSES = frozenset({SagaStatus.DELIVERED, SagaStatus.COMPENSATED, SagaStatus.PAYMENT_FAILED})
#: Steps after which the memo is written even when the compensation stack did not change.
FINAL_STEPS = frozenset({SagaStep.DONE, SagaStep.MANUAL_REVIEW})
#: Statuses after which nothing a customer sends changes the order (the cancel Update's refusal).
ENDED_STATUSES = FINAL_STATUSES | {
    SagaStatus.CANCELLED,
    SagaStatus.COMPENSATION_FAILED,
    SagaStatus.RESOLVED_MANUALLY,
}
