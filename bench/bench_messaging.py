"""Messaging runtime benchmarks on the real local broker and PostgreSQL, each against raw confluent-kafka
in the same run:

1. producer pipeline (encode + sign + headers + span + produce) vs a raw Producer sending the same bytes;
2. consumer pipeline without a database (verify + decode + span + handler + commit) vs a raw consumer
   that reads and commits the same records batch by batch;
3. consumer pipeline with PostgreSQL idempotency keys (events/s per process): each round reads records
   of its own, never seen before (every key new), then the same records again with another group (every
   key a duplicate: the redelivery after a crash or a rebalance);
4. file-fallback replay vs a raw Producer sending the same records.

Run: `.venv/bin/python -m bench.bench_messaging [N [ROUNDS]]` (stack up first). Every figure is the median
of ROUNDS (default 3) rounds, each timing the baseline and the pipeline back to back on the same
records with warmed producers, so a noisy moment hits both sides of one ratio.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

import schemas
from core.db import engine_for
from core.settings import get_settings
from core.tracing import child_traceparent, configure_tracing
from messaging import EventConsumer
from messaging.consumer.gctune import tune_gc_for_throughput
from messaging.fallback.replay import SpoolReplayer
from messaging.fallback.spool import FallbackSpool, SpooledRecord
from messaging.idempotency import IdempotencyStore
from messaging.metrics import METRICS
from messaging.producer import EventProducer, record_headers
from messaging.wiring import ensure_catalog_topics, keyring_from, signing_mode_from

PRODUCER_CONFIG = {"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random", "linger.ms": 5,
                   "compression.type": "lz4"}


def _events(n: int) -> list[schemas.Envelope]:
    from schemas.examples import example_data

    data = example_data("order.created", schemas.catalog["order.created"].latest_version)
    actor = schemas.Actor(id="bench", type=schemas.ActorType.SYSTEM)
    flows = [uuid.uuid4() for _ in range(200)]
    return [schemas.new_event("order.created", data, tenant_id="bench", correlation_id=flows[i % 200],
                              actor=actor, producer="order-service") for i in range(n)]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _warm_producer(settings, record: tuple[str, bytes | None, bytes, list]) -> Producer:  # noqa: ANN001
    """A raw Producer that already has its connection and idempotent producer id (it sent `record`,
    a valid one, once), so a timed run measures producing, not start-up: a fresh producer spends
    ~0.1-0.5 s getting there, which would otherwise count against the side that starts it."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, **PRODUCER_CONFIG})
    topic, key, value, headers = record
    producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0
    return producer


def _raw_produce(settings, records: list[tuple[str, bytes | None, bytes, list]]) -> float:  # noqa: ANN001
    """The baseline: plain `produce` of ready (topic, key, value, headers) tuples, then `flush`."""
    raw = _warm_producer(settings, records[0])
    started = time.perf_counter()
    for topic, key, value, headers in records:
        while True:
            try:
                raw.produce(topic, value=value, key=key, headers=headers)
                break
            except BufferError:
                raw.poll(0.01)
        raw.poll(0)
    assert raw.flush(60) == 0
    return _rate(len(records), time.perf_counter() - started)


def bench_producer(settings, topic: str,  # noqa: ANN001
                   events: list[schemas.Envelope]) -> tuple[float, float, float]:
    """(raw rate, pipeline rate, floor rate): the same events as ready bytes through a raw Producer,
    through `EventProducer.send`, and encoded + signed by hand into a raw Producer."""
    keyring = keyring_from(settings, "order")
    records = []
    for envelope in events:
        value = schemas.encode(envelope)
        headers = record_headers(envelope, value, keyring)
        records.append((str(envelope.correlation_id).encode(), value, headers))
    raw_rate = _raw_produce(settings, [(topic, key, value, headers) for key, value, headers in records])
    floor_producer = _warm_producer(settings, (topic, *records[0]))
    started = time.perf_counter()
    for envelope in events:  # the contract's own cost: encode, sign + headers, produce; nothing else
        value = schemas.encode(envelope)
        key = str(envelope.correlation_id).encode()
        while True:
            try:
                floor_producer.produce(topic, value=value, key=key,
                                       headers=record_headers(envelope, value, keyring, key=key))
                break
            except BufferError:
                floor_producer.poll(0.01)
        floor_producer.poll(0)
    assert floor_producer.flush(60) == 0
    floor_rate = _rate(len(events), time.perf_counter() - started)
    producer = EventProducer(settings.bootstrap_servers, keyring, env=settings.env)
    producer.send(events[0], topic=topic)  # warm: connection, producer id, topic check
    assert producer.flush(60) == 0
    started = time.perf_counter()
    for envelope in events:
        producer.send(envelope, topic=topic)
    assert producer.flush(60) == 0
    return raw_rate, _rate(len(events), time.perf_counter() - started), floor_rate


