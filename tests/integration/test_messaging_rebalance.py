"""A commit refused by a rebalance, on the real broker and PostgreSQL: one INFO line, no traceback,
and the partitions' new owner skips what it redelivers (the idempotency keys were stored first);
the DLQ processor's likewise (its successor redoes the outcome, recorded once).

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
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import select

import schemas
from core.db import engine_for
from core.settings import Settings
from messaging import HandlerContext
from messaging.commits import commit
from messaging.consumer.refused import RETRY_EVERY_S, RefusedCommits
from messaging.dlq.letter import DeadLetter
from messaging.dlq.outcomes import Outcome
from messaging.dlq.processor import DlqProcessor
from messaging.dlq.store import DlqStore
from messaging.errors import ErrorClass
from messaging.metrics import METRICS
from messaging.retry import RetryPolicy
from messaging.tables import dlq_records
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import (
    caught_up,
    ensure,
    event,
    isolated,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.stack

EVENTS = 60
STALL_S = 11.0  # past A's max.poll.interval.ms (7 s): the group drops A meanwhile
BACKOFF = RetryPolicy(retries=1, initial=30.0, max=30.0)  # a DLQ retry's wait: the stub sleeps instead
DLQ_STALL_S = 20.0  # past the DLQ processor's max poll interval (7 s) and its partition's hand-over
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
    refused_before = METRICS.get("commits_refused_by_rebalance")
    caplog.set_level(logging.INFO)
    with running(consumer_a):
        wait_until(stalled.is_set, timeout=60, what="consumer A's first handler call")
        # B is made only now: a consumer joins its group when made, and one made earlier (not yet
        # polling) was handed half the partitions before A had any record.
        consumer_b = consumer_from(s, group_id=group, handlers={"order.created": handler_of("B")},
                                   extra_config=GROUP_TUNING)
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


def _first_outcome(processor: DlqProcessor, *, what: str, timeout: float = 60) -> Outcome:
    """Poll `processor` until it handled a record; AssertionError saying `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while (outcome := processor.poll_once(0.3)) is None:
        assert time.monotonic() < deadline, what
    return outcome


def test_dlq_processor_commit_refused_by_a_rebalance(stack, settings: Settings, unique: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The DLQ processor stalls in a retry's backoff past its max poll interval, while a second
    member of its group runs: the group drops the stalled one and hands the record's partition to
    the second, which redoes the record's outcome — one audit row, the same event id re-published —
    and the stalled one's commit is refused (one INFO line, the processor goes on). (A member alone
    in its group would have its late commit taken: nobody else owns the partition.)"""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    envelope = event()
    producer = producer_from(s, service="order", fallback=False)
    value = schemas.encode(envelope)
    letter = DeadLetter(original_topic=schemas.topic_for("order.created", env=s.env), original_partition=0,
                        original_offset=7, key=str(envelope.correlation_id).encode(), value=value,
                        headers=producer.keyring.sign(value) + [
                            ("x-cf-event-type", b"order.created"),
                            ("x-cf-event-id", str(envelope.event_id).encode())],
                        error_class=ErrorClass.TRANSIENT, reason="transient in test", attempts=3, handler="h")
    producer.publish_raw(letter.topic, key=letter.key, value=letter.value, headers=letter.record_headers())
    producer.flush()

    def processor(sleep) -> DlqProcessor:
        return DlqProcessor(s.bootstrap_servers, producer=producer_from(s, service="order", fallback=False),
                            store=DlqStore(engine_for(s.dsn)), topics=[schemas.dlq_topics_pattern(s.env)],
                            group_id=f"dlqp-{unique}", policy=lambda _t: BACKOFF, sleep=sleep,
                            extra_config={**GROUP_TUNING, "max.poll.interval.ms": 7000})

    caplog.set_level(logging.INFO)
    stalling = threading.Event()

    def stall(_wait: float) -> None:  # its backoff outlasts its poll interval and the hand-over
        stalling.set()
        time.sleep(DLQ_STALL_S)

    stalled = processor(stall)
    outcomes: list[Outcome] = []
    first = threading.Thread(target=lambda: outcomes.append(
        _first_outcome(stalled, what="the DLQ record never reached the processor")), daemon=True)
    first.start()
    successor = None
    try:
        wait_until(stalling.is_set, timeout=60, what="the first processor's stall")
        # Made only now: a consumer joins its group when made, and the record's partition could
        # otherwise be the successor's from the start.
        successor = processor(lambda _wait: None)
        # Nothing was committed: the record comes again to the successor, its outcome recorded once.
        again = _first_outcome(successor, what="the successor never got the record again")
        first.join(DLQ_STALL_S + 30)
    finally:
        if successor is not None:
            successor.close()
        stalled.close()
    assert outcomes == [Outcome.RETRIED]
    assert again is Outcome.RETRIED
    refusals = [r for r in caplog.records if r.getMessage().startswith("commit refused by a rebalance")]
    assert [r.levelno for r in refusals] == [logging.INFO]
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    with engine_for(s.dsn).connect() as conn:
        rows = conn.execute(select(dlq_records.c.outcome)
                            .where(dlq_records.c.event_id == letter.event_id)).all()
    assert [r.outcome for r in rows] == ["retried"]
    copies = read_topic(s, letter.original_topic, expect=2)
    assert {dict(c.headers())["x-cf-event-id"] for c in copies} == {str(envelope.event_id).encode()}



def test_refused_offsets_are_committed_again_for_the_partitions_still_owned(
        stack, settings: Settings, unique: str) -> None:
    """What a consumer does after a rebalance refused its commit (`RefusedCommits`), on the real
    broker: the offsets of partitions it still owns are committed at its next poll, those of a
    partition it no longer owns are forgotten (the new owner resumes from the last commit), and an
    offset committed later is never moved back. (A refusal itself comes from a rebalance racing a
    batch: `test_worker_processes` meets it when a worker process is killed.)"""
    s = isolated(settings, unique, kafka_partitions=4)
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    group = f"refused-{unique}"
    consumer = Consumer({"bootstrap.servers": s.bootstrap_servers, "group.id": group,
                         "enable.auto.commit": False})
    try:
        wait_until(lambda: len(consumer.list_topics(topic, timeout=10).topics[topic].partitions) == 4
                   and consumer.list_topics(topic, timeout=10).topics[topic].error is None,
                   timeout=30, what="the topic's four partitions")
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(topic, 3)])
        refused = RefusedCommits()
        refused.refused([TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 5),
                         TopicPartition(topic, 2, 9), TopicPartition(topic, 3, 4)])
        refused.refused([TopicPartition(topic, 1, 6)])  # a later refusal of the same partition
        refused.committed([TopicPartition(topic, 3, 8)])  # partition 3 committed since, at 8
        commit(consumer, offsets=[TopicPartition(topic, 3, 8)])
        refused.forget([TopicPartition(topic, 0)])  # partition 0 revoked meanwhile
        refused.retry(consumer)  # too soon after the refusal: a rebalance under way would refuse again
        assert _committed(consumer, topic) == {0: None, 1: None, 2: None, 3: 8}
        time.sleep(RETRY_EVERY_S)
        refused.retry(consumer)
        # 1 is still owned: committed at its latest refused offset; 2 is not owned: not committed;
        # 0 was revoked; 3's later commit stands.
        assert _committed(consumer, topic) == {0: None, 1: 6, 2: None, 3: 8}
        assert not refused
    finally:
        consumer.close()


def _committed(consumer: Consumer, topic: str) -> dict[int, int | None]:
    return {tp.partition: None if tp.offset < 0 else tp.offset
            for tp in consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)}
