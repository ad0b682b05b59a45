"""Billing's handlers: capture on payment confirmation, invoice on fulfilment, refund on request.

Every write is keyed so redelivery cannot repeat it: one payment per order, one invoice per order,
one refund per idempotency key, one ledger entry per (kind, reference) and one gateway operation per
id. A refund requested before its payment was captured (the two travel on different topics) raises,
so the consumer retries it after the capture.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert

import schemas
from messaging.consumer import HandlerContext
from services.billing.gateway import GatewayDeclined, SimulatedGateway
from services.billing.tables import invoices, ledger, payments, refunds
from services.common.emitter import Emitter

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
        amount = data.amount
        account = billing_account_id(envelope.tenant_id)
        try:
            psp = self.gateway.execute(data.payment_id, data.order_id, "capture", amount.amount_minor)
            status = "captured"
        except GatewayDeclined as exc:
            psp, status = None, "failed"
            log.warning("capture of %s declined: %s", data.payment_id, exc)
        with self.engine.begin() as conn:
            conn.execute(
                insert(payments)
                .values(
                    payment_id=data.payment_id,
                    order_id=data.order_id,
                    tenant_id=envelope.tenant_id,
                    correlation_id=envelope.correlation_id,
                    amount_minor=amount.amount_minor,
                    currency=amount.currency,
                    method=data.method.value,
                    status=status,
                    psp_reference=psp,
                )
                .on_conflict_do_nothing(index_elements=["payment_id"])
            )
            if status == "captured":
                conn.execute(
                    insert(ledger)
                    .values(
                        order_id=data.order_id,
                        tenant_id=envelope.tenant_id,
                        kind="capture",
                        ref_id=data.payment_id,
                        amount_minor=amount.amount_minor,
                        currency=amount.currency,
                    )
                    .on_conflict_do_nothing(constraint="ledger_kind_ref_key")
                )
        money = _money(amount.amount_minor, amount.currency)
        if status == "captured":
            self.emit.derive(
                envelope,
                "billing.payment-captured",
                {
                    "paymentId": data.payment_id,
                    "orderId": data.order_id,
                    "customerId": account,
                    "amount": money,
                    "method": data.method.value,
                    "pspReference": psp,
                },
                key=f"{data.order_id}/captured",
            )
        else:
            self.emit.derive(
                envelope,
                "billing.payment-failed",
                {
                    "paymentId": data.payment_id,
                    "orderId": data.order_id,
                    "customerId": account,
                    "amount": money,
                    "failureCode": "card_declined",
                    "retryable": False,
                },
                key=f"{data.order_id}/capture-failed",
            )

    def on_order_fulfilled(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = envelope.data
        total = data.total
        today = envelope.occurred_at.date()
        with self.engine.begin() as conn:
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
        if payment is None:
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
                    payment_id=data.payment_id,
                    amount_minor=amount.amount_minor,
                    currency=amount.currency,
                    status="requested",
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            refund = (
                conn.execute(select(refunds).where(refunds.c.idempotency_key == data.idempotency_key))
                .mappings()
                .one()
            )
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
