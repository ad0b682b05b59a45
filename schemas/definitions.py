"""The 49 event types of Cloud Factory, declared once. Everything else (topics, schemas, AsyncAPI,
subscriptions, the CLI table) is derived from this list.

Retry profiles: payments, refunds and provisioning are CRITICAL; order lifecycle (and other domains'
business events) DEFAULT; notification outcomes NON_CRITICAL. Customer-facing events are exactly the
ones Notification consumes — `Catalog` enforces that.
"""

from __future__ import annotations

from schemas._internal.catalog import Catalog, EventSpec
from schemas._internal.services import EdgeProcess, RetryProfile, Service
from schemas.payloads import billing as b
from schemas.payloads import identity as i
from schemas.payloads import notification as n
from schemas.payloads import order as o
from schemas.payloads import product as p
from schemas.payloads import provisioning as pr
from schemas.payloads import support as s
from schemas.payloads._base import Payload
from schemas.upcasters import upcasters

__all__ = ["SPECS", "catalog"]

ORDER, PROV, BILL, NOTI = Service.ORDER, Service.PROVISIONING, Service.BILLING, Service.NOTIFICATION
CRITICAL, DEFAULT, NON_CRITICAL = RetryProfile.CRITICAL, RetryProfile.DEFAULT, RetryProfile.NON_CRITICAL


def _event(
    event_type: str,
    publisher: Service,
    consumers: tuple[Service, ...],
    *payloads: type[Payload],
    retry: RetryProfile = DEFAULT,
    summary: str,
    edge: tuple[EdgeProcess, ...] = (),
) -> EventSpec:
    return EventSpec(
        event_type=event_type,
        publisher=publisher,
        consumers=consumers,
        payloads=payloads,
        retry_profile=retry,
        customer_facing=NOTI in consumers,
        summary=summary,
        edge_consumers=edge,
    )


