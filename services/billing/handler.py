"""Billing's handlers: capture on payment confirmation, invoice on fulfilment, refund on request.

Every effect is keyed by its business identity, so neither a redelivery nor a record replayed after
its idempotency key expired can repeat it: one payment per order, claimed (`capturing`) before the
gateway is asked, so the order's capture is attempted once — a replayed confirmation re-sends the
recorded outcome (same event id) without asking the gateway again, even when the card would work
now; one invoice per order; one refund per idempotency key, claimed before it is paid out; one
ledger entry per (kind, reference) and one gateway operation per id. A refund requested before its
payment was captured (the two travel on different topics) raises, so the consumer retries it after
the capture.

Payments, invoices and refunds belong to the tenant of the event that created them: an event of
another tenant naming them (by order, payment or refund key) is refused (`PermissionDeniedError` →
DLQ) before anything is written, paid or emitted.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.dialects.postgresql import insert

import schemas
from messaging import HandlerContext
from messaging.errors import InconsistencyError
from services.billing.gateway import GatewayDeclined, SimulatedGateway
from services.billing.tables import invoices, ledger, payments, refunds
from services.common.emitter import Emitter
from services.common.tenancy import require_tenant

__all__ = ["BillingHandlers", "PaymentNotCaptured", "billing_account_id"]

log = logging.getLogger(__name__)
_NS = uuid.UUID("5d1f7f2e-2b8a-4c1e-9b0e-7a6c5e4d3b21")


class PaymentNotCaptured(RuntimeError):
    """A refund arrived before its payment's capture; retried until the capture is recorded."""


def billing_account_id(tenant_id: str) -> uuid.UUID:
    """Billing bills the tenant's account: `customerId` in Billing's own events is that account's id."""
    return uuid.uuid5(_NS, f"account/{tenant_id}")


def _money(amount_minor: int, currency: str) -> dict:
    return {"amountMinor": amount_minor, "currency": currency}


