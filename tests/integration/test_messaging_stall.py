"""Nothing stalls a partition, on the real stack: a record too big for the DLQ is dead-lettered as a
reference (its value kept in PostgreSQL), a record the DLQ keeps refusing is parked after the park
window (never while PostgreSQL cannot take it), and a partition stuck on one offset shows as a
degraded consumer and worker."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

import schemas
from cloud_factory.cli import app
from cloud_factory.stack.workers import worker_health
from core.settings import Settings, get_settings
from messaging import HandlerContext
from messaging.errors import NotFoundError, TransientError
from messaging.producer import record_headers
from messaging.retry import RetryPolicy
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import caught_up, ensure, event, read_topic, running, wait_until
from tests.support.worker_process import CLI, start_workers, stop_workers
from workers.heartbeat import Heartbeat

pytestmark = pytest.mark.stack

ONE_RETRY = RetryPolicy(retries=1, initial=0.05, max=0.1)
BIG = 1_040_000  # just under 1 MiB: the broker takes it, a DLQ copy with its headers the producer does not
PARK_AFTER_S = 3.0
STUCK_AFTER_S = 2.0


@pytest.fixture
def env(stack, settings: Settings, unique: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """This test's own topic segment and spool, short park and stuck windows, for the CLI as well."""
    monkeypatch.setenv("CF_ENV", f"t{unique}")
    monkeypatch.setenv("CF_FALLBACK_DIR", str(tmp_path / "fallback"))
    monkeypatch.setenv("CF_DLQ_PARK_AFTER_S", str(PARK_AFTER_S))
    monkeypatch.setenv("CF_PARTITION_STUCK_AFTER_S", str(STUCK_AFTER_S))
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()


def _refusing_dlq(s: Settings, event_type: str) -> str:
    """Create the DLQ topic of `event_type` with a size limit no dead letter fits: the broker itself
    refuses every record sent there (nothing in the client is faked)."""
    topic = schemas.dlq_topic_for(event_type, env=s.env)
    admin = AdminClient({"bootstrap.servers": s.bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=s.kafka_partitions, replication_factor=1,
                                            config={"max.message.bytes": "64"})], operation_timeout=30)
    futures[topic].result(30)
    return topic


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _headers(msg) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in (msg.headers() or [])}


def _committed(s: Settings, group: str, topic: str, partition: int) -> int:
    probe = Consumer({"bootstrap.servers": s.bootstrap_servers, "group.id": group,
                      "enable.auto.commit": False})
    try:
        [tp] = probe.committed([TopicPartition(topic, partition)], timeout=10)
        return tp.offset
    finally:
        probe.close()


