"""One realistic example payload (wire form) per event type and version.

They document the schemas (JSON Schema `examples`, AsyncAPI message examples, `events schema`) and feed
the tests, which check that every (type, version) has one and that it validates.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["EXAMPLES", "example_data", "example_event"]

ORDER = "6f1c2f0e-8a4b-4c1e-9d2a-3b7e5c9a1f01"
CUSTOMER = "0b8e6c55-2d4f-4f7a-8c61-9e2b7d3a4c10"
PAYMENT = "9a3d1e7c-5b2f-4e8a-b6c4-1f0d2e3a4b5c"
RESOURCE_1 = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98"
RESOURCE_2 = "7d6c5b4a-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
INVOICE = "5e4d3c2b-1a09-4f8e-8d7c-6b5a4f3e2d1c"
SUBSCRIPTION = "8b7a6f5e-4d3c-4b2a-9f1e-0d9c8b7a6f5e"
REFUND = "2a1b0c9d-8e7f-4a6b-9c5d-4e3f2a1b0c9d"
USER = "4f3e2d1c-0b9a-4e8d-a7c6-b5a4f3e2d1c0"
PRODUCT = "1d0c9b8a-7f6e-4d5c-8b4a-3f2e1d0c9b8a"
TICKET = "c0b1a2d3-e4f5-4a6b-9c7d-8e9f0a1b2c3d"
AGENT = "d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a"
NOTIFICATION = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"
TRIGGER = "f3a4b5c6-d7e8-4f9a-8b1c-2d3e4f5a6b7c"


def _money(amount: int, currency: str = "EUR") -> dict[str, Any]:
    return {"amountMinor": amount, "currency": currency}


_VM_1 = {"resourceId": RESOURCE_1, "kind": "vm", "region": "eu-west-1", "name": "web-1"}
_DB_1 = {"resourceId": RESOURCE_2, "kind": "database", "region": "eu-west-1", "name": "orders-db"}
_SPECS = [
    {"kind": "vm", "name": "web-1", "sku": "VM-STD-4", "quantity": 1},
    {"kind": "database", "name": "orders-db", "sku": "DB-PG-2", "quantity": 1},
]
_LINES = [
    {"planId": "vm-standard-4", "quantity": 1, "amount": _money(4900)},
    {"planId": "db-postgres-2", "quantity": 1, "amount": _money(3500)},
]

EXAMPLES: MappingProxyType[tuple[str, str], dict[str, Any]] = MappingProxyType(
    {
        ("order.created", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "planId": "vm-standard-4",
            "quantity": 2,
            "totalCents": 9800,
            "region": "us-east-1",
        },
        ("order.created", "v2"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "lines": _LINES,
            "total": _money(8400),
            "region": "eu-west-1",
        },
        ("order.created", "v3"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "lines": _LINES,
            "subtotal": _money(8400),
            "tax": _money(1596),
            "total": _money(9996),
            "region": "eu-west-1",
            "billingCycle": "monthly",
            "channel": "api",
            "promotionCode": "SPRING25",
        },
        ("order.payment-confirmed", "v1"): {
            "orderId": ORDER,
            "paymentId": PAYMENT,
            "amount": _money(9996),
            "method": "card",
        },
        ("order.provisioning-started", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "planId": "vm-standard-4",
            "region": "eu-west-1",
            "resources": _SPECS,
        },
        ("order.fulfilled", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "subscriptionPlanId": "vm-standard-4",
            "billingCycle": "monthly",
            "total": _money(9996),
            "resources": [_VM_1, _DB_1],
        },
        ("order.failed", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "stage": "provisioning",
            "errorCode": "CAPACITY_EXHAUSTED",
            "reason": "No capacity for VM-STD-4 in eu-west-1",
            "compensated": True,
        },
        ("order.cancelled", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "reason": "customer_request",
            "note": "Ordered the wrong size",
            "resourcesToRelease": [_VM_1],
        },
        ("order.service-delivered", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "resources": [_VM_1, _DB_1],
            "consoleUrl": f"https://console.cloud-factory.dev/orders/{ORDER}",
        },
        ("order.compensation-started", "v1"): {
            "orderId": ORDER,
            "failedStage": "provisioning",
            "steps": ["deprovision_resources", "refund_payment"],
        },
        ("order.compensation-completed", "v1"): {
            "orderId": ORDER,
            "completedSteps": ["deprovision_resources", "refund_payment"],
            "refunded": _money(9996),
        },
        ("order.compensation-failed", "v1"): {
            "orderId": ORDER,
            "failedStep": "refund_payment",
            "completedSteps": ["deprovision_resources"],
            "reason": "Payment provider rejected the refund",
            "requiresManualAction": True,
        },
        ("order.compensation-failed", "v2"): {
            "orderId": ORDER,
            "failedStep": "deprovision_resources",
            "failedSteps": ["deprovision_resources", "refund_payment"],
            "completedSteps": [],
            "reason": "undos failed: deprovision_resources, refund_payment — deprovisioning was never "
            "confirmed; refund failed: PSP_DECLINED the refund was declined",
            "requiresManualAction": True,
        },
        ("billing.refund-requested", "v1"): {
            "orderId": ORDER,
            "paymentId": PAYMENT,
            "amountCents": 9800,
            "reason": "order failed",
        },
        ("billing.refund-requested", "v2"): {
            "orderId": ORDER,
            "paymentId": PAYMENT,
            "amount": _money(9996),
            "reason": "order_failed",
            "note": "Provisioning capacity exhausted",
        },
        ("billing.refund-requested", "v3"): {
            "orderId": ORDER,
            "paymentId": PAYMENT,
            "amount": _money(9996),
            "reason": "order_failed",
            "note": None,
            "idempotencyKey": f"refund:{ORDER}:{PAYMENT}",
            "initiatedBy": "saga",
        },
        ("provisioning.started", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "region": "eu-west-1",
            "resources": _SPECS,
            "estimatedSeconds": 240,
        },
        ("provisioning.resource-created", "v1"): {"orderId": ORDER, "resource": _VM_1, "attempt": 1},
        ("provisioning.completed", "v1"): {
            "orderId": ORDER,
            "region": "us-east-1",
            "resourceIds": [RESOURCE_1],
        },
        ("provisioning.completed", "v2"): {
            "orderId": ORDER,
            "region": "eu-west-1",
            "resources": [
                {"resourceId": RESOURCE_1, "kind": "vm", "name": "web-1"},
                {"resourceId": RESOURCE_2, "kind": "database", "name": "orders-db"},
            ],
        },
        ("provisioning.completed", "v3"): {
            "orderId": ORDER,
            "resources": [_VM_1, _DB_1],
            "endpoints": [
                {"resourceId": RESOURCE_1, "url": "https://web-1.eu-west-1.cloud-factory.dev"},
                {"resourceId": RESOURCE_2, "url": "postgres://orders-db.eu-west-1.cloud-factory.dev:5432"},
            ],
            "attempts": 2,
        },
        ("provisioning.failed", "v1"): {
            "orderId": ORDER,
            "region": "eu-west-1",
            "errorCode": "CAPACITY_EXHAUSTED",
            "reason": "No capacity for VM-STD-4",
            "retryable": False,
            "partialResources": [_DB_1],
        },
        ("provisioning.deprovisioning-started", "v1"): {
            "orderId": ORDER,
            "resources": [_VM_1, _DB_1],
            "reason": "compensation",
        },
        ("provisioning.resource-deleted", "v1"): {"orderId": ORDER, "resource": _DB_1},
        ("provisioning.deprovisioned", "v1"): {
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "resources": [_VM_1, _DB_1],
            "reason": "order_cancelled",
        },
        ("provisioning.deprovision-failed", "v1"): {
            "orderId": ORDER,
            "failedResources": [_DB_1],
            "errorCode": "DELETE_PROTECTED",
            "reason": "Database has deletion protection enabled",
        },
        ("billing.payment-captured", "v1"): {
            "paymentId": PAYMENT,
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "amount": _money(9996),
            "method": "card",
            "pspReference": "ch_3PxQ2bL9",
        },
        ("billing.payment-failed", "v1"): {
            "paymentId": PAYMENT,
            "orderId": ORDER,
            "customerId": CUSTOMER,
            "amount": _money(9996),
            "failureCode": "insufficient_funds",
            "retryable": True,
        },
        ("billing.invoice-created", "v1"): {
            "invoiceId": INVOICE,
            "invoiceNumber": "INV-2025-000042",
            "customerId": CUSTOMER,
            "orderId": ORDER,
            "subscriptionId": SUBSCRIPTION,
            "lines": [
                {
                    "description": "vm-standard-4, monthly",
                    "quantity": 1,
                    "unitPrice": _money(4900),
                    "amount": _money(4900),
                },
                {
                    "description": "db-postgres-2, monthly",
                    "quantity": 1,
                    "unitPrice": _money(3500),
                    "amount": _money(3500),
                },
            ],
            "subtotal": _money(8400),
            "tax": _money(1596),
            "total": _money(9996),
            "dueDate": "2025-07-15",
        },
        ("billing.invoice-paid", "v1"): {
            "invoiceId": INVOICE,
            "customerId": CUSTOMER,
            "paymentId": PAYMENT,
            "amount": _money(9996),
        },
        ("billing.invoice-overdue", "v1"): {
            "invoiceId": INVOICE,
            "customerId": CUSTOMER,
            "amountDue": _money(9996),
            "dueDate": "2025-07-15",
            "daysOverdue": 7,
        },
        ("billing.refund-completed", "v1"): {
            "refundId": REFUND,
            "orderId": ORDER,
            "paymentId": PAYMENT,
            "amount": _money(9996),
        },
        ("billing.refund-failed", "v1"): {
            "refundId": REFUND,
            "orderId": ORDER,
            "paymentId": PAYMENT,
            "amount": _money(9996),
            "errorCode": "PSP_TIMEOUT",
            "reason": "Payment provider did not answer in 30 s",
            "retryable": True,
        },
        ("billing.subscription-started", "v1"): {
            "subscriptionId": SUBSCRIPTION,
            "customerId": CUSTOMER,
            "orderId": ORDER,
            "planId": "vm-standard-4",
            "billingCycle": "monthly",
            "price": _money(9996),
            "periodStart": "2025-07-01",
            "periodEnd": "2025-07-31",
        },
        ("billing.subscription-renewed", "v1"): {
            "subscriptionId": SUBSCRIPTION,
            "customerId": CUSTOMER,
            "planId": "vm-standard-4",
            "invoiceId": INVOICE,
            "price": _money(9996),
            "periodStart": "2025-08-01",
            "periodEnd": "2025-08-31",
        },
        ("billing.subscription-cancelled", "v1"): {
            "subscriptionId": SUBSCRIPTION,
            "customerId": CUSTOMER,
            "planId": "vm-standard-4",
            "reason": "customer_request",
            "effectiveOn": "2025-08-31",
            "proratedRefund": None,
        },
        ("notification.sent", "v1"): {
            "notificationId": NOTIFICATION,
            "recipientId": CUSTOMER,
            "channel": "email",
            "template": "order.created",
            "triggerEventId": TRIGGER,
            "triggerEventType": "order.created",
        },
        ("notification.failed", "v1"): {
            "notificationId": NOTIFICATION,
            "recipientId": CUSTOMER,
            "channel": "sms",
            "template": "billing.payment-failed",
            "triggerEventId": TRIGGER,
            "triggerEventType": "billing.payment-failed",
            "errorCode": "INVALID_NUMBER",
            "reason": "Recipient number is not reachable",
            "attempts": 3,
        },
        ("identity.user-registered", "v1"): {
            "userId": USER,
            "email": "ada@example.com",
            "displayName": "Ada Lovelace",
            "locale": "en-GB",
            "marketingOptIn": False,
        },
        ("identity.email-verified", "v1"): {"userId": USER, "email": "ada@example.com"},
        ("identity.password-reset-requested", "v1"): {
            "userId": USER,
            "email": "ada@example.com",
            "resetRequestId": TRIGGER,
            "expiresAt": "2025-07-01T12:30:00Z",
        },
        ("identity.api-key-created", "v1"): {
            "apiKeyId": TRIGGER,
            "userId": USER,
            "name": "CI deploys",
            "prefix": "cfk_8f2a1c",
            "scopes": ["orders:read", "resources:write"],
            "expiresOn": "2026-01-01",
        },
        ("identity.api-key-created", "v2"): {
            "apiKeyId": TRIGGER,
            "userId": USER,
            "name": "CI deploys",
            "prefix": "cfk_8f2a1c",
            "scopes": ["orders:read", "orders:write"],
            "expiresOn": "2026-01-01",
            "secretSha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        },
        ("identity.api-key-revoked", "v1"): {
            "apiKeyId": TRIGGER,
            "userId": USER,
            "revokedBy": USER,
            "reason": "Key leaked in a build log",
        },
        ("product.created", "v1"): {
            "productId": PRODUCT,
            "sku": "VM-STD",
            "name": "Standard VM",
            "description": "General purpose virtual machines",
            "category": "compute",
            "regions": ["eu-west-1", "us-east-1"],
        },
        ("product.updated", "v1"): {
            "productId": PRODUCT,
            "name": "Standard VM",
            "description": "General purpose virtual machines with local NVMe",
            "regions": ["eu-west-1", "us-east-1", "ap-south-1"],
            "changedFields": ["description", "regions"],
        },
        ("product.price-changed", "v1"): {
            "productId": PRODUCT,
            "planId": "vm-standard-4",
            "oldPrice": _money(4900),
            "newPrice": _money(4500),
            "effectiveFrom": "2025-09-01",
        },
        ("product.discontinued", "v1"): {
            "productId": PRODUCT,
            "endOfSale": "2025-12-31",
            "endOfLife": "2026-06-30",
            "replacementProductId": None,
        },
        ("product.plan-created", "v1"): {
            "planId": "vm-standard-8",
            "productId": PRODUCT,
            "name": "Standard VM, 8 vCPU",
            "price": _money(9500),
            "billingCycle": "monthly",
            "limits": {"vcpus": 8, "memoryMib": 32768, "storageGib": 200},
        },
        ("product.plan-retired", "v1"): {
            "planId": "vm-standard-2",
            "productId": PRODUCT,
            "retiredOn": "2025-10-01",
            "migrateToPlanId": "vm-standard-4",
        },
        ("support.ticket-created", "v1"): {
            "ticketId": TICKET,
            "customerId": CUSTOMER,
            "subject": "VM web-1 unreachable after resize",
            "priority": "high",
            "category": "technical",
            "orderId": ORDER,
        },
        ("support.ticket-assigned", "v1"): {
            "ticketId": TICKET,
            "assigneeId": AGENT,
            "team": "compute-support",
            "tier": 2,
        },
        ("support.ticket-replied", "v1"): {
            "ticketId": TICKET,
            "replyId": TRIGGER,
            "customerId": CUSTOMER,
            "author": "agent",
            "preview": "We found the cause: the security group...",
        },
        ("support.ticket-escalated", "v1"): {
            "ticketId": TICKET,
            "fromTier": 2,
            "toTier": 3,
            "reason": "Hypervisor fault suspected",
        },
        ("support.ticket-resolved", "v1"): {
            "ticketId": TICKET,
            "customerId": CUSTOMER,
            "resolutionCode": "fixed",
            "summary": "Security group rule restored",
        },
        ("support.ticket-reopened", "v1"): {
            "ticketId": TICKET,
            "customerId": CUSTOMER,
            "reason": "Happened again after reboot",
        },
        ("support.ticket-closed", "v1"): {"ticketId": TICKET, "closedBy": "customer", "satisfactionScore": 5},
    }
)


def example_data(event_type: str, version: str) -> dict[str, Any]:
    """A fresh copy of the example payload of (type, version); KeyError if there is none."""
    import copy

    return copy.deepcopy(EXAMPLES[(event_type, version)])


def example_event(event_type: str, version: str | None = None) -> Any:
    """A complete example `Envelope` of (type, version) with fixed ids and time (tests, docs, CLI)."""
    from schemas._internal.jsonschema import example_envelope
    from schemas.definitions import catalog

    entry = catalog.require(event_type)
    return example_envelope(entry, version or entry.latest_version)
