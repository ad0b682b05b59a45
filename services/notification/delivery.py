"""Hands each rendered message to its channel and says whether it got through.

In-app messages are delivered by being stored (the customer's inbox is Notification's table).
Email goes through a mail relay; locally that is a simulator which refuses the recipients listed in
Notification's own `bounces` table, so a failed delivery — and its `notification.failed` — can be
produced on demand, as a real relay's bounce would. Every email it accepts is written to its
`mail_log` in its own transaction, as a provider's sending log would be: what went out stays there
even when Notification's transaction later rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

from core.db import ensure_schema
from services.notification.rendering import Message
from services.notification.tables import bounces, mail_log, metadata

__all__ = ["DeliveryOutcome", "SimulatedMailRelay", "refuse_mail_to"]


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: bool
    error_code: str | None = None
    reason: str | None = None


DELIVERED = DeliveryOutcome(True)


class SimulatedMailRelay:
    """The local stand-in for an email provider; in-app messages always get through."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def deliver(self, message: Message) -> DeliveryOutcome:
        """Hand `message` over; an accepted email is logged with its reference (event id / channel)."""
        if message.channel != "email":
            return DELIVERED
        with self.engine.begin() as conn:
            bounce = conn.execute(
                select(bounces.c.error_code, bounces.c.reason).where(bounces.c.recipient == message.recipient)
            ).first()
            if bounce is not None:
                return DeliveryOutcome(False, bounce.error_code, bounce.reason)
            conn.execute(
                mail_log.insert().values(
                    reference=message.reference, recipient=message.recipient, subject=message.subject
                )
            )
        return DELIVERED


def refuse_mail_to(
    engine: Engine,
    recipient: str,
    *,
    error_code: str = "MAILBOX_UNAVAILABLE",
    reason: str = "recipient mailbox does not accept mail",
) -> None:
    """Make the simulated relay bounce every email to `recipient` (failure injection).

    Works before any Notification worker ran: the service's schema is created if missing."""
    ensure_schema(engine, metadata)
    with engine.begin() as conn:
        conn.execute(
            insert(bounces)
            .values(recipient=recipient, error_code=error_code, reason=reason)
            .on_conflict_do_update(
                index_elements=[bounces.c.recipient], set_={"error_code": error_code, "reason": reason}
            )
        )