SPECS: tuple[EventSpec, ...] = (
    # --- Order (11, including the saga's refund request to Billing) ---------------------------------
    _event(
        "order.created",
        ORDER,
        (NOTI,),
        o.OrderCreatedV1,
        o.OrderCreatedV2,
        o.OrderCreatedV3,
        summary="A customer placed an order; the fulfilment saga starts.",
    ),
    _event(
        "order.payment-confirmed",
        ORDER,
        (BILL,),
        o.OrderPaymentConfirmedV1,
        retry=CRITICAL,
        summary="The saga saw the payment authorised and asks Billing to capture it.",
    ),
    _event(
        "order.provisioning-started",
        ORDER,
        (PROV,),
        o.OrderProvisioningStartedV1,
        retry=CRITICAL,
        summary="The saga asks Provisioning to create the ordered resources.",
    ),
    _event(
        "order.fulfilled",
        ORDER,
        (BILL, NOTI),
        o.OrderFulfilledV1,
        summary="Paid and provisioned; Billing starts the subscription.",
    ),
    _event(
        "order.failed",
        ORDER,
        (NOTI,),
        o.OrderFailedV1,
        summary="The saga gave up; compensation has run or is running.",
    ),
    _event(
        "order.cancelled",
        ORDER,
        (PROV, NOTI),
        o.OrderCancelledV1,
        summary="The order was cancelled; Provisioning releases anything it created.",
    ),
    _event(
        "order.service-delivered",
        ORDER,
        (NOTI,),
        o.OrderServiceDeliveredV1,
        summary="Resources are reachable; the customer gets their console link.",
    ),
    _event(
        "order.compensation-started",
        ORDER,
        (),
        o.OrderCompensationStartedV1,
        summary="The saga began undoing completed steps (audit).",
    ),
    _event(
        "order.compensation-completed",
        ORDER,
        (),
        o.OrderCompensationCompletedV1,
        summary="Every compensation step succeeded (audit).",
    ),
    _event(
        "order.compensation-failed",
        ORDER,
        (),
        o.OrderCompensationFailedV1,
        o.OrderCompensationFailedV2,
        summary="One or more compensation steps failed; an operator must act.",
    ),
    _event(
        "billing.refund-requested",
        ORDER,
        (BILL,),
        b.BillingRefundRequestedV1,
        b.BillingRefundRequestedV2,
        b.BillingRefundRequestedV3,
        retry=CRITICAL,
        summary="The saga asks Billing to refund a captured payment.",
    ),
    # --- Provisioning (8) -------------------------------------------------------------------------------
    _event(
        "provisioning.started",
        PROV,
        (NOTI,),
        pr.ProvisioningStartedV1,
        retry=CRITICAL,
        summary="Provisioning accepted the request and began creating resources.",
    ),
    _event(
        "provisioning.resource-created",
        PROV,
        (),
        pr.ProvisioningResourceCreatedV1,
        retry=CRITICAL,
        summary="One resource exists (progress, audit).",
    ),
    _event(
        "provisioning.completed",
        PROV,
        (ORDER, BILL, NOTI),
        pr.ProvisioningCompletedV1,
        pr.ProvisioningCompletedV2,
        pr.ProvisioningCompletedV3,
        retry=CRITICAL,
        summary="All resources of an order exist; Billing meters them from now.",
    ),
    _event(
        "provisioning.failed",
        PROV,
        (ORDER, NOTI),
        pr.ProvisioningFailedV1,
        retry=CRITICAL,
        summary="Resources could not be created; the saga compensates.",
    ),
    _event(
        "provisioning.deprovisioning-started",
        PROV,
        (),
        pr.ProvisioningDeprovisioningStartedV1,
        retry=CRITICAL,
        summary="Provisioning began deleting an order's resources.",
    ),
    _event(
        "provisioning.resource-deleted",
        PROV,
        (),
        pr.ProvisioningResourceDeletedV1,
        retry=CRITICAL,
        summary="One resource is gone (progress, audit).",
    ),
    _event(
        "provisioning.deprovisioned",
        PROV,
        (ORDER, NOTI),
        pr.ProvisioningDeprovisionedV1,
        retry=CRITICAL,
        summary="All of an order's resources are deleted.",
    ),
    _event(
        "provisioning.deprovision-failed",
        PROV,
        (),
        pr.ProvisioningDeprovisionFailedV1,
        retry=CRITICAL,
        summary="Some resources could not be deleted; an operator must act.",
    ),
    # --- Billing (10) ------------------------------------------------------------------------------------
    _event(
        "billing.payment-captured",
        BILL,
        (),
        b.BillingPaymentCapturedV1,
        retry=CRITICAL,
        summary="The payment service provider captured the money.",
    ),
    _event(
        "billing.payment-failed",
        BILL,
        (NOTI,),
        b.BillingPaymentFailedV1,
        retry=CRITICAL,
        summary="A capture or renewal charge was declined.",
    ),
    _event(
        "billing.invoice-created", BILL, (NOTI,), b.BillingInvoiceCreatedV1, summary="An invoice was issued."
    ),
    _event("billing.invoice-paid", BILL, (), b.BillingInvoicePaidV1, summary="An invoice was settled."),
    _event(
        "billing.invoice-overdue",
        BILL,
        (NOTI,),
        b.BillingInvoiceOverdueV1,
        summary="An invoice passed its due date unpaid.",
    ),
    _event(
        "billing.refund-completed",
        BILL,
        (ORDER, NOTI),
        b.BillingRefundCompletedV1,
        retry=CRITICAL,
        summary="The refund was paid out.",
    ),
    _event(
        "billing.refund-failed",
        BILL,
        (ORDER, NOTI),
        b.BillingRefundFailedV1,
        retry=CRITICAL,
        summary="The refund could not be paid out.",
    ),
    _event(
        "billing.subscription-started",
        BILL,
        (),
        b.BillingSubscriptionStartedV1,
        summary="A subscription began for a fulfilled order.",
    ),
    _event(
        "billing.subscription-renewed",
        BILL,
        (NOTI,),
        b.BillingSubscriptionRenewedV1,
        summary="A subscription rolled over into a new period.",
    ),
    _event(
        "billing.subscription-cancelled",
        BILL,
        (NOTI,),
        b.BillingSubscriptionCancelledV1,
        summary="A subscription ended.",
    ),
    # --- Notification (2) --------------------------------------------------------------------------------
    _event(
        "notification.sent",
        NOTI,
        (),
        n.NotificationSentV1,
        retry=NON_CRITICAL,
        summary="A customer notification left the building.",
    ),
    _event(
        "notification.failed",
        NOTI,
        (),
        n.NotificationFailedV1,
        retry=NON_CRITICAL,
        summary="A customer notification could not be delivered.",
    ),
    # --- Identity (5) --------------------------------------------------------------------------------------
    _event(
        "identity.user-registered",
        Service.IDENTITY,
        (NOTI,),
        i.IdentityUserRegisteredV1,
        summary="A new user signed up.",
    ),
    _event(
        "identity.email-verified",
        Service.IDENTITY,
        (),
        i.IdentityEmailVerifiedV1,
        summary="A user proved they own their e-mail address.",
    ),
    _event(
        "identity.password-reset-requested",
        Service.IDENTITY,
        (NOTI,),
        i.IdentityPasswordResetRequestedV1,
        summary="A user asked for a password reset link.",
    ),
    _event(
        "identity.api-key-created",
        Service.IDENTITY,
        (NOTI,),
        i.IdentityApiKeyCreatedV1,
        i.IdentityApiKeyCreatedV2,
        summary="A user created an API key.",
        edge=(EdgeProcess.API,),
    ),
    _event(
        "identity.api-key-revoked",
        Service.IDENTITY,
        (NOTI,),
        i.IdentityApiKeyRevokedV1,
        summary="An API key was revoked.",
        edge=(EdgeProcess.API,),
    ),
    # --- Product (6) ---------------------------------------------------------------------------------------
    _event(
        "product.created", Service.PRODUCT, (), p.ProductCreatedV1, summary="A product entered the catalogue."
    ),
    _event(
        "product.updated", Service.PRODUCT, (), p.ProductUpdatedV1, summary="A product's details changed."
    ),
    _event(
        "product.price-changed",
        Service.PRODUCT,
        (),
        p.ProductPriceChangedV1,
        summary="A plan's price changes from a given date.",
    ),
    _event(
        "product.discontinued",
        Service.PRODUCT,
        (),
        p.ProductDiscontinuedV1,
        summary="A product stops being sold.",
    ),
    _event(
        "product.plan-created",
        Service.PRODUCT,
        (),
        p.ProductPlanCreatedV1,
        summary="A plan became orderable.",
    ),
    _event(
        "product.plan-retired",
        Service.PRODUCT,
        (),
        p.ProductPlanRetiredV1,
        summary="A plan stops being sold.",
    ),
    # --- Support (7) ---------------------------------------------------------------------------------------
    _event(
        "support.ticket-created",
        Service.SUPPORT,
        (NOTI,),
        s.SupportTicketCreatedV1,
        summary="A customer opened a ticket.",
    ),
    _event(
        "support.ticket-assigned",
        Service.SUPPORT,
        (),
        s.SupportTicketAssignedV1,
        summary="A ticket got an owner.",
    ),
    _event(
        "support.ticket-replied",
        Service.SUPPORT,
        (NOTI,),
        s.SupportTicketRepliedV1,
        summary="Someone replied on a ticket.",
    ),
    _event(
        "support.ticket-escalated",
        Service.SUPPORT,
        (),
        s.SupportTicketEscalatedV1,
        summary="A ticket moved to a higher support tier.",
    ),
    _event(
        "support.ticket-resolved",
        Service.SUPPORT,
        (NOTI,),
        s.SupportTicketResolvedV1,
        summary="Support considers the ticket solved.",
    ),
    _event(
        "support.ticket-reopened",
        Service.SUPPORT,
        (NOTI,),
        s.SupportTicketReopenedV1,
        summary="The customer reopened a resolved ticket.",
    ),
    _event(
        "support.ticket-closed",
        Service.SUPPORT,
        (),
        s.SupportTicketClosedV1,
        summary="The ticket is closed for good.",
    ),
)

catalog = Catalog(SPECS, upcasters)
"""The catalog of this build (read-only)."""
