"""Records the notifications of a verified event, delivers each, then reports it as
`notification.sent` or, when its channel refused it, `notification.failed`.

The rows are the outbox: unique per (event, channel), so a redelivered event writes nothing new.
`notification.sent` goes out for the rows this delivery created (ids derived from event + channel),
so a consumer group reading old history re-sends nothing; the price is that a crash between the
insert and the publish loses that one report (the message itself is stored). Events that name no
customer (e.g. provisioning ones) go to the customer an earlier message of the same flow went to —
looked up in Notification's own table.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

import schemas
from messaging.consumer import HandlerContext
from services.common.emitter import Emitter
from services.notification.delivery import SimulatedMailRelay
from services.notification.rendering import render
from services.notification.tables import notifications

__all__ = ["ONCE_PER_FLOW", "NotificationHandler", "recipient_uuid"]

_NS = uuid.UUID("0e7b5c3a-9f41-4d2a-8c6e-1a2b3c4d5e6f")
# The saga re-sends `order.cancelled` when deprovisioning is slow to confirm; one notice is enough.
ONCE_PER_FLOW = frozenset({"order.cancelled"})


def recipient_uuid(recipient: str) -> uuid.UUID:
    """Recipients are customer UUIDs; a service actor name maps to a stable UUID instead."""
    try:
        return uuid.UUID(recipient)
    except ValueError:
        return uuid.uuid5(_NS, recipient)


class NotificationHandler:
    def __init__(
        self, engine: Engine, emitter: Emitter | None = None, relay: SimulatedMailRelay | None = None
    ) -> None:
        self.engine = engine
        self.emit = emitter
        self.relay = relay or SimulatedMailRelay(engine)

    def _known_recipient(self, correlation_id: uuid.UUID) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(notifications.c.recipient)
                .where(notifications.c.correlation_id == correlation_id)
                .order_by(notifications.c.id)
                .limit(1)
            ).scalar()

    def _already_told(self, envelope: schemas.Envelope) -> bool:
        """A customer hears of some things once per flow, however often the saga re-asks."""
        if envelope.event_type not in ONCE_PER_FLOW:
            return False
        with self.engine.connect() as conn:
            earlier = conn.execute(
                select(notifications.c.id)
                .where(
                    notifications.c.correlation_id == envelope.correlation_id,
                    notifications.c.event_type == envelope.event_type,
                    notifications.c.event_id != envelope.event_id,
                )
                .limit(1)
            ).first()
        return earlier is not None

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        if self._already_told(envelope):
            return
        messages = render(envelope, self._known_recipient(envelope.correlation_id))
        rows = [
            {
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "event_version": envelope.version,
                "tenant_id": envelope.tenant_id,
                "correlation_id": envelope.correlation_id,
                "recipient": message.recipient,
                "channel": message.channel,
                "subject": message.subject,
                "body": message.body,
                "trace_id": context.trace_id,
                "source_topic": context.topic,
                "source_partition": context.partition,
                "source_offset": context.offset,
            }
            for message in messages
        ]
        statement = (
            insert(notifications)
            .values(rows)
            .on_conflict_do_nothing(constraint="notifications_event_channel_key")
            .returning(notifications.c.channel)
        )
        with self.engine.begin() as conn:
            new_channels = set(conn.execute(statement).scalars())
        if self.emit is None:
            return
        for message in (m for m in messages if m.channel in new_channels):
            outcome = self.relay.deliver(message)
            report = {
                "notificationId": uuid.uuid5(_NS, f"{envelope.event_id}/{message.channel}"),
                "recipientId": recipient_uuid(message.recipient),
                "channel": message.channel,
                "template": message.template,
                "triggerEventId": envelope.event_id,
                "triggerEventType": envelope.event_type,
            }
            if outcome.delivered:
                self.emit.derive(
                    envelope, "notification.sent", report, key=f"{envelope.event_id}/{message.channel}/sent"
                )
            else:
                report |= {"errorCode": outcome.error_code, "reason": outcome.reason, "attempts": 1}
                self.emit.derive(
                    envelope,
                    "notification.failed",
                    report,
                    key=f"{envelope.event_id}/{message.channel}/failed",
                )
