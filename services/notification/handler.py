"""Records the notifications of a verified event, delivers each, then reports it as
`notification.sent` or, when its channel refused it, `notification.failed`.

Everything one event causes commits in one transaction — the message rows, the reports (queued in
Notification's outbox, relayed to Kafka by the worker's outbox relay) and, when the consumer runs
the handler as transactional, its idempotency key — so a crash anywhere either leaves nothing (the
redelivered event is handled afresh) or leaves everything, reports included. Message rows are
unique per (event, channel): a redelivered event writes nothing new, and reports go out only for
the rows this delivery created (ids derived from event + channel), so a consumer group reading old
history re-sends nothing. A crash after the mail relay accepted a message but before the commit
sends that mail again on redelivery (at least once, never lost). Events that name no customer
(e.g. provisioning ones) go to the customer an earlier message of the same flow went to — looked up
in Notification's own table by tenant and flow.

A flow belongs to the tenant of its first message: an event of another tenant naming the flow (its
correlationId) is refused (`PermissionDeniedError` → DLQ) before anything is written or sent, so a
signed event of tenant B can never reach tenant A's customer. Handlers of one flow are serialised
(a transaction-scoped advisory lock), so two tenants' first events cannot both claim a flow.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.dialects.postgresql import insert

import schemas
from messaging import HandlerContext
from services.common.outbox_emitter import OutboxEmitter
from services.common.tenancy import require_tenant
from services.notification.delivery import SimulatedMailRelay
from services.notification.rendering import Message, render
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
    """Run it as a transactional handler (`HandlerSpec(..., transactional=True)`): it then writes in
    `context.db`, the transaction holding the idempotency key; otherwise it opens its own."""

    def __init__(
        self, engine: Engine, emitter: OutboxEmitter, relay: SimulatedMailRelay | None = None
    ) -> None:
        self.engine = engine
        self.emit = emitter
        self.relay = relay or SimulatedMailRelay(engine)

    @staticmethod
    def _check_tenant(conn: Connection, envelope: schemas.Envelope) -> None:
        """Lock the flow for this transaction and refuse the event if another tenant owns it."""
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"notification/{envelope.correlation_id}"},
        )
        owner = conn.execute(
            select(notifications.c.tenant_id)
            .where(
                notifications.c.correlation_id == envelope.correlation_id,
                notifications.c.tenant_id != envelope.tenant_id,
            )
            .limit(1)
        ).scalar()
        require_tenant(envelope.tenant_id, owner, f"flow {envelope.correlation_id}")

    @staticmethod
    def _known_recipient(conn: Connection, envelope: schemas.Envelope) -> str | None:
        return conn.execute(
            select(notifications.c.recipient)
            .where(
                notifications.c.tenant_id == envelope.tenant_id,
                notifications.c.correlation_id == envelope.correlation_id,
            )
            .order_by(notifications.c.id)
            .limit(1)
        ).scalar()

    @staticmethod
    def _already_told(conn: Connection, envelope: schemas.Envelope) -> bool:
        """A customer hears of some things once per flow, however often the saga re-asks."""
        if envelope.event_type not in ONCE_PER_FLOW:
            return False
        earlier = conn.execute(
            select(notifications.c.id)
            .where(
                notifications.c.tenant_id == envelope.tenant_id,
                notifications.c.correlation_id == envelope.correlation_id,
                notifications.c.event_type == envelope.event_type,
                notifications.c.event_id != envelope.event_id,
            )
            .limit(1)
        ).first()
        return earlier is not None

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        if context.db is not None:
            self._handle(context.db, envelope, context)
            return
        with self.engine.begin() as conn:
            self._handle(conn, envelope, context)

    def _handle(self, conn: Connection, envelope: schemas.Envelope, context: HandlerContext) -> None:
        self._check_tenant(conn, envelope)
        if self._already_told(conn, envelope):
            return
        messages = render(envelope, self._known_recipient(conn, envelope))
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
        new_channels = set(conn.execute(statement).scalars())
        for message in (m for m in messages if m.channel in new_channels):
            self._report(conn, envelope, message)

    def _report(self, conn: Connection, envelope: schemas.Envelope, message: Message) -> None:
        """Deliver `message` and queue `notification.sent` or `notification.failed` in the outbox."""
        outcome = self.relay.deliver(message)
        report: dict[str, object] = {
            "notificationId": uuid.uuid5(_NS, f"{envelope.event_id}/{message.channel}"),
            "recipientId": recipient_uuid(message.recipient),
            "channel": message.channel,
            "template": message.template,
            "triggerEventId": envelope.event_id,
            "triggerEventType": envelope.event_type,
        }
        if outcome.delivered:
            event_type, outcome_key = "notification.sent", "sent"
        else:
            event_type, outcome_key = "notification.failed", "failed"
            report |= {"errorCode": outcome.error_code, "reason": outcome.reason, "attempts": 1}
        self.emit.derive(
            conn, envelope, event_type, report, key=f"{envelope.event_id}/{message.channel}/{outcome_key}"
        )
