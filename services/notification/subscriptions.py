"""What Notification consumes: every customer-facing event of the catalog (consumer group
`notification`). Its messages, their reports (queued in Notification's outbox, published by the
relay beside the consumer) and the record's idempotency key commit in one transaction."""

from __future__ import annotations

import schemas
from schemas import Service
from services.common.subscriptions import Subscriptions
from services.notification.handler import NotificationHandler
from services.notification.tables import metadata, outbox

__all__ = ["SUBSCRIPTIONS"]

_CUSTOMER_FACING = schemas.catalog.subscriptions(Service.NOTIFICATION)

SUBSCRIPTIONS = Subscriptions(
    service=Service.NOTIFICATION,
    group_id="notification",
    schema=metadata,
    handlers=NotificationHandler,
    routes={entry.event_type: NotificationHandler.__call__ for entry in _CUSTOMER_FACING},
    outbox=outbox,
    transactional=True,
)
