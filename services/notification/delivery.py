"""Hands each rendered message to its channel and says whether it got through.

In-app messages are delivered by being stored (the customer's inbox is Notification's table).
Email goes through a mail relay; locally that is a simulator which refuses the recipients listed in
Notification's own `bounces` table, so a failed delivery — and its `notification.failed` — can be
produced on demand, as a real relay's bounce would.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

from cloud_factory.db import ensure_schema
from services.notification.rendering import Message
from services.notification.tables import bounces, metadata

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
        if message.channel != "email":
            return DELIVERED
        with self.engine.connect() as conn:
            bounce = conn.execute(
                select(bounces.c.error_code, bounces.c.reason).where(bounces.c.recipient == message.recipient)
            ).first()
        if bounce is None:
            return DELIVERED
        return DeliveryOutcome(False, bounce.error_code, bounce.reason)


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
