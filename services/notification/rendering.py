"""Turns a customer-facing event into the messages a customer receives (email + in-app).

Each of the 24 customer-facing event types has its own subject line (`SUBJECTS`); the body lists
the payload's fields. A test checks that every type Notification subscribes to has a template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import schemas

__all__ = ["CHANNELS", "Message", "SUBJECTS", "render"]

CHANNELS = ("email", "in_app")


@dataclass(frozen=True)
class Message:
    channel: str
    recipient: str
    subject: str
    body: str
    template: str
    reference: str  # the notification's identity: event id / channel (one message per event and channel)


def _money(value: object) -> str:
    amount = getattr(value, "amount_minor", None)
    currency = getattr(value, "currency", "")
    return f"{amount / 100:.2f} {currency}" if isinstance(amount, int) else "-"


def _names(resources: Any) -> str:
    return ", ".join(getattr(r, "name", "?") for r in resources or []) or "no resources"


SUBJECTS: dict[str, Callable[[Any], str]] = {
    "order.created": lambda d: f"Order {d.order_id} received — total {_money(d.total)}",
    "order.fulfilled": lambda d: f"Order {d.order_id} is fulfilled: {_names(d.resources)}",
    "order.failed": lambda d: (
        f"Order {d.order_id} could not be completed ({d.error_code})"
        + (" — you have been refunded" if d.compensated else "")
    ),
    "order.cancelled": lambda d: f"Order {d.order_id} was cancelled ({d.reason.value.replace('_', ' ')})",
    "order.service-delivered": lambda d: f"Your service is ready — sign in at {d.console_url}",
    "provisioning.started": lambda d: f"We are creating {_names(d.resources)} in {d.region}",
    "provisioning.completed": lambda d: f"Your resources are up: {_names(d.resources)}",
    "provisioning.failed": lambda d: f"Creating your resources failed in {d.region}: {d.reason}",
    "provisioning.deprovisioned": lambda d: (
        f"Released {_names(d.resources)}"
        if d.resources
        else f"Nothing was created for order {d.order_id}, so nothing had to be released"
    ),
    "billing.payment-failed": lambda d: f"Your payment of {_money(d.amount)} failed ({d.failure_code.value})",
    "billing.invoice-created": lambda d: f"Invoice {d.invoice_number}: {_money(d.total)} due {d.due_date}",
    "billing.invoice-overdue": lambda d: (
        f"Invoice overdue by {d.days_overdue} day(s): {_money(d.amount_due)}"
    ),
    "billing.refund-completed": lambda d: f"We refunded {_money(d.amount)} for order {d.order_id}",
    "billing.refund-failed": lambda d: (
        f"Your refund of {_money(d.amount)} is delayed; support will contact you"
    ),
    "billing.subscription-renewed": lambda d: f"Subscription {d.plan_id} renewed until {d.period_end}",
    "billing.subscription-cancelled": lambda d: f"Subscription {d.plan_id} ends on {d.effective_on}",
    "identity.user-registered": lambda d: f"Welcome to Cloud Factory, {d.display_name}",
    "identity.password-reset-requested": lambda d: (
        f"Reset your password (link valid until {d.expires_at:%Y-%m-%d %H:%M} UTC)"
    ),
    "identity.api-key-created": lambda d: f"API key '{d.name}' ({d.prefix}…) was created",
    "identity.api-key-revoked": lambda d: f"An API key was revoked: {d.reason}",
    "support.ticket-created": lambda d: f"Ticket opened: {getattr(d, 'subject', d.ticket_id)}",
    "support.ticket-replied": lambda d: f"New reply on ticket {d.ticket_id}",
    "support.ticket-resolved": lambda d: f"Ticket {d.ticket_id} resolved",
    "support.ticket-reopened": lambda d: f"Ticket {d.ticket_id} reopened",
}


def _recipient(envelope: schemas.Envelope) -> str | None:
    data = envelope.data
    for name in ("customer_id", "user_id"):
        value = getattr(data, name, None)
        if value is not None:
            return str(value)
    return None


def render(envelope: schemas.Envelope, recipient: str | None = None) -> list[Message]:
    """One message per channel, to the customer the payload names, else `recipient`, else the actor."""
    data = envelope.data
    to = _recipient(envelope) or recipient or envelope.actor.id
    template = SUBJECTS.get(envelope.event_type)
    if template is None:
        raise LookupError(f"no notification template for {envelope.event_type}")
    subject = template(data)[:200]
    details = data.model_dump(mode="json", by_alias=True)
    body = f"{subject}\n\n" + "\n".join(f"{key}: {value}" for key, value in sorted(details.items()))
    return [
        Message(
            channel,
            to,
            subject,
            body,
            f"{envelope.event_type}.{channel}".replace("_", "-"),
            f"{envelope.event_id}/{channel}",
        )
        for channel in CHANNELS
    ]