def test_a_record_too_big_for_the_dlq_is_dead_lettered_as_a_reference(env: Settings, unique: str,
                                                                       tmp_path: Path) -> None:
    s = env
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    flow = uuid.uuid4()
    key = str(flow).encode()
    # As an attacker would send them: a producer allowed records up to 1 MiB, no compression.
    big_producer = producer_from(s, service="order", fallback=False,
                                 extra_config={"message.max.bytes": 1_048_576, "compression.type": "none"})
    valid = event(correlation_id=flow)
    compact = schemas.encode(valid)
    padded = compact[:-1] + b" " * (BIG - len(compact)) + b"}"  # still a valid event, signed below
    assert len(padded) == BIG and schemas.decode(padded).event_id == valid.event_id
    garbage = os.urandom(BIG)  # unsigned, undecodable
    first = big_producer.publish_raw(topic, key=key, value=padded,
                                     headers=record_headers(valid, padded, big_producer.keyring))
    second = big_producer.publish_raw(topic, key=key, value=garbage,
                                      headers=[("x-cf-event-type", b"order.created")])
    producer = producer_from(s, service="order", fallback=False)
    good = [event(correlation_id=flow) for _ in range(3)]
    deliveries = [producer.publish(e) for e in good]
    assert {d.partition for d in deliveries} == {first.partition, second.partition}  # one partition

    refusing = {"on": True}
    handled: list[uuid.UUID] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if refusing["on"] and envelope.event_id == valid.event_id:
            raise NotFoundError(f"customer of {envelope.event_id} unknown")
        handled.append(envelope.event_id)

    consumer = consumer_from(s, group_id=f"big-{unique}", handlers={"order.created": handler})
    with running(consumer):
        started = time.monotonic()
        wait_until(lambda: {e.event_id for e in good} <= set(handled), timeout=60,
                   what="the good records behind the big ones")
        assert time.monotonic() - started < 60
        letters = read_topic(s, schemas.dlq_topic_for("order.created", env=s.env), expect=2)
        by_class = {_headers(m)["x-cf-dlq-error-class"]: m for m in letters}
        assert set(by_class) == {b"not_found", b"permission"}
        for msg, original in ((by_class[b"not_found"], padded), (by_class[b"permission"], garbage)):
            headers = _headers(msg)
            assert msg.value() == original[:1024]  # the first KiB travels, the rest is in PostgreSQL
            assert headers["x-cf-dlq-value-size"] == str(BIG).encode()
            assert headers["x-cf-dlq-value-sha256"] == hashlib.sha256(original).hexdigest().encode()
            assert int(headers["x-cf-dlq-original-offset"]) in {first.offset, second.offset}
        assert schemas.SIGNATURE_HEADER in _headers(by_class[b"not_found"])  # the original headers kept
        assert _headers(by_class[b"permission"])["x-cf-event-type"] == b"order.created"

        code, output = _cli("dlq", "list", "--json")
        assert code == 0, output
        rows = {row["errorClass"]: row for row in map(json.loads, output.splitlines())}
        assert rows["not_found"]["eventId"] == str(valid.event_id) and rows["not_found"]["valueSize"] == BIG

        # show: the whole value comes back from PostgreSQL (Kafka holds only its first KiB)
        valid_file, garbage_file = tmp_path / "valid.bin", tmp_path / "garbage.bin"
        code, output = _cli("dlq", "show", rows["not_found"]["position"], "--value-file", str(valid_file))
        assert code == 0, output
        detail = json.loads(output)
        assert detail["event"]["eventId"] == str(valid.event_id)
        assert detail["reference"] == {"size": BIG, "sha256": hashlib.sha256(padded).hexdigest(),
                                       "storedIn": "postgresql"}
        assert valid_file.read_bytes() == padded
        code, output = _cli("dlq", "show", rows["permission"]["position"], "--value-file", str(garbage_file))
        assert code == 0, output
        assert "undecodable" in json.loads(output) and garbage_file.read_bytes() == garbage

        # redrive: the full value, decoded and re-signed, goes back to the original topic
        refusing["on"] = False
        code, output = _cli("dlq", "redrive", rows["not_found"]["position"])
        assert code == 0, output
        wait_until(lambda: valid.event_id in handled, timeout=30, what="the redriven big record")
        code, output = _cli("dlq", "redrive", rows["permission"]["position"])
        assert code == 1 and "dlq discard" in output and "Traceback" not in output

    for bad in ("garbage", "a:b:c", f"{topic}.dlq:0:-x"):
        code, output = _cli("dlq", "show", bad)
        assert code == 1 and output.startswith("error:") and len(output.strip().splitlines()) == 1, output