class BillingHandlers:
    def __init__(self, engine: Engine, emitter: Emitter, gateway: SimulatedGateway) -> None:
        self.engine = engine
        self.emit = emitter
        self.gateway = gateway

    def on_payment_confirmed(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = envelope.data
        payment = self._claim_capture(envelope)
        if payment["status"] == "capturing":
            payment = self._capture(payment)
        account = billing_account_id(envelope.tenant_id)
        money = _money(payment["amount_minor"], payment["currency"])
        if payment["status"] == "captured":
            self.emit.derive(
                envelope,
                "billing.payment-captured",
                {
                    "paymentId": payment["payment_id"],
                    "orderId": data.order_id,
                    "customerId": account,
                    "amount": money,
                    "method": payment["method"],
                    "pspReference": payment["psp_reference"],
                },
                key=f"{data.order_id}/captured",
            )
        else:
            self.emit.derive(
                envelope,
                "billing.payment-failed",
                {
                    "paymentId": payment["payment_id"],
                    "orderId": data.order_id,
                    "customerId": account,
                    "amount": money,
                    "failureCode": "card_declined",
                    "retryable": False,
                },
                key=f"{data.order_id}/capture-failed",
            )

    def _claim_capture(self, envelope: schemas.Envelope) -> dict:
        """The order's one payment row, claimed (`capturing`) by the first confirmation that names
        it; refuses another tenant's event and a second payment for the same order."""
        data = envelope.data
        with self.engine.begin() as conn:
            conn.execute(
                insert(payments)
                .values(
                    payment_id=data.payment_id,
                    order_id=data.order_id,
                    tenant_id=envelope.tenant_id,
                    correlation_id=envelope.correlation_id,
                    amount_minor=data.amount.amount_minor,
                    currency=data.amount.currency,
                    method=data.method.value,
                    status="capturing",
                )
                .on_conflict_do_nothing()
            )
            known = (
                conn.execute(
                    select(payments).where(
                        or_(payments.c.order_id == data.order_id, payments.c.payment_id == data.payment_id)
                    )
                )
                .mappings()
                .all()
            )
        for row in known:
            require_tenant(
                envelope.tenant_id,
                row["tenant_id"],
                f"payment {row['payment_id']} of order {row['order_id']}",
            )
        if [(row["order_id"], row["payment_id"]) for row in known] != [(data.order_id, data.payment_id)]:
            raise InconsistencyError(
                f"payment {data.payment_id} of order {data.order_id} contradicts the payments recorded: "
                + ", ".join(f"{row['payment_id']} of order {row['order_id']}" for row in known)
                + " (one capture per order)"
            )
        return dict(known[0])

    def _capture(self, payment: dict) -> dict:
        """Capture through the gateway once (GatewayUnavailable propagates: the consumer retries, the
        row stays `capturing` and the gateway's operation id keeps the retry from capturing twice)."""
        try:
            psp = self.gateway.execute(
                payment["payment_id"], payment["order_id"], "capture", payment["amount_minor"]
            )
            values: dict[str, object] = {"status": "captured", "psp_reference": psp}
        except GatewayDeclined as exc:
            log.warning("capture of %s declined: %s", payment["payment_id"], exc)
            values = {"status": "failed"}
        with self.engine.begin() as conn:
            conn.execute(
                update(payments)
                .where(payments.c.payment_id == payment["payment_id"], payments.c.status == "capturing")
                .values(**values)
            )
            if values["status"] == "captured":
                conn.execute(
                    insert(ledger)
                    .values(
                        order_id=payment["order_id"],
                        tenant_id=payment["tenant_id"],
                        kind="capture",
                        ref_id=payment["payment_id"],
                        amount_minor=payment["amount_minor"],
                        currency=payment["currency"],
                    )
                    .on_conflict_do_nothing(constraint="ledger_kind_ref_key")
                )
            return dict(
                conn.execute(select(payments).where(payments.c.payment_id == payment["payment_id"]))
                .mappings()
                .one()
            )

    def on_order_fulfilled(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = envelope.data
        total = data.total
        today = envelope.occurred_at.date()
        with self.engine.begin() as conn:
            for table in (payments, invoices):
                owner = conn.execute(
                    select(table.c.tenant_id).where(table.c.order_id == data.order_id)
                ).scalar()
                require_tenant(envelope.tenant_id, owner, f"order {data.order_id}")
            conn.execute(
                insert(invoices)
                .values(
                    invoice_id=uuid.uuid5(_NS, f"invoice/{data.order_id}"),
                    order_id=data.order_id,
                    tenant_id=envelope.tenant_id,
                    total_minor=total.amount_minor,
                    currency=total.currency,
                    due_date=today + dt.timedelta(days=14),
                )
                .on_conflict_do_nothing(index_elements=["order_id"])
            )
            invoice = (
                conn.execute(select(invoices).where(invoices.c.order_id == data.order_id)).mappings().one()
            )
            conn.execute(
                insert(ledger)
                .values(
                    order_id=data.order_id,
                    tenant_id=envelope.tenant_id,
                    kind="invoice",
                    ref_id=invoice["invoice_id"],
                    amount_minor=total.amount_minor,
                    currency=total.currency,
                )
                .on_conflict_do_nothing(constraint="ledger_kind_ref_key")
            )
        money = _money(total.amount_minor, total.currency)
        zero = _money(0, total.currency)
        self.emit.derive(
            envelope,
            "billing.invoice-created",
            {
                "invoiceId": invoice["invoice_id"],
                "invoiceNumber": f"INV-{invoice['created_at'].year:04d}-{invoice['seq']:06d}",
                "customerId": data.customer_id,
                "orderId": data.order_id,
                "subscriptionId": None,
                "lines": [
                    {
                        "description": f"{data.subscription_plan_id} ({data.billing_cycle.value})",
                        "quantity": 1,
                        "unitPrice": money,
                        "amount": money,
                    }
                ],
                "subtotal": money,
                "tax": zero,
                "total": money,
                "dueDate": invoice["due_date"].isoformat(),
            },
            key=f"{data.order_id}/invoice",
        )
        period_end = today + (
            dt.timedelta(days=30) if data.billing_cycle.value == "monthly" else dt.timedelta(days=365)
        )
        self.emit.derive(
            envelope,
            "billing.subscription-started",
            {
                "subscriptionId": uuid.uuid5(_NS, f"subscription/{data.order_id}"),
                "customerId": data.customer_id,
                "orderId": data.order_id,
                "planId": data.subscription_plan_id,
                "billingCycle": data.billing_cycle.value,
                "price": money,
                "periodStart": today.isoformat(),
                "periodEnd": period_end.isoformat(),
            },
            key=f"{data.order_id}/subscription",
        )

    def on_refund_requested(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = envelope.data
        with self.engine.connect() as conn:
            payment = (
                conn.execute(select(payments).where(payments.c.payment_id == data.payment_id))
                .mappings()
                .first()
            )
        if payment is not None:
            require_tenant(envelope.tenant_id, payment["tenant_id"], f"payment {data.payment_id}")
        if payment is None or payment["status"] == "capturing":
            raise PaymentNotCaptured(f"refund for payment {data.payment_id} before its capture; retrying")
        refund_id = uuid.uuid5(_NS, f"refund/{data.idempotency_key}")
        amount = data.amount
        with self.engine.begin() as conn:
            conn.execute(
                insert(refunds)
                .values(
                    refund_id=refund_id,
                    idempotency_key=data.idempotency_key,
                    order_id=data.order_id,
                    tenant_id=envelope.tenant_id,
                    payment_id=data.payment_id,
                    amount_minor=amount.amount_minor,
                    currency=amount.currency,
                    status="requested",
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            refund = (
                conn.execute(
                    select(refunds, payments.c.tenant_id.label("payment_tenant"))
                    .select_from(refunds.outerjoin(payments, payments.c.payment_id == refunds.c.payment_id))
                    .where(refunds.c.idempotency_key == data.idempotency_key)
                )
                .mappings()
                .one()
            )
            owner = refund["tenant_id"] or refund["payment_tenant"]
            require_tenant(envelope.tenant_id, owner, f"refund {data.idempotency_key!r}")
        if refund["status"] == "requested":
            refund = self._pay_out(envelope, refund)
        base = {
            "refundId": refund["refund_id"],
            "orderId": data.order_id,
            "paymentId": data.payment_id,
            "amount": _money(refund["amount_minor"], refund["currency"]),
        }
        if refund["status"] == "completed":
            self.emit.derive(
                envelope, "billing.refund-completed", base, key=f"{refund['refund_id']}/completed"
            )
        else:
            self.emit.derive(
                envelope,
                "billing.refund-failed",
                {
                    **base,
                    "errorCode": refund["error_code"],
                    "reason": refund["reason"],
                    "retryable": False,
                },
                key=f"{refund['refund_id']}/failed",
            )

    def _pay_out(self, envelope: schemas.Envelope, refund: dict) -> dict:
        """Refund through the gateway (GatewayUnavailable propagates: the consumer retries)."""
        try:
            self.gateway.execute(refund["refund_id"], refund["order_id"], "refund", refund["amount_minor"])
            values = {"status": "completed"}
        except GatewayDeclined as exc:
            values = {"status": "failed", "error_code": exc.code, "reason": str(exc)[:200]}
        with self.engine.begin() as conn:
            conn.execute(
                update(refunds)
                .where(refunds.c.refund_id == refund["refund_id"], refunds.c.status == "requested")
                .values(**values)
            )
            if values["status"] == "completed":
                conn.execute(
                    insert(ledger)
                    .values(
                        order_id=refund["order_id"],
                        tenant_id=envelope.tenant_id,
                        kind="refund",
                        ref_id=refund["refund_id"],
                        amount_minor=-refund["amount_minor"],
                        currency=refund["currency"],
                    )
                    .on_conflict_do_nothing(constraint="ledger_kind_ref_key")
                )
            return dict(
                conn.execute(select(refunds).where(refunds.c.refund_id == refund["refund_id"]))
                .mappings()
                .one()
            )
