"""Quiet, structured logs under faults, on real servers of the test's own.

A `cloud-factory worker billing` process (three consumers, their DLQ producer, Billing's producer
and the admin client) on a private broker: the broker is killed for ~30 s and started again. While
it is away the worker writes a few dozen lines at most — each a JSON line, the Kafka client's ones
naming the client, no traceback, no ANSI escape — and afterwards it serves an event published after
the restart. (Not `worker all`: its outbox relays would publish other tests' pending rows of the
shared database to the private broker.) A client of a private Temporal server that is killed likewise logs the
SDK core's complaints as JSON lines, never as coloured plain text.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import schemas
from cloud_factory.stack.kafka import KafkaComponent
from cloud_factory.stack.temporal import TemporalComponent
from core.settings import Settings
from messaging.wiring import producer_from
from schemas.examples import example_data
from services.order.flow import read_flow
from tests.support.messaging_support import wait_until
from tests.support.private_broker import start_broker
from tests.support.worker_process import CLI, isolation_env, stop_workers
from workers.heartbeat import read_heartbeats

pytestmark = pytest.mark.stack

OUTAGE_S = 30
MAX_OUTAGE_LINES = 40
ANSI = "\x1b["


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lines(path: Path, start: int = 0, end: int | None = None) -> list[str]:
    data = path.read_bytes()[start:end]
    return [line for line in data.decode(errors="replace").splitlines() if line.strip()]


def _check_structured(lines: list[str]) -> list[dict[str, object]]:
    """Every line a JSON object; the Kafka client's lines name their client; no traceback, no ANSI."""
    parsed = []
    for line in lines:
        assert ANSI not in line, f"ANSI escape in {line!r}"
        assert "Traceback" not in line, f"traceback text in {line!r}"
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(record, dict) and "message" in record, line
        if record.get("logger") == "cloud_factory.kafka":
            assert record.get("client"), f"no client name in {line!r}"
        parsed.append(record)
    return parsed


def _payment_confirmed(tenant_id: str, correlation_id: uuid.UUID) -> schemas.Envelope:
    """A confirmed payment of an order and payment of their own (the example's ids are taken)."""
    entry = schemas.catalog.require("order.payment-confirmed")
    data = {**example_data("order.payment-confirmed", entry.latest_version), "orderId": str(uuid.uuid4()),
            "paymentId": str(uuid.uuid4())}
    return schemas.new_event("order.payment-confirmed", data, tenant_id=tenant_id,
                             correlation_id=correlation_id,
                             actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
                             producer=schemas.producer_name(entry.publisher))


def _start_worker(s: Settings, env: dict[str, str], stderr: Path) -> subprocess.Popen:
    with stderr.open("wb") as sink:
        process = subprocess.Popen([CLI, "worker", "billing"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=sink)
    deadline = time.monotonic() + 90
    while not any(beat.pid == process.pid for beat in read_heartbeats(s.state_dir)):
        assert process.poll() is None, f"the worker died on start: {_lines(stderr)[-20:]}"
        assert time.monotonic() < deadline, "the worker never wrote its heartbeat"
        time.sleep(0.3)
    return process


def test_a_broker_outage_gives_a_few_structured_lines_and_the_worker_recovers(
        private_broker: tuple[Settings, KafkaComponent], unique: str, tmp_path: Path) -> None:
    s, kafka = private_broker
    prefix = f"q{unique}-"
    env = {**isolation_env(unique, prefix), "CF_STATE_DIR": str(s.state_dir), "CF_ENV": s.env,
           "CF_KAFKA_PORT": str(s.kafka_port), "CF_KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
           "CF_FALLBACK_DIR": str(s.spool_dir), "CF_SIGNING_KEYS_FILE": str(s.signing_keys_file)}
    stderr = tmp_path / "worker.stderr"
    process = _start_worker(s, env, stderr)
    try:
        time.sleep(3)  # the consumers joined their groups
        before = stderr.stat().st_size
        pid = kafka.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the broker dies without a goodbye
        wait_until(lambda: not kafka.probe(), timeout=20, what="the broker to be gone")
        time.sleep(OUTAGE_S)
        assert process.poll() is None, "the worker died during the outage"
        during = stderr.stat().st_size
        start_broker(kafka)

        outage = _lines(stderr, before, during)
        _check_structured(outage)
        assert len(outage) <= MAX_OUTAGE_LINES, (
            f"{len(outage)} lines during a {OUTAGE_S} s outage; the first ones: {outage[:10]}")
        assert any('"cloud_factory.kafka"' in line for line in outage), "the outage was not even mentioned"

        # Back: an order's confirmed payment published now is handled by Billing in the worker.
        correlation_id = uuid.uuid4()
        since_ms = int(time.time() * 1000) - 1000
        producer_from(s, service="order", fallback=False).publish(
            _payment_confirmed(f"{prefix}tenant", correlation_id), timeout=60)
        answers = ["billing.payment-captured", "billing.payment-failed"]
        wait_until(lambda: bool(read_flow(s, str(correlation_id), answers, since_ms)), timeout=120,
                   what="Billing to answer the payment published after the restart")
        assert process.poll() is None
    finally:
        stop_workers(process)
    _check_structured(_lines(stderr))


@pytest.fixture
def private_temporal(stack, settings: Settings, tmp_path: Path) -> Iterator[TemporalComponent]:
    own = settings.model_copy(update={"state_dir": tmp_path / "state", "temporal_port": _free_port(),
                                      "temporal_ui_port": _free_port()})
    temporal = TemporalComponent(own)
    temporal.prepare()
    temporal.launch()
    wait_until(temporal.probe, timeout=90, what=f"the private Temporal server (see {temporal.log_path})")
    try:
        yield temporal
    finally:
        temporal.stop()


CLIENT_OF_A_DYING_SERVER = """
import asyncio, sys
from core.logs import configure_logging
from core.temporal import connect

configure_logging()

async def main():
    client = await connect(sys.argv[1])
    print("connected", flush=True)
    sys.stdin.readline()  # the server is killed now
    for _ in range(6):
        try:
            await asyncio.wait_for(client.count_workflows(), 3)
        except Exception:
            pass

asyncio.run(main())
"""


def test_temporal_core_logs_are_json_lines(private_temporal: TemporalComponent, tmp_path: Path) -> None:
    """A client whose server is killed: the core's retry warnings come out as JSON lines on stderr, no
    ANSI (the core would write coloured text to stdout)."""
    stderr = tmp_path / "client.stderr"
    with stderr.open("wb") as sink:
        client = subprocess.Popen([sys.executable, "-c", CLIENT_OF_A_DYING_SERVER,
                                   private_temporal.settings.temporal_target],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink,
                                  env={**os.environ, "FORCE_COLOR": "1"})
    try:
        assert client.stdout is not None and client.stdin is not None
        assert client.stdout.readline().strip() == b"connected", _lines(stderr)
        pid = private_temporal.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        client.stdin.write(b"go\n")
        client.stdin.flush()
        rest = client.stdout.read()  # (the core's own console output went to stdout)
        client.wait(120)
    finally:
        if client.poll() is None:
            client.kill()
    lines = _lines(stderr) + [line for line in rest.decode(errors="replace").splitlines() if line.strip()]
    core = [r for r in _check_structured(lines) if r.get("logger") == "cloud_factory.temporal"]
    assert core, f"the core logged nothing about the lost server: {lines[:10]}"
    assert all(r.get("facility") for r in core), core
