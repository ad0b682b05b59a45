"""The consumer runtime on the real broker and PostgreSQL: order, retries, error classes, DLQ."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict

import pytest

import schemas
from core.settings import Settings
from messaging import HandlerContext
from messaging.dlq.letter import DeadLetter
from messaging.errors import (
    InconsistencyError,
    NotFoundError,
    PermissionDeniedError,
    ResourceBusyError,
    TransientError,
    ValidationError,
)
from messaging.retry import RetryPolicy
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import ensure, event, isolated, read_topic, running, wait_until

pytestmark = pytest.mark.stack

FAST = RetryPolicy(retries=2, initial=0.05, max=0.2)


def test_order_per_correlation_id_with_many_concurrent_flows(stack, settings: Settings, unique: str) -> None:
    """40 flows × 25 events, published from 4 threads over 3 partitions, consumed by 2 consumers in
    one group: every flow arrives complete and in publish order."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    flows = [uuid.uuid4() for _ in range(40)]
    sent: dict[uuid.UUID, list[str]] = defaultdict(list)

    def publish(chunk: list[uuid.UUID]) -> None:
        for _step in range(25):
            for flow in chunk:
                envelope = event(correlation_id=flow)
                sent[flow].append(str(envelope.event_id))
                producer.send(envelope)
        producer.flush()

    threads = [threading.Thread(target=publish, args=(flows[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    seen: dict[uuid.UUID, list[str]] = defaultdict(list)
    partitions_of: dict[uuid.UUID, set[int]] = defaultdict(set)
    lock = threading.Lock()

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        with lock:
            seen[envelope.correlation_id].append(str(envelope.event_id))
            partitions_of[envelope.correlation_id].add(context.partition)

    group = f"order-{unique}"
    consumers = [consumer_from(s, group_id=group, handlers={"order.created": handler}, batch_size=50)
                 for _ in range(2)]
    with running(*consumers):
        wait_until(lambda: sum(len(v) for v in seen.values()) >= 1000, timeout=60, what="1000 events")
    assert {flow: seen[flow] for flow in flows} == dict(sent)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len({p for ps in partitions_of.values() for p in ps}) == 3  # the flows really spread


def _dlq(s: Settings, event_type: str, expect: int) -> list[DeadLetter]:
    records = read_topic(s, schemas.dlq_topic_for(event_type, env=s.env), expect=expect, timeout=30)
    return [DeadLetter.from_record(m.key(), m.value(), m.headers()) for m in records]


@pytest.mark.parametrize(("error", "routed"), [
    (TransientError("connection refused"), "transient"),
    (ResourceBusyError("rate limited"), "resource_busy"),
    (ValidationError("missing field"), "validation"),
    (NotFoundError("no such order"), "not_found"),
    (PermissionDeniedError("unauthorized"), "permission"),
    (InconsistencyError("version conflict"), "inconsistency"),
    (ConnectionRefusedError("db"), "transient"),
    (KeyError("plan"), "not_found"),
])
def test_each_error_class_routes(stack, settings: Settings, unique: str, error: Exception,
                                 routed: str) -> None:
    """Retryable classes are retried (2 retries: 3 attempts) then dead-lettered; permanent ones go to
    the DLQ after a single attempt. The partition moves on to the next record either way."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    poison, healthy = event(), event()
    correlation = poison.correlation_id
    follower = event(correlation_id=correlation)  # same partition, right behind the poison message
    for envelope in (poison, follower, healthy):
        producer.publish(envelope)
    calls: dict[str, int] = defaultdict(int)

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        calls[str(envelope.event_id)] += 1
        if envelope.event_id == poison.event_id:
            raise error

    consumer = consumer_from(s, group_id=f"classes-{unique}", handlers={"order.created": handler},
                             retry_policy=FAST)
    with running(consumer):
        wait_until(lambda: calls[str(follower.event_id)] == 1, timeout=90, what="the follower handled")
        # Another partition, as fast or slow as it likes: waited for, not assumed done with the follower.
        wait_until(lambda: calls[str(healthy.event_id)] >= 1, timeout=90, what="the healthy event handled")
        letters = _dlq(s, "order.created", expect=1)
    assert len(letters) == 1, f"expected the poison record's one dead letter, found {len(letters)}"
    [letter] = letters
    retryable = routed in ("transient", "resource_busy")
    assert calls[str(poison.event_id)] == (3 if retryable else 1)
    assert letter.error_class.value == routed
    assert letter.attempts == calls[str(poison.event_id)]
    assert letter.event_id == str(poison.event_id)
    assert letter.handler == f"classes-{unique}"
    assert letter.original_topic == schemas.topic_for("order.created", env=s.env)
    assert letter.first_failure <= letter.last_failure
    assert schemas.decode(letter.value).event_id == poison.event_id  # the original bytes, untouched
    assert calls[str(healthy.event_id)] == 1


def test_backoff_delays_follow_the_formula(stack, settings: Settings, unique: str) -> None:
    """delay = initial × multiplier^(retry−1), capped: 0.2, 0.4, 0.8, 0.8 s between attempts."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    policy = RetryPolicy(retries=4, initial=0.2, max=0.8, multiplier=2.0)
    producer_from(s, service="order", fallback=False).publish(event())
    attempts: list[float] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        attempts.append(time.monotonic())
        raise TransientError("still down")

    consumer = consumer_from(s, group_id=f"backoff-{unique}", handlers={"order.created": handler},
                             retry_policy=policy)
    with running(consumer):
        _dlq(s, "order.created", expect=1)
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert len(attempts) == 5
    # Never earlier than the profile says (the property); how much later is the machine's business, so
    # the upper bound is only a generous sanity budget, not a race with a loaded 2-core runner.
    for gap, expected in zip(gaps, [0.2, 0.4, 0.8, 0.8], strict=True):
        assert expected - 0.02 <= gap <= expected + 3.0, (gaps, expected)


def test_failing_partition_does_not_block_the_others(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    stuck = event()
    stuck_partition = producer.publish(stuck).partition
    others = []
    while len({d.partition for d in others}) < 2:
        envelope = event()
        delivery = producer.publish(envelope)
        if delivery.partition != stuck_partition:
            others.append(delivery)
    handled: list[tuple[int, int]] = []
    release = threading.Event()

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if envelope.event_id == stuck.event_id and not release.is_set():
            raise TransientError("waiting")
        handled.append((context.partition, context.offset))

    consumer = consumer_from(s, group_id=f"block-{unique}", handlers={"order.created": handler},
                             retry_policy=RetryPolicy(retries=1000, initial=0.1, max=0.1))
    with running(consumer):
        wait_until(lambda: all((d.partition, d.offset) in handled for d in others), what="other partitions")
        assert all(partition != stuck_partition for partition, _ in handled)
        release.set()
        wait_until(lambda: any(partition == stuck_partition for partition, _ in handled),
                   what="the stuck one")


def test_trace_continues_from_the_headers_and_logs_carry_the_ids(
        stack, settings: Settings, unique: str) -> None:
    """The handler runs in the producer's trace; what it publishes continues it; its log lines are JSON
    with traceId, spanId, correlationId, eventId and tenantId."""
    import io
    import json
    import logging

    from core.logs import JsonFormatter
    from core.tracing import configure_tracing

    configure_tracing("tests")
    s = isolated(settings, unique)
    ensure(s, "order.created", "order.cancelled")
    producer = producer_from(s, service="order", fallback=False)
    original = event()
    producer.publish(original)
    [record] = read_topic(s, schemas.topic_for("order.created", env=s.env), expect=1)
    trace_id = dict(record.headers())["traceparent"].decode().split("-")[1]
    stream = io.StringIO()
    log_handler = logging.StreamHandler(stream)
    log_handler.setFormatter(JsonFormatter())
    handler_log = logging.getLogger(f"tests.handler.{unique}")
    handler_log.addHandler(log_handler)
    handler_log.setLevel(logging.INFO)
    seen: list[HandlerContext] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        handler_log.info("handling")
        follow_up = schemas.derive_event(envelope, "order.cancelled", _cancel_data(envelope),
                                         producer="order-service", actor=envelope.actor)
        producer.publish(follow_up)
        seen.append(context)

    consumer = consumer_from(s, group_id=f"trace-{unique}", handlers={"order.created": handler})
    with running(consumer):
        wait_until(lambda: bool(seen), what="the handler")
    [context] = seen
    assert context.trace_id == trace_id
    [derived] = read_topic(s, schemas.topic_for("order.cancelled", env=s.env), expect=1)
    _, derived_trace, parent_span, _ = dict(derived.headers())["traceparent"].decode().split("-")
    assert derived_trace == trace_id and parent_span != context.span_id  # a publish span under the handler's
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["traceId"] == trace_id and line["spanId"] == context.span_id
    assert (line["correlationId"], line["eventId"], line["tenantId"]) == (
        str(original.correlation_id), str(original.event_id), original.tenant_id)


def _cancel_data(envelope: schemas.Envelope) -> dict:
    from schemas.examples import example_data

    return example_data("order.cancelled", schemas.catalog["order.cancelled"].latest_version)


def test_poll_once_returns_as_soon_as_a_message_is_there(stack, settings: Settings, unique: str) -> None:
    """A lone message is handled right away, not after the poll timeout (which used to be spent
    waiting for a batch to fill); a backlog is still taken in batches, in order per partition."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    handled: list[tuple[int, int]] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        handled.append((context.partition, context.offset))

    consumer = consumer_from(s, group_id=f"latency-{unique}", handlers={"order.created": handler},
                             idempotency=False)
    try:
        producer.publish(event())  # warm-up: join the group, get the partitions
        deadline = time.monotonic() + 60
        while not handled:
            assert time.monotonic() < deadline, "the warm-up message never arrived"
            consumer.poll_once(1.0)

        timeout = 10.0
        producer.publish(event())
        started = time.monotonic()
        while len(handled) < 2 and time.monotonic() - started < 3 * timeout:
            consumer.poll_once(timeout)
        took = time.monotonic() - started
        assert len(handled) == 2
        assert took < timeout / 3, f"one message took {took:.2f}s with a {timeout}s poll timeout"

        for _ in range(300):
            producer.send(event())
        assert producer.flush(30) == 0
        calls = 0
        for _ in range(300):
            if len(handled) >= 302:
                break
            calls += consumer.poll_once(timeout)
        assert len(handled) == 302
        assert calls <= 60, f"300 messages took {calls} batches"  # batches, not one message per call
        by_partition: dict[int, list[int]] = defaultdict(list)
        for partition, offset in handled:
            by_partition[partition].append(offset)
        assert all(offsets == sorted(set(offsets)) for offsets in by_partition.values())
    finally:
        consumer.close()