def bench_raw_consumer(settings, topic: str, n: int, *, decode: bool = False) -> float:  # noqa: ANN001
    """Plain confluent-kafka: consume in batches of 500, read each value, commit each batch.

    With `decode`, each record is also verified and decoded by hand (`headers()`, `Keyring.verify`,
    `schemas.decode`) and nothing else: the floor any consumer that checks the contract pays here.
    """
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"bench-raw-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    keyring = keyring_from(settings, "order")
    seen = 0
    started = None
    while seen < n:
        batch = consumer.consume(500, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        last = {}
        for msg in batch:
            if msg.error() is None:
                value = msg.value()
                if decode:
                    assert keyring.verify(value, msg.headers()).ok
                    schemas.decode(value)
                seen += 1
                last[(msg.topic(), msg.partition())] = msg
        if last:
            consumer.commit(offsets=[_next(m) for m in last.values()], asynchronous=False)
    rate = _rate(seen, time.perf_counter() - started)
    consumer.close()
    return rate


def _next(msg):  # noqa: ANN001, ANN202
    from confluent_kafka import TopicPartition

    return TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)


def bench_pipeline_consumer(settings, topic: str, n: int, store: IdempotencyStore | None) -> float:  # noqa: ANN001
    """Events/s of `EventConsumer` reading `n` records of `topic` with a fresh group; a record whose key
    is a duplicate counts as read (its handler is skipped)."""
    handled = [0]
    duplicates_before = METRICS.get("duplicates")

    def handler(envelope: schemas.Envelope, context: object) -> None:
        handled[0] += 1

    consumer = EventConsumer(settings.bootstrap_servers, group_id=f"bench-pipe-{uuid.uuid4()}",
                             topics=[topic],
                             handlers={"order.created": handler}, keyring=keyring_from(settings),
                             signing_mode=signing_mode_from(settings),
                             dlq_producer=EventProducer(settings.bootstrap_servers, keyring_from(settings)),
                             idempotency=store)
    started = None
    while (read := handled[0] + METRICS.get("duplicates") - duplicates_before) < n:
        if consumer.poll_once(1.0) and started is None:
            started = time.perf_counter() - 1e-9
    rate = _rate(read, time.perf_counter() - started)
    consumer.close()
    return rate


def bench_idempotent_consumer(settings, n: int, store: IdempotencyStore) -> tuple[float, float]:  # noqa: ANN001
    """(new keys, redelivered): `n` fresh events on a topic of their own, read once (every key claimed,
    handled and stored) and again with another group (every key found succeeded, the handler skipped)."""
    topic = topic_with_records(settings, n)
    try:
        new_keys = bench_pipeline_consumer(settings, topic, n, store)
        return new_keys, bench_pipeline_consumer(settings, topic, n, store)
    finally:
        _delete_topics(settings, [topic])


def topic_with_records(settings, n: int) -> str:  # noqa: ANN001
    """A topic of its own (a fresh env segment) holding `n` fresh signed `order.created` records."""
    own = settings.model_copy(update={"env": f"bench{uuid.uuid4().hex[:8]}"})
    ensure_catalog_topics(own, ["order.created"])
    topic = schemas.topic_for("order.created", env=own.env)
    keyring = keyring_from(settings, "order")
    records = []
    for envelope in _events(n):
        value = schemas.encode(envelope)
        key = str(envelope.correlation_id).encode()
        # A fresh trace per record, as `EventProducer` gives a record published outside any span.
        headers = record_headers(envelope, value, keyring, trace_headers=child_traceparent())
        records.append((topic, key, value, headers))
    _raw_produce(settings, records)
    return topic


def _delete_topics(settings, topics: list[str]) -> None:  # noqa: ANN001
    """The bench's topics and their DLQ topics (`ensure_catalog_topics` made both)."""
    doomed = [name for topic in topics for name in (topic, schemas.dlq_topic_of(topic))]
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    futures = admin.delete_topics(doomed, operation_timeout=30)
    for future in futures.values():
        future.result(60)


