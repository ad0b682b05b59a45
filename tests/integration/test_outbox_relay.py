"""The outbox relay on the real PostgreSQL and Kafka: rows reach Kafka in insertion order, each once,
even with two relays at once; a relay that dies after the acknowledgement but before its commit
leaves the rows pending and the next relay re-sends them with the same event ids.

Each test uses its own outbox table (schema `outbox_test_<unique>`) and topic, so relays of other
test runs never touch these rows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, MetaData, Table, select, text

from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging.outbox import OutboxRecord, OutboxRelay, enqueue, outbox_table
from messaging.wiring import producer_from
from tests.support.messaging_support import read_topic

pytestmark = pytest.mark.stack


@pytest.fixture
def outbox(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, Table]]:
    engine = engine_for(settings.dsn)
    schema = f"outbox_test_{unique}"
    table = outbox_table(MetaData(schema=schema))
    ensure_schema(engine, table.metadata)
    yield engine, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _fill(engine: Engine, table: Table, topic: str, count: int) -> list[str]:
    """`count` records on one key (one partition, so Kafka keeps their order), one transaction each."""
    ids = []
    for index in range(count):
        event_id = str(uuid.uuid4())
        with engine.begin() as conn:
            enqueue(
                conn,
                table,
                OutboxRecord(
                    uuid.UUID(event_id),
                    "test.outbox",
                    topic,
                    b"flow-1",
                    str(index).encode(),
                    [("x-cf-event-id", event_id.encode())],
                ),
            )
        ids.append(event_id)
    return ids


def _values(settings: Settings, topic: str, expected: int) -> list[int]:
    # Wait (generously: CI machines are loaded) until the expected count arrived, then read again
    # asking for one more than expected, so a duplicate shows up instead of being cut off.
    read_topic(settings, topic, expect=expected, timeout=60)
    records = read_topic(settings, topic, expect=expected + 1, timeout=4)
    placed = sorted((r.partition(), r.offset(), int(r.value())) for r in records)
    assert len({partition for partition, _, _ in placed}) == 1, f"one key, several partitions: {placed}"
    return [value for _, _, value in placed]  # in log order


def _pending(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(table.c.id).where(table.c.published_at.is_(None))).all())


def test_relay_publishes_in_insertion_order_and_marks_rows(settings: Settings, outbox, unique: str) -> None:
    engine, table = outbox
    topic = f"cf-test-outbox-order-{unique}"
    _fill(engine, table, topic, 25)
    relay = OutboxRelay(engine, table, producer_from(settings, fallback=False), batch_size=7)
    result = relay.drain()
    assert result.published == 25 and result.failed == 0
    assert _pending(engine, table) == 0
    assert relay.drain().published == 0  # nothing is sent twice
    assert _values(settings, topic, 25) == list(range(25))


def test_two_relays_at_once_publish_each_row_once_in_order(settings: Settings, outbox, unique: str) -> None:
    engine, table = outbox
    topic = f"cf-test-outbox-pair-{unique}"
    _fill(engine, table, topic, 120)
    relays = [
        OutboxRelay(engine, table, producer_from(settings, fallback=False), batch_size=5) for _ in range(2)
    ]
    published = [0, 0]
    start = threading.Barrier(2)

    def work(index: int) -> None:
        start.wait()
        while _pending(engine, table):
            result = relays[index].relay_once()
            published[index] += result.published

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(published) == 120
    assert _values(settings, topic, 120) == list(range(120))


def test_a_relay_dying_before_its_commit_leaves_rows_for_the_next(
    settings: Settings, outbox, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, table = outbox
    topic = f"cf-test-outbox-crash-{unique}"
    event_ids = _fill(engine, table, topic, 3)
    crashing = OutboxRelay(engine, table, producer_from(settings, fallback=False))

    def crash(rows: object, acked: object) -> int:
        raise RuntimeError("process killed after the broker acknowledged")

    monkeypatch.setattr(crashing, "_prefix", crash)
    with pytest.raises(RuntimeError):
        crashing.relay_once()
    assert _pending(engine, table) == 3  # acknowledged, but never marked: nothing is lost
    assert OutboxRelay(engine, table, producer_from(settings, fallback=False)).drain().published == 3
    assert _pending(engine, table) == 0
    records = read_topic(settings, topic, expect=7, timeout=4)
    assert [int(r.value()) for r in records] == [0, 1, 2, 0, 1, 2]
    # The re-sent records are the same events: consumers drop them by eventId.
    assert [dict(r.headers())["x-cf-event-id"].decode() for r in records] == event_ids * 2