def test_a_record_the_dlq_keeps_refusing_is_parked_then_redriven(env: Settings, unique: str,
                                                                 tmp_path: Path) -> None:
    s = env
    _refusing_dlq(s, "order.created")
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    producer = producer_from(s, service="order", fallback=False)
    flow = uuid.uuid4()
    poison, good = event(correlation_id=flow), [event(correlation_id=flow) for _ in range(3)]
    where = producer.publish(poison)
    for e in good:
        producer.publish(e)
    refusing = {"on": True}
    handled: dict[uuid.UUID, float] = {}
    first_call: list[float] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if envelope.event_id == poison.event_id:
            first_call.append(time.monotonic())
            if refusing["on"]:
                raise NotFoundError(f"customer of {envelope.event_id} unknown")
        handled.setdefault(envelope.event_id, time.monotonic())

    group = f"park-{unique}"
    consumer = consumer_from(s, group_id=group, handlers={"order.created": handler}, retry_policy=ONE_RETRY)
    position = f"{topic}:{where.partition}:{where.offset}"
    with running(consumer):
        wait_until(lambda: {e.event_id for e in good} <= handled.keys(), timeout=60,
                   what="the good records behind the one the DLQ refuses")
        # parked only once dead-lettering had kept failing for the park window
        assert handled[good[0].event_id] - first_call[0] >= PARK_AFTER_S
        health = consumer.health()
        assert health.parked == 1 and health.degraded
        wait_until(lambda: caught_up(s, group, topic), timeout=30, what="the offsets committed past it")

        code, output = _cli("dlq", "parked")
        assert code == 0, output
        [line] = [line for line in output.splitlines() if position in line]
        assert "not_found" in line and f"{len(schemas.encode(poison))} B" in line and "ago" in line
        code, output = _cli("dlq", "parked", "--json")
        [row] = [json.loads(line) for line in output.splitlines()]
        assert row["position"] == position and row["group"] == group and row["status"] == "parked"
        assert "customer of" in row["reason"] and "too large" in row["dlqError"].lower()
        code, output = _cli("dlq", "show", position)
        assert code == 0, output
        assert json.loads(output)["event"]["eventId"] == str(poison.event_id)

        # the worker's heartbeat carries it: `stack status` shows the worker degraded, with the count
        state_dir = tmp_path / "state"
        Heartbeat(state_dir, ["notification"]).beat(True, [consumer.health()])
        [worker] = worker_health(state_dir)
        assert worker.state == "degraded" and "1 parked" in worker.detail

        refusing["on"] = False
        code, output = _cli("dlq", "redrive", position)
        assert code == 0 and "redriven" in output, output
        wait_until(lambda: poison.event_id in handled, timeout=30, what="the redriven parked record")
    code, output = _cli("dlq", "parked", "--json")
    assert code == 0 and output.strip() == ""
    code, output = _cli("dlq", "parked", "--all", "--json")
    assert [json.loads(line)["status"] for line in output.splitlines()] == ["redriven"]
    code, output = _cli("dlq", "redrive", position)
    assert code == 1 and "already redriven" in output and len(output.strip().splitlines()) == 1, output
    code, output = _cli("dlq", "redrive", f"{topic}:{where.partition}:{where.offset + 99}")
    assert code == 1 and output.startswith("error:") and len(output.strip().splitlines()) == 1, output


