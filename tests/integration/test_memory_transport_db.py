"""The in-memory transport driving a real handler whose decisions live in PostgreSQL: Notification on
the test stack's database, with no Kafka, its idempotency keys in the real store.

The transport's consumer is the Kafka consumer's reading and dispatch, so Notification runs as it
does in production — transactional, `context.db` the transaction that also holds its key — and its
reports go to an outbox table of this test's own (relayed by no one).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, MetaData, Table, func, select, text

from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging.errors import ErrorClass
from messaging.idempotency import IdempotencyStore, idempotency_key
from messaging.outbox import outbox_table
from messaging.tables import idempotency_keys
from messaging.testing import Finish, InMemoryTransport
from services.common.outbox_emitter import OutboxEmitter
from services.notification.handler import NotificationHandler
from services.notification.subscriptions import SUBSCRIPTIONS as NOTIFICATION
from services.notification.tables import notifications
from tests.support.messaging_support import event

pytestmark = pytest.mark.stack


@pytest.fixture
def database(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, Table]]:
    """The test stack's database, Notification's schema in it, and an outbox table of this test's own."""
    engine = engine_for(settings.dsn)
    ensure_schema(engine, NOTIFICATION.schema)
    table = outbox_table(MetaData(schema=f"notification_outbox_{unique}"))
    ensure_schema(engine, table.metadata)
    yield engine, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{table.schema}" CASCADE'))


def _count(engine: Engine, table: Table, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_notification_on_the_memory_transport_writes_once_and_refuses_another_tenants_flow(
    database: tuple[Engine, Table], unique: str
) -> None:
    engine, outbox = database
    transport = InMemoryTransport()
    emitter = OutboxEmitter("notification", outbox, transport.keyring, env=transport.env, track=False)
    handler = NotificationHandler(engine, emitter)
    group = f"notification-{unique}"
    store = IdempotencyStore(engine)
    consumer = transport.subscribe(NOTIFICATION.bind(handler), group=group, idempotency=store)
    flow = uuid.uuid4()
    created = event("order.created", tenant_id=f"acme-{unique}", correlation_id=flow)

    transport.publish(created)
    transport.publish(created)  # redelivered: its key in PostgreSQL makes it a duplicate
    assert [o.finish for o in consumer.outcomes] == [Finish.HANDLED, Finish.HANDLED]
    assert _count(engine, notifications, notifications.c.event_id == created.event_id) == 2  # email + in-app
    assert _count(engine, outbox) == 2  # one report per message, queued in the handler's transaction
    key = idempotency_key(created.event_id, flow, group)
    assert _count(engine, idempotency_keys, idempotency_keys.c.key == key,
                  idempotency_keys.c.status == "succeeded") == 1  # stored in the handler's transaction

    intruder = event("order.created", tenant_id=f"globex-{unique}", correlation_id=flow)
    transport.publish(intruder)
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.PERMISSION and "belongs to tenant" in letter.reason
    assert _count(engine, notifications, notifications.c.correlation_id == flow) == 2
    assert _count(engine, outbox) == 2
