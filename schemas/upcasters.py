"""Real schema evolutions, applied on read so handlers only see the newest payload version.

Each step documents why its defaults are right for the records old producers actually sent. Steps are
pure functions of the validated old payload (no clock, no I/O), so replaying a topic is deterministic.
"""

from __future__ import annotations

from schemas._internal.upcasting import UpcasterRegistry
from schemas.payloads._base import BillingCycle, Money, ResourceKind, ResourceRef
from schemas.payloads.billing import (
    BillingRefundRequestedV1,
    BillingRefundRequestedV2,
    BillingRefundRequestedV3,
    RefundInitiator,
    RefundReason,
)
from schemas.payloads.identity import IdentityApiKeyCreatedV1, IdentityApiKeyCreatedV2
from schemas.payloads.order import (
    OrderChannel,
    OrderCompensationFailedV1,
    OrderCompensationFailedV2,
    OrderCreatedV1,
    OrderCreatedV2,
    OrderCreatedV3,
    OrderLine,
)
from schemas.payloads.provisioning import (
    ProvisionedResourceV2,
    ProvisioningCompletedV1,
    ProvisioningCompletedV2,
    ProvisioningCompletedV3,
)

__all__ = ["LEGACY_CURRENCY", "upcasters"]

upcasters = UpcasterRegistry()

LEGACY_CURRENCY = "USD"
"""Before multi-currency (order.created v2, billing.refund-requested v2) every price was USD cents."""


# --- order.created -----------------------------------------------------------------------------------


@upcasters.register("order.created", "v1")
def order_created_v1_to_v2(old: OrderCreatedV1) -> OrderCreatedV2:
    """v1 orders had exactly one plan and a USD-cent total: that becomes one line and a Money total."""
    total = Money(amount_minor=old.total_cents, currency=LEGACY_CURRENCY)
    return OrderCreatedV2(
        order_id=old.order_id,
        customer_id=old.customer_id,
        lines=[OrderLine(plan_id=old.plan_id, quantity=old.quantity, amount=total)],
        total=total,
        region=old.region,
    )


@upcasters.register("order.created", "v2")
def order_created_v2_to_v3(old: OrderCreatedV2) -> OrderCreatedV3:
    """Before v3 totals were tax-inclusive (tax 0, subtotal = total), every plan was billed monthly and
    the web console was the only sales channel."""
    return OrderCreatedV3(
        order_id=old.order_id,
        customer_id=old.customer_id,
        lines=old.lines,
        subtotal=old.total,
        tax=Money(amount_minor=0, currency=old.total.currency),
        total=old.total,
        region=old.region,
        billing_cycle=BillingCycle.MONTHLY,
        channel=OrderChannel.WEB,
        promotion_code=None,
    )


# --- order.compensation-failed --------------------------------------------------------------------------


@upcasters.register("order.compensation-failed", "v1")
def compensation_failed_v1_to_v2(old: OrderCompensationFailedV1) -> OrderCompensationFailedV2:
    """A v1 record's only structured failure is `failedStep` (sagas before "every-undo" stopped there;
    later v1 producers named further failures only in the free-text reason, kept verbatim), so the
    list is that one step."""
    return OrderCompensationFailedV2(
        order_id=old.order_id,
        failed_step=old.failed_step,
        failed_steps=[old.failed_step],
        completed_steps=old.completed_steps,
        reason=old.reason,
        requires_manual_action=old.requires_manual_action,
    )


# --- provisioning.completed ------------------------------------------------------------------------------


@upcasters.register("provisioning.completed", "v1")
def provisioning_completed_v1_to_v2(old: ProvisioningCompletedV1) -> ProvisioningCompletedV2:
    """v1 only provisioned virtual machines, which were unnamed: name them from their id."""
    return ProvisioningCompletedV2(
        order_id=old.order_id,
        region=old.region,
        resources=[
            ProvisionedResourceV2(resource_id=rid, kind=ResourceKind.VM, name=f"vm-{rid.hex[:8]}")
            for rid in old.resource_ids
        ],
    )


@upcasters.register("provisioning.completed", "v2")
def provisioning_completed_v2_to_v3(old: ProvisioningCompletedV2) -> ProvisioningCompletedV3:
    """v2 orders lived in one region (copied onto each resource), exposed no endpoints in the event and
    were reported after the first successful attempt."""
    return ProvisioningCompletedV3(
        order_id=old.order_id,
        resources=[
            ResourceRef(resource_id=r.resource_id, kind=r.kind, region=old.region, name=r.name)
            for r in old.resources
        ],
        endpoints=[],
        attempts=1,
    )


# --- billing.refund-requested ----------------------------------------------------------------------------

_V1_SAGA_REASONS = {
    "order failed": RefundReason.ORDER_FAILED,
    "order cancelled": RefundReason.ORDER_CANCELLED,
    "order canceled": RefundReason.ORDER_CANCELLED,
}


@upcasters.register("billing.refund-requested", "v1")
def refund_requested_v1_to_v2(old: BillingRefundRequestedV1) -> BillingRefundRequestedV2:
    """USD cents become Money; the v1 saga's two fixed reason strings map to codes, anything else is
    `other`, and the original text is kept as the note either way."""
    return BillingRefundRequestedV2(
        order_id=old.order_id,
        payment_id=old.payment_id,
        amount=Money(amount_minor=old.amount_cents, currency=LEGACY_CURRENCY),
        reason=_V1_SAGA_REASONS.get(old.reason.strip().lower(), RefundReason.OTHER),
        note=old.reason,
    )


@upcasters.register("billing.refund-requested", "v2")
def refund_requested_v2_to_v3(old: BillingRefundRequestedV2) -> BillingRefundRequestedV3:
    """Only the saga requested refunds before v3, at most one per payment, so order + payment is a stable
    idempotency key that also survives redelivery of the old record."""
    return BillingRefundRequestedV3(
        order_id=old.order_id,
        payment_id=old.payment_id,
        amount=old.amount,
        reason=old.reason,
        note=old.note,
        idempotency_key=f"refund:{old.order_id}:{old.payment_id}",
        initiated_by=RefundInitiator.SAGA,
    )


# --- identity.api-key-created ----------------------------------------------------------------------------


@upcasters.register("identity.api-key-created", "v1")
def api_key_created_v1_to_v2(old: IdentityApiKeyCreatedV1) -> IdentityApiKeyCreatedV2:
    """v1 carried no trace of the secret, and nothing outside Identity may read its tables, so a v1 key
    has no hash: the edge keeps it on record (its revocation still lands) but refuses it."""
    return IdentityApiKeyCreatedV2(
        api_key_id=old.api_key_id,
        user_id=old.user_id,
        name=old.name,
        prefix=old.prefix,
        scopes=old.scopes,
        expires_on=old.expires_on,
        secret_sha256=None,
    )