def _key_rows(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM messaging.idempotency_keys").scalar_one()


def bench_replay(settings, topic: str, events: list[schemas.Envelope]) -> tuple[float, float]:  # noqa: ANN001
    keyring = keyring_from(settings, "order")
    records = []
    for envelope in events:
        value = schemas.encode(envelope)
        records.append(SpooledRecord(topic, str(envelope.correlation_id).encode(), value,
                                     record_headers(envelope, value, keyring)))
    raw_rate = _raw_produce(settings, [(r.topic, r.key, r.value, r.headers) for r in records])
    with tempfile.TemporaryDirectory() as directory:
        spool = FallbackSpool(directory)
        for i in range(0, len(records), 1000):
            spool.append(records[i:i + 1000])
        first = records[0]
        producer = _warm_producer(settings, (first.topic, first.key, first.value, first.headers))
        replayer = SpoolReplayer(producer, spool)
        started = time.perf_counter()
        report = replayer.replay()
        replay_rate = _rate(report.replayed, time.perf_counter() - started)
        assert report.replayed == len(records) and not report.remaining
    return raw_rate, replay_rate


def _summary(name: str, pairs: list[tuple[float, float]], goal: str) -> str:
    """Median rates and ratio over the rounds, with the ratio's range (each round: same records,
    baseline then pipeline, back to back)."""
    raws, pipes = [p[0] for p in pairs], [p[1] for p in pairs]
    ratios = [pipe / raw for raw, pipe in pairs]
    return (f"{name}: raw {statistics.median(raws):,.0f}/s, pipeline {statistics.median(pipes):,.0f}/s, "
            f"ratio {statistics.median(ratios):.2f} "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}; goal {goal})")


def main(n: int = 30_000, rounds: int = 3) -> None:
    configure_tracing("bench")
    tune_gc_for_throughput()  # what EventConsumer.run does in a worker process
    settings = get_settings().model_copy(update={"env": f"bench{uuid.uuid4().hex[:8]}"})
    ensure_catalog_topics(settings, ["order.created"])
    topic = schemas.topic_for("order.created", env=settings.env)
    events = _events(n)
    gc.freeze()  # the fixtures live all run long: keep them out of the collector's scans in every measurement
    print(f"messaging benchmarks, {n} events of order.created ({len(schemas.encode(events[0]))} B), "
          f"{settings.kafka_partitions} partitions, median of {rounds} rounds")

    produced = [bench_producer(settings, topic, events) for _ in range(rounds)]
    print(_summary("producer", [(raw, pipe) for raw, pipe, _ in produced], ">= 0.5"))
    floor_p = statistics.median(f for _, _, f in produced)
    print(f"  encode + sign + produce only (the contract's own cost, no runtime): {floor_p:,.0f}/s, ratio "
          f"{statistics.median(f / r for r, _, f in produced):.2f}; pipeline / that floor "
          f"{statistics.median(p for _, p, _ in produced) / floor_p:.2f}")
    # The topic now holds 2n records per round: each consumer reads n of them with a fresh group.
    consumed, floors = [], []
    for _ in range(rounds):
        raw_c = bench_raw_consumer(settings, topic, n)
        consumed.append((raw_c, bench_pipeline_consumer(settings, topic, n, None)))
        floors.append((raw_c, bench_raw_consumer(settings, topic, n, decode=True)))
    print(_summary("consumer without DB", consumed, ">= 0.3"))
    floor = statistics.median(f for _, f in floors)
    pipe_c = statistics.median(p for _, p in consumed)
    print(f"  raw + verify + decode only (the contract's own cost, no runtime): {floor:,.0f}/s, ratio "
          f"{statistics.median(f / r for r, f in floors):.2f}; pipeline / that floor {pipe_c / floor:.2f}")
    engine = engine_for(settings.dsn)
    store = IdempotencyStore(engine)
    rows = _key_rows(engine)
    with_db = [bench_idempotent_consumer(settings, n, store) for _ in range(rounds)]
    fresh, again = [f for f, _ in with_db], [a for _, a in with_db]
    print(f"consumer with PostgreSQL idempotency, every key new: {statistics.median(fresh):,.0f} events/s "
          f"(rounds {min(fresh):,.0f}-{max(fresh):,.0f}; goal >= 10,000); redelivered, every key a "
          f"duplicate: {statistics.median(again):,.0f} events/s ({min(again):,.0f}-{max(again):,.0f}); "
          f"{rows:,} keys in the table before")
    replayed = [bench_replay(settings, topic, events) for _ in range(rounds)]
    print(_summary("fallback replay", replayed, ">= 0.5"))
    _delete_topics(settings, [topic])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
