"""Helpers shared by the messaging integration tests: isolated topics per test, events, readers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, TopicPartition

import schemas
from core.settings import Settings
from messaging.consumer import EventConsumer
from messaging.wiring import ensure_catalog_topics

__all__ = ["assert_topic_exists", "event", "isolated", "read_all_now", "read_topic", "running", "wait_until"]


def isolated(settings: Settings, unique: str, **changes: object) -> Settings:
    """The same stack with its own environment segment, so every topic name is this test's alone."""
    return settings.model_copy(update={"env": f"t{unique}", **changes})


def event(event_type: str = "order.created", *, correlation_id: uuid.UUID | None = None,
          tenant_id: str = "tenant-msg", version: str | None = None) -> schemas.Envelope:
    """A fresh envelope (new event id) built from the contract's example payload, produced by the type's
    catalog publisher (sign it with a producer of that service: `producer_from(s, service=…)`)."""
    from schemas.examples import example_data

    entry = schemas.catalog.require(event_type)
    if version is not None and version != entry.latest_version:  # an old version, as an old producer sent it
        import datetime as dt

        return entry.envelopes[version](
            event_id=uuid.uuid4(), event_type=event_type, version=version, tenant_id=tenant_id,
            correlation_id=correlation_id or uuid.uuid4(), causation_id=None,
            actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM), occurred_at=dt.datetime.now(dt.UTC),
            producer=schemas.producer_name(entry.publisher), data=entry.payloads[version].model_validate_json(json.dumps(example_data(event_type, version))))
    return schemas.new_event(event_type, example_data(event_type, version or entry.latest_version),
                             tenant_id=tenant_id, correlation_id=correlation_id or uuid.uuid4(),
                             actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
                             producer=schemas.producer_name(entry.publisher))


def ensure(settings: Settings, *event_types: str) -> None:
    ensure_catalog_topics(settings, list(event_types))


def _partitions(reader: Consumer, topic: str, *, timeout: float = 10.0) -> list[int]:
    """The partitions of `topic`; AssertionError naming the topic when the broker does not know it (a
    fresh topic's metadata may lag its creation briefly, so ask again until `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = reader.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        error = metadata.error if metadata is not None else "absent from the metadata"
        assert time.monotonic() < deadline, f"topic {topic} does not exist ({error})"
        time.sleep(0.2)


def assert_topic_exists(settings: Settings, topic: str) -> None:
    """Fails naming `topic` unless the broker has it: check it before asserting that something is not
    on it (a topic that does not exist holds nothing, which proves nothing)."""
    probe = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                      "group.id": f"probe-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        _partitions(probe, topic)
    finally:
        probe.close()


def read_topic(settings: Settings, topic: str, *, expect: int, timeout: float = 30.0) -> list:
    """Every record of `topic` from the start, waiting until at least `expect` arrived (or `timeout`).

    The topic must exist: a missing one fails loudly (AssertionError naming it) instead of reading as
    empty, so `read_topic(...) == []` means "the topic is there and holds nothing"."""
    reader = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"reader-{uuid.uuid4().hex}",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        partitions = _partitions(reader, topic)
    except BaseException:
        reader.close()
        raise
    reader.assign([TopicPartition(topic, p, 0) for p in partitions])
    found: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expect and time.monotonic() < deadline:
            for msg in reader.consume(500, 0.5):
                if msg.error() is None:
                    found.append(msg)
    finally:
        reader.close()
    return found


def read_all_now(settings: Settings, topic: str, *, timeout: float = 30.0) -> list:
    """Every record `topic` holds right now: each partition read up to the end it had when this was
    called, so no fixed wait decides the answer. The topic must exist (AssertionError otherwise).

    For a check that something is *not* there, first publish a sentinel with the record under test's
    key (its partition, after it) and wait until the consumer handled the sentinel: whatever the
    record under test caused is then already on the topic, or never will be."""
    reader = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                       "group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False})
    found: list = []
    try:
        ends: dict[int, int] = {}
        starts = []
        for p in _partitions(reader, topic):
            low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high - 1
                starts.append(TopicPartition(topic, p, low))
        if not starts:
            return found
        reader.assign(starts)
        deadline = time.monotonic() + timeout
        while ends:
            assert time.monotonic() < deadline, f"timed out reading {topic} to its end (left: {ends})"
            for msg in reader.consume(500, 0.5):
                if msg.error() is not None or msg.partition() not in ends:
                    continue
                found.append(msg)
                if msg.offset() >= ends[msg.partition()]:
                    del ends[msg.partition()]
    finally:
        reader.close()
    return found


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def running(*consumers: EventConsumer) -> Iterator[None]:
    """Run consumers in threads for the block; stop them gracefully afterwards."""
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,), kwargs={"poll_timeout": 0.2}, daemon=True)
               for c in consumers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def caught_up(settings: Settings, group: str, topic: str) -> bool:
    """Has `group` committed up to the end of every partition of `topic`? (A probe of its own: a
    running consumer must not be called from another thread.)"""
    probe = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group,
                      "enable.auto.commit": False})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        committed = probe.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        for tp in committed:
            high = probe.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1]
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        probe.close()
