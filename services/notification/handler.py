"""Records the notifications of a verified event; the consumer commits its offset afterwards."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert

import schemas
from messaging.consumer import HandlerContext
from services.notification.rendering import render
from services.notification.tables import notifications

__all__ = ["NotificationHandler"]


class NotificationHandler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
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
            for message in render(envelope)
        ]
        statement = insert(notifications).values(rows).on_conflict_do_nothing(
            constraint="notifications_event_channel_key"
        )
        with self.engine.begin() as conn:
            conn.execute(statement)
