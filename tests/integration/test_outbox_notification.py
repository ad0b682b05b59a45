"""Notification's reports go through its outbox, on the real stack: a consumer process (serving
every tenant, as in production) that dies right after its handler's transaction committed (before
the offset commit, with no relay running) loses no `notification.sent` — the redelivered event is a
duplicate, writes nothing new, and a relay started later publishes each report exactly once with its
derived eventId. A handler that fails half-way leaves neither messages nor reports.

Each test has its own topics (environment segment `t<unique>`) and its own outbox table (schema
`notification_outbox_<unique>`), so no other test's consumers or relays touch its records.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, MetaData, Table, func, select, text

import schemas
from core.db import engine_for, ensure_schema
from core.settings import Settings, get_settings
from messaging import HandlerContext
from messaging.idempotency import idempotency_key
from messaging.outbox import OutboxRelay, outbox_table
from messaging.tables import idempotency_keys
from messaging.wiring import ensure_catalog_topics, keyring_from, producer_from
from services.common.emitter import service_event_id
from services.common.outbox_emitter import OutboxEmitter
from services.notification.delivery import DeliveryOutcome
from services.notification.handler import NotificationHandler
from services.notification.rendering import CHANNELS, Message
from services.notification.subscriptions import SUBSCRIPTIONS as NOTIFICATION
from services.notification.tables import notifications
from tests.support.messaging_support import caught_up, event, isolated, read_topic
from workers.consumers import build_consumer

pytestmark = pytest.mark.stack

DIED = 17  # the child's exit code when it died where the test wanted it to
# The dead child keeps its partitions until its session times out; keep that short.
SHORT_SESSION = {"extra_config": {"session.timeout.ms": 6000}}


def _outbox_in(schema: str) -> Table:
    return outbox_table(MetaData(schema=schema))


@pytest.fixture
def private_outbox(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, Table]]:
    engine = engine_for(settings.dsn)
    table = _outbox_in(f"notification_outbox_{unique}")
    ensure_schema(engine, table.metadata)
    yield engine, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{table.schema}" CASCADE'))


def _messages(engine: Engine, event_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(notifications).where(notifications.c.event_id == event_id)
        return int(conn.execute(query).scalar_one())


def _outbox_rows(engine: Engine, table: Table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def die_after_handling(schema: str, group: str, event_id: str) -> None:
    """Run in a child process: consume until `event_id`'s messages are committed, then die at once —
    after the handler's transaction, before the offset commit, and with no relay in the process."""
    settings = get_settings()
    engine = engine_for(settings.dsn)
    consumer = build_consumer(
        settings, NOTIFICATION.with_outbox(_outbox_in(schema)), group_id=group, **SHORT_SESSION
    )
    commit = consumer._commit

    def commit_or_die(messages: object) -> None:
        if _messages(engine, uuid.UUID(event_id)):
            os._exit(DIED)
        commit(messages)

    consumer._commit = commit_or_die  # type: ignore[method-assign]
    consumer.run(threading.Event(), poll_timeout=0.2)


def _order_created(tenant: str) -> schemas.Envelope:
    return event("order.created", tenant_id=tenant)  # a fresh event id each time


def test_reports_survive_a_crash_after_commit_and_are_published_once_by_a_later_relay(
    settings: Settings, private_outbox: tuple[Engine, Table], unique: str
) -> None:
    engine, table = private_outbox
    local = isolated(settings, unique)
    tenant, group = f"crash-{unique}", f"notification-crash-{unique}"
    ensure_catalog_topics(local, ["order.created", "notification.sent", "notification.failed"])
    trigger = _order_created(tenant)
    delivery = producer_from(local, service="order", fallback=False).publish(trigger)
    expected = {service_event_id("notification", f"{trigger.event_id}/{ch}/sent") for ch in CHANNELS}

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.integration.test_outbox_notification import die_after_handling as d; "
            f"d({table.schema!r}, {group!r}, {str(trigger.event_id)!r})",
        ],
        env={**os.environ, "CF_ENV": local.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == DIED, child.stderr[-3000:]

    # Committed together: the messages, their reports (waiting in the outbox) and the event's
    # idempotency key — the consumer serves every tenant, so its handler ran transactional.
    assert _messages(engine, trigger.event_id) == len(CHANNELS)
    key = idempotency_key(trigger.event_id, trigger.correlation_id, group)
    with engine.connect() as conn:
        status = conn.execute(select(idempotency_keys.c.status).where(idempotency_keys.c.key == key)).scalar()
    assert status == "succeeded"
    rows = _outbox_rows(engine, table)
    assert {uuid.UUID(r["event_id"]) for r in rows} == expected
    assert all(r["published_at"] is None for r in rows)
    assert not caught_up(local, group, delivery.topic)  # the offset was never committed

    # Redelivered to the group's next consumer: a duplicate, nothing new written or sent.
    consumer = build_consumer(local, NOTIFICATION.with_outbox(table), group_id=group, **SHORT_SESSION)
    try:
        deadline = time.monotonic() + 60
        while not caught_up(local, group, delivery.topic):
            assert time.monotonic() < deadline, "the redelivered event was never committed"
            consumer.poll_once(0.5)
    finally:
        consumer.close()
    assert _messages(engine, trigger.event_id) == len(CHANNELS)
    assert [r["id"] for r in _outbox_rows(engine, table)] == [r["id"] for r in rows]

    sent_topic = schemas.topic_for("notification.sent", env=local.env)
    assert read_topic(local, sent_topic, expect=1, timeout=3) == []  # no relay ran: nothing on Kafka yet

    relay = OutboxRelay(engine, table, producer_from(local, fallback=False))
    assert relay.drain().published == len(CHANNELS)
    assert relay.pending() == 0
    read_topic(local, sent_topic, expect=len(CHANNELS), timeout=60)
    records = read_topic(local, sent_topic, expect=len(CHANNELS) + 1, timeout=4)  # a double would show
    published = [schemas.decode(r.value()) for r in records]
    assert sorted(str(e.event_id) for e in published) == sorted(str(i) for i in expected)
    assert all(e.causation_id == trigger.event_id and e.tenant_id == tenant for e in published)


class _RelayFailingOn:
    """A mail relay that accepts the first message and breaks on `channel`."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def deliver(self, message: Message) -> DeliveryOutcome:
        if message.channel == self.channel:
            raise ConnectionError("mail relay went away")
        return DeliveryOutcome(True)


def test_a_handler_failing_half_way_leaves_neither_messages_nor_reports(
    settings: Settings, private_outbox: tuple[Engine, Table], unique: str
) -> None:
    engine, table = private_outbox
    emitter = OutboxEmitter("notification", table, keyring_from(settings), env=settings.env)
    handler = NotificationHandler(engine, emitter, _RelayFailingOn(CHANNELS[-1]))  # type: ignore[arg-type]
    trigger = _order_created(f"half-{unique}")
    context = HandlerContext(
        topic="t",
        partition=0,
        offset=0,
        headers=[],
        signature=schemas.SignatureCheck(schemas.SignatureStatus.OK),
    )
    with pytest.raises(ConnectionError):
        handler(trigger, context)
    assert emitter.written  # the first report was queued, then rolled back with everything else
    assert _messages(engine, trigger.event_id) == 0
    assert _outbox_rows(engine, table) == []

    NotificationHandler(engine, emitter)(trigger, context)  # the retry does it all
    assert _messages(engine, trigger.event_id) == len(CHANNELS)
    assert len(_outbox_rows(engine, table)) == len(CHANNELS)
