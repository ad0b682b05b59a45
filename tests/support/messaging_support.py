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
from messaging import EventConsumer, ReadTimeout, TopicReader
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
            actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
            occurred_at=dt.datetime.now(dt.UTC), producer=schemas.producer_name(entry.publisher),
            data=entry.payloads[version].model_validate_json(json.dumps(example_data(event_type, version))))
    return schemas.new_event(event_type, example_data(event_type, version or entry.latest_version),
                             tenant_id=tenant_id, correlation_id=correlation_id or uuid.uuid4(),
                             actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
                             producer=schemas.producer_name(entry.publisher))


def ensure(settings: Settings, *event_types: str) -> None:
    ensure_catalog_topics(settings, list(event_types))


def _partitions(reader: TopicReader, topic: str, *, timeout: float = 10.0) -> list[int]:
    """The partitions of `topic`; AssertionError naming the topic when the broker does not know it (a
    fresh topic's metadata may lag its creation briefly, so ask again until `timeout`)."""
    try:
        return reader.partitions(topic, wait_s=timeout)
    except LookupError as exc:
        raise AssertionError(str(exc)) from None


def assert_topic_exists(settings: Settings, topic: str) -> None:
    """Fails naming `topic` unless the broker has it: check it before asserting that something is not
    on it (a topic that does not exist holds nothing, which proves nothing)."""
    with TopicReader(settings.bootstrap_servers, group_prefix="probe") as reader:
        _partitions(reader, topic)


def read_topic(settings: Settings, topic: str, *, expect: int, timeout: float = 30.0) -> list:
    """Every record of `topic` from the start, waiting until at least `expect` arrived (or `timeout`).

    The topic must exist: a missing one fails loudly (AssertionError naming it) instead of reading as
    empty, so `read_topic(...) == []` means "the topic is there and holds nothing"."""
    found: list = []
    deadline = time.monotonic() + timeout
    with TopicReader(settings.bootstrap_servers) as reader:
        partitions = _partitions(reader, topic)
        read_up_to: dict[int, int] = {}  # partition -> last offset already read
        while len(found) < expect and time.monotonic() < deadline:
            ranges = reader.to_end(topic, partitions=partitions, after=read_up_to)
            if not ranges:
                time.sleep(0.1)  # nothing new yet
                continue
            try:
                found += reader.read(ranges, timeout_s=max(0.0, deadline - time.monotonic()))
            except ReadTimeout:
                break
            read_up_to.update((r.partition, r.end - 1) for r in ranges)
    return found


def read_all_now(settings: Settings, topic: str, *, timeout: float = 30.0) -> list:
    """Every record `topic` holds right now: each partition read up to the end it had when this was
    called, so no fixed wait decides the answer. The topic must exist (AssertionError otherwise).

    For a check that something is *not* there, first publish a sentinel with the record under test's
    key (its partition, after it) and wait until the consumer handled the sentinel: whatever the
    record under test caused is then already on the topic, or never will be."""
    with TopicReader(settings.bootstrap_servers) as reader:
        ranges = reader.to_end(topic, partitions=_partitions(reader, topic))
        try:
            return list(reader.read(ranges, timeout_s=timeout))
        except ReadTimeout as exc:
            raise AssertionError(f"timed out reading {topic} to its end (left: {exc.left})") from None


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
