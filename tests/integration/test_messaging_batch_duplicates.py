"""The same event twice in one fetched batch runs its handler once.

A producer whose delivery report timed out while the broker had in fact written the record, and
then spooled and replayed it, puts the same event on the topic twice, close together: the consumer
fetches both in one batch, where a single up-front claim covers the key. The second copy must be
skipped as a duplicate, not handled again because the batch's claim said "acquired".
"""

from __future__ import annotations

import threading

import pytest

import schemas
from core.settings import Settings
from messaging import HandlerContext
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import caught_up, ensure, event, isolated, running, wait_until

pytestmark = pytest.mark.stack


def test_a_record_repeated_within_one_batch_is_handled_once(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    twice = event()
    sentinel = event(correlation_id=twice.correlation_id)  # same key, after both copies
    for envelope in (twice, twice, sentinel):
        producer.publish(envelope)
    producer.close()
    runs: list[str] = []
    lock = threading.Lock()

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        with lock:
            runs.append(str(envelope.event_id))

    group = f"batch-dup-{unique}"
    consumer = consumer_from(s, group_id=group, handlers={"order.created": handler}, batch_size=500)
    topic = schemas.topic_for("order.created", env=s.env)
    with running(consumer):
        wait_until(lambda: str(sentinel.event_id) in runs, timeout=60, what="the sentinel handled")
        wait_until(lambda: caught_up(s, group, topic), timeout=60, what="the group past all three records")
    assert runs == [str(twice.event_id), str(sentinel.event_id)], runs