def test_parking_waits_for_postgresql(env: Settings, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    """With PostgreSQL unreachable a record is not parked (it would be lost): it is retried in place,
    saying so, and nothing is committed past it; a consumer that reaches PostgreSQL parks it."""
    s = env
    _refusing_dlq(s, "order.created")
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    producer = producer_from(s, service="order", fallback=False)
    flow = uuid.uuid4()
    poison, good = event(correlation_id=flow), [event(correlation_id=flow) for _ in range(2)]
    where = producer.publish(poison)
    for e in good:
        producer.publish(e)
    handled: list[uuid.UUID] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if envelope.event_id == poison.event_id:
            raise NotFoundError("refused")
        handled.append(envelope.event_id)

    group = f"nopg-{unique}"
    no_database = s.model_copy(update={"database_url": "postgresql+psycopg://cf:cf@127.0.0.1:1/none"})
    blind = consumer_from(no_database, group_id=group, handlers={"order.created": handler},
                          retry_policy=ONE_RETRY, idempotency=False)
    caplog.set_level(logging.ERROR, logger="messaging.consumer")

    def park_failures() -> int:
        return sum("cannot park" in r.getMessage() for r in caplog.records)

    with running(blind):
        wait_until(lambda: park_failures() >= 3, timeout=60, what="three failed attempts to park")
        assert handled == []  # nothing behind it ran ...
        assert [str(stuck) for stuck in blind.health().stuck] == [
            f"{topic}[{where.partition}]@{where.offset}"]
    assert _committed(s, group, topic, where.partition) <= where.offset  # ... nor committed past it

    sighted = consumer_from(s, group_id=group, handlers={"order.created": handler}, retry_policy=ONE_RETRY)
    with running(sighted):
        wait_until(lambda: {e.event_id for e in good} <= set(handled), timeout=60, what="the good records")
        assert sighted.health().parked == 1
    position = f"{topic}:{where.partition}:{where.offset}"
    code, output = _cli("dlq", "discard", position, "--reason", "a test record")
    assert code == 0 and "discarded parked" in output, output
    code, output = _cli("dlq", "parked", "--all", "--json")
    assert [(row["position"], row["status"]) for row in map(json.loads, output.splitlines())] == [
        (position, "discarded")]


def test_a_partition_stuck_on_one_offset_makes_the_consumer_degraded(env: Settings, unique: str,
                                                                     tmp_path: Path) -> None:
    s = env
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    poison = event()
    where = producer.publish(poison)
    calls: list[float] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        calls.append(time.monotonic())
        raise TransientError("downstream keeps timing out")

    consumer = consumer_from(s, group_id=f"stuck-{unique}", handlers={"order.created": handler},
                             retry_policy=RetryPolicy(retries=10_000, initial=0.2, max=0.2))
    with running(consumer):
        wait_until(lambda: bool(calls), timeout=30, what="the first failure")
        assert not consumer.health().degraded  # failing, but not for long yet
        wait_until(lambda: consumer.health().degraded, timeout=30, what="the consumer to report the stall")
        assert time.monotonic() - calls[0] >= STUCK_AFTER_S
        health = consumer.health()
        [stuck] = health.stuck
        assert (stuck.topic, stuck.partition, stuck.offset) == (where.topic, where.partition, where.offset)
        assert time.time() - stuck.since >= STUCK_AFTER_S and health.parked == 0
        state_dir = tmp_path / "state"
        Heartbeat(state_dir, ["billing"]).beat(True, [health])
        [worker] = worker_health(state_dir)
        assert worker.state == "degraded"
        assert f"{where.topic}[{where.partition}]@{where.offset}" in worker.detail


def test_stack_status_shows_a_stuck_then_parking_worker_degraded(env: Settings, unique: str,
                                                                  tmp_path: Path) -> None:
    """A real `cloud-factory worker provisioning` process: an unsigned record whose DLQ topic refuses
    it holds its partition (degraded: stuck), then is parked (degraded: 1 parked)."""
    s = env
    _refusing_dlq(s, "order.provisioning-started")
    ensure(s, "order.provisioning-started", "order.cancelled")
    worker_env = {**os.environ, "CF_CONSUMER_REPLICAS": "1", "CF_WORKER_GROUP_SUFFIX": f"-{unique}",
                  "CF_DLQ_PARK_AFTER_S": "15"}
    process = start_workers(s, worker_env, "provisioning")
    try:
        producer = producer_from(s, fallback=False)  # re-publishes bytes as they are: signs nothing
        producer.publish_raw(schemas.topic_for("order.provisioning-started", env=s.env), key=b"k",
                             value=b'{"forged": true}', headers=[])

        def row():  # type: ignore[no-untyped-def]
            return next((w for w in worker_health(s.state_dir) if w.pid == process.pid), None)

        wait_until(lambda: (r := row()) is not None and r.state == "degraded" and "stuck" in r.detail,
                   timeout=60, what="the worker to show its stuck partition")
        wait_until(lambda: (r := row()) is not None and r.state == "degraded" and "1 parked" in r.detail,
                   timeout=90, what="the worker to show the parked record")
        status = subprocess.run([CLI, "stack", "status"], env={**os.environ, "COLUMNS": "250"},
                                capture_output=True, text=True, timeout=120)
        [line] = [line for line in status.stdout.splitlines() if str(process.pid) in line]
        assert "degraded" in line and "1 parked" in line, status.stdout
    finally:
        stop_workers(process)
