"""Turns a customer-facing event into the messages a customer receives (email + in-app)."""

from __future__ import annotations

from dataclasses import dataclass

import schemas

__all__ = ["Message", "render"]

CHANNELS = ("email", "in_app")


@dataclass(frozen=True)
class Message:
    channel: str
    recipient: str
    subject: str
    body: str


def _money(value: object) -> str:
    amount = getattr(value, "amount_minor", None)
    currency = getattr(value, "currency", "")
    return f"{amount / 100:.2f} {currency}" if isinstance(amount, int) else "-"


def _subject(envelope: schemas.Envelope) -> str:
    data = envelope.data
    if envelope.event_type == "order.created":
        return f"Order {data.order_id} received — total {_money(data.total)}"
    words = envelope.event_type.split(".", 1)[1].replace("-", " ")
    return f"{envelope.event_type.split('.')[0].capitalize()} {words}"


def render(envelope: schemas.Envelope) -> list[Message]:
    """One message per channel; the recipient is the customer the payload names, else the actor."""
    data = envelope.data
    recipient = str(getattr(data, "customer_id", None) or envelope.actor.id)
    subject = _subject(envelope)
    details = data.model_dump(mode="json", by_alias=True)
    body = f"{subject}\n\n" + "\n".join(f"{key}: {value}" for key, value in sorted(details.items()))
    return [Message(channel, recipient, subject, body) for channel in CHANNELS]
