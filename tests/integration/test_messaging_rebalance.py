"""A commit refused by a rebalance, on the real broker and PostgreSQL: one INFO line, no traceback,
and the partitions' new owner skips what it redelivers (the idempotency keys were stored first).

Consumer A stalls in a handler past its `max.poll.interval.ms`, so the group drops it and consumer B
takes its partitions while A is still handling its batch; A's commit is then refused
(UNKNOWN_MEMBER_ID). B resumes from the last commit, redelivers A's records, and finds their keys.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter

import pytest

import schemas
from core.settings import Settings
from messaging import HandlerContext
from messaging.metrics import METRICS
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import caught_up, ensure, event, isolated, running, wait_until

pytestmark = pytest.mark.stack

EVENTS = 60
STALL_S = 11.0  # past A's max.poll.interval.ms (7 s): the group drops A meanwhile
GROUP_TUNING = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


def test_commit_refused_by_a_rebalance_is_one_info_line_and_no_duplicate(
        stack, settings: Settings, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    s = isolated(settings, unique, kafka_partitions=6)
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    producer = producer_from(s, service="order", fallback=False)
    sent = [event(correlation_id=uuid.uuid4()) for _ in range(EVENTS)]
    for envelope in sent:
        producer.send(envelope)
    producer.flush()

    calls: Counter[str] = Counter()  # event id -> handler calls, over both consumers
    by_a: set[str] = set()
    lock = threading.Lock()
    stalled = threading.Event()

    def handler_of(name: str):
        def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
            with lock:
                calls[str(envelope.event_id)] += 1
                if name == "A":
                    by_a.add(str(envelope.event_id))
            if name == "A" and not stalled.is_set():
                stalled.set()
                time.sleep(STALL_S)
        return handler

    group = f"rebalance-{unique}"
    consumer_a = consumer_from(s, group_id=group, handlers={"order.created": handler_of("A")},
                               batch_size=20,
                               extra_config={**GROUP_TUNING, "max.poll.interval.ms": 7000})
    consumer_b = consumer_from(s, group_id=group, handlers={"order.created": handler_of("B")},
                               extra_config=GROUP_TUNING)
    refused_before = METRICS.get("commits_refused_by_rebalance")
    caplog.set_level(logging.INFO)
    with running(consumer_a):
        wait_until(stalled.is_set, timeout=60, what="consumer A's first handler call")
        with running(consumer_b):
            wait_until(lambda: len(calls) == EVENTS and caught_up(s, group, topic), timeout=90,
                       what="every event handled and committed")

    # Every event's side effect happened exactly once, though A's batch was delivered twice.
    assert sorted(calls) == sorted(str(e.event_id) for e in sent)
    assert [eid for eid, n in calls.items() if n != 1] == []
    assert by_a, "consumer A handled nothing"
    refusals = [r for r in caplog.records if r.getMessage().startswith("commit refused by a rebalance")]
    assert refusals, "A's commit was never refused: the test did not provoke the rebalance"
    assert {r.levelno for r in refusals} == {logging.INFO}
    assert any(name in refusals[0].getMessage() for name in ("UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION",
                                                              "REBALANCE_IN_PROGRESS"))
    assert METRICS.get("commits_refused_by_rebalance") > refused_before
    # The new owner redelivered A's handled records and skipped them by their idempotency keys.
    skipped = {r.args[0] for r in caplog.records
               if r.name == "messaging.consumer.dispatch" and r.getMessage().startswith("duplicate ")}
    assert {str(eid) for eid in skipped} & by_a
    # No traceback and nothing at ERROR for the rebalance.
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
