"""Messaging runtime benchmarks on the real local broker and PostgreSQL, each against raw confluent-kafka
in the same run:

1. producer pipeline (encode + sign + headers + span + produce) vs a raw Producer sending the same bytes;
2. consumer pipeline without a database (verify + decode + span + handler + commit) vs a raw consumer
   that reads and commits the same records batch by batch;
3. consumer pipeline with PostgreSQL idempotency keys (events/s per process);
4. file-fallback replay vs a raw Producer sending the same records.

Run: `.venv/bin/python -m bench.bench_messaging [N]` (stack up first).
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer

import schemas
from cloud_factory.db import engine_for
from cloud_factory.settings import get_settings
from cloud_factory.tracing import configure_tracing
from messaging.consumer import EventConsumer
from messaging.gctune import tune_gc_for_throughput
from messaging.idempotency import IdempotencyStore
from messaging.producer import EventProducer, record_headers
from messaging.replay import SpoolReplayer
from messaging.spool import FallbackSpool, SpooledRecord
from messaging.wiring import ensure_catalog_topics, keyring_from, signing_mode_from

PRODUCER_CONFIG = {"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random", "linger.ms": 5,
                   "compression.type": "lz4"}


def _events(n: int) -> list[schemas.Envelope]:
    from schemas.examples import example_data

    data = example_data("order.created", schemas.catalog["order.created"].latest_version)
    actor = schemas.Actor(id="bench", type=schemas.ActorType.SYSTEM)
    flows = [uuid.uuid4() for _ in range(200)]
    return [schemas.new_event("order.created", data, tenant_id="bench", correlation_id=flows[i % 200],
                              actor=actor, producer="bench") for i in range(n)]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_producer(settings, topic: str, events: list[schemas.Envelope]) -> tuple[float, float]:  # noqa: ANN001
    keyring = keyring_from(settings)
    records = []
    for envelope in events:
        value = schemas.encode(envelope)
        records.append((str(envelope.correlation_id).encode(), value, record_headers(envelope, value, keyring)))
    raw = Producer({"bootstrap.servers": settings.bootstrap_servers, **PRODUCER_CONFIG})
    started = time.perf_counter()
    for key, value, headers in records:
        while True:
            try:
                raw.produce(topic, value=value, key=key, headers=headers)
                break
            except BufferError:
                raw.poll(0.01)
        raw.poll(0)
    assert raw.flush(60) == 0
    raw_rate = _rate(len(records), time.perf_counter() - started)
    producer = EventProducer(settings.bootstrap_servers, keyring, env=settings.env)
    started = time.perf_counter()
    for envelope in events:
        producer.send(envelope, topic=topic)
    assert producer.flush(60) == 0
    return raw_rate, _rate(len(events), time.perf_counter() - started)


def bench_raw_consumer(settings, topic: str, n: int, *, decode: bool = False) -> float:  # noqa: ANN001
    """Plain confluent-kafka: consume in batches of 500, read each value, commit each batch.

    With `decode`, each record is also verified and decoded by hand (`headers()`, `Keyring.verify`,
    `schemas.decode`) and nothing else: the floor any consumer that checks the contract pays here.
    """
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"bench-raw-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    keyring = keyring_from(settings)
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
    handled = [0]

    def handler(envelope: schemas.Envelope, context: object) -> None:
        handled[0] += 1

    consumer = EventConsumer(settings.bootstrap_servers, group_id=f"bench-pipe-{uuid.uuid4()}", topics=[topic],
                             handlers={"order.created": handler}, keyring=keyring_from(settings),
                             signing_mode=signing_mode_from(settings),
                             dlq_producer=EventProducer(settings.bootstrap_servers, keyring_from(settings)),
                             idempotency=store)
    started = None
    while handled[0] < n:
        if consumer.poll_once(1.0) and started is None:
            started = time.perf_counter() - 1e-9
    rate = _rate(handled[0], time.perf_counter() - started)
    consumer.close()
    return rate


def bench_replay(settings, topic: str, events: list[schemas.Envelope]) -> tuple[float, float]:  # noqa: ANN001
    keyring = keyring_from(settings)
    records = []
    for envelope in events:
        value = schemas.encode(envelope)
        records.append(SpooledRecord(topic, str(envelope.correlation_id).encode(), value,
                                     record_headers(envelope, value, keyring)))
    raw = Producer({"bootstrap.servers": settings.bootstrap_servers, **PRODUCER_CONFIG})
    started = time.perf_counter()
    for record in records:
        while True:
            try:
                raw.produce(record.topic, value=record.value, key=record.key, headers=record.headers)
                break
            except BufferError:
                raw.poll(0.01)
        raw.poll(0)
    assert raw.flush(60) == 0
    raw_rate = _rate(len(records), time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as directory:
        spool = FallbackSpool(directory)
        for i in range(0, len(records), 1000):
            spool.append(records[i:i + 1000])
        replayer = SpoolReplayer(Producer({"bootstrap.servers": settings.bootstrap_servers, **PRODUCER_CONFIG}),
                                 spool)
        started = time.perf_counter()
        report = replayer.replay()
        replay_rate = _rate(report.replayed, time.perf_counter() - started)
        assert report.replayed == len(records) and not report.remaining
    return raw_rate, replay_rate


def main(n: int = 30_000) -> None:
    configure_tracing("bench")
    tune_gc_for_throughput()  # what EventConsumer.run does in a worker process
    settings = get_settings().model_copy(update={"env": f"bench{uuid.uuid4().hex[:8]}"})
    ensure_catalog_topics(settings, ["order.created"])
    topic = schemas.topic_for("order.created", env=settings.env)
    events = _events(n)
    gc.freeze()  # the fixtures live all run long: keep them out of the collector's scans in every measurement
    print(f"messaging benchmarks, {n} events of order.created ({len(schemas.encode(events[0]))} B), "
          f"{settings.kafka_partitions} partitions")

    raw, pipeline = bench_producer(settings, topic, events)
    print(f"producer: raw {raw:,.0f}/s, pipeline {pipeline:,.0f}/s, ratio {pipeline / raw:.2f} (goal >= 0.5)")
    # The topic now holds 2n records (raw + pipeline): consumers read n of them.
    raw_c = bench_raw_consumer(settings, topic, n)
    pipe_c = bench_pipeline_consumer(settings, topic, n, None)
    floor = bench_raw_consumer(settings, topic, n, decode=True)
    print(f"consumer without DB: raw {raw_c:,.0f}/s, pipeline {pipe_c:,.0f}/s, ratio {pipe_c / raw_c:.2f} (goal >= 0.3)")
    print(f"  raw + verify + decode only (the contract's own cost, no runtime): {floor:,.0f}/s, "
          f"ratio {floor / raw_c:.2f}; pipeline / that floor {pipe_c / floor:.2f}")
    store = IdempotencyStore(engine_for(settings.dsn))
    pipe_db = bench_pipeline_consumer(settings, topic, n, store)
    print(f"consumer with PostgreSQL idempotency: {pipe_db:,.0f} events/s (goal >= 5,000)")
    raw_r, replay = bench_replay(settings, topic, events)
    print(f"fallback replay: raw {raw_r:,.0f}/s, replay {replay:,.0f}/s, ratio {replay / raw_r:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)
