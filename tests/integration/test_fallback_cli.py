"""`cloud-factory fallback status | replay` on the real broker: status counts what waits (exit 1 while
anything does), replay re-publishes it in order with key and headers intact, moves an unreadable line
to `.failed`, and leaves the spool empty (status exit 0); `stack status` shows the same backlog."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import schemas
from core.settings import Settings
from messaging.fallback.spool import FallbackSpool, SpooledRecord
from messaging.producer import record_headers
from messaging.wiring import keyring_from
from tests.support.messaging_support import event, isolated, read_topic
from tests.support.worker_process import CLI

pytestmark = pytest.mark.stack


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "fallback", *args], env=env, capture_output=True, text=True, timeout=120)


def test_status_and_replay_drain_the_spool_in_order(stack, settings: Settings, unique: str,
                                                    tmp_path: Path) -> None:
    s = isolated(settings, unique)
    keyring = keyring_from(s, "order")
    topic = schemas.topic_for("order.created", env=s.env)
    flows = [uuid.uuid4() for _ in range(4)]
    events = [event(correlation_id=flows[i % 4]) for i in range(24)]
    records = []
    for envelope in events:
        value = schemas.encode(envelope)
        records.append(SpooledRecord(topic, str(envelope.correlation_id).encode(), value,
                                     record_headers(envelope, value, keyring)))
    spool = FallbackSpool(tmp_path)
    spool.append(records[:10])
    day_file = spool.append(records[10:])
    with open(day_file, "ab") as handle:
        handle.write(b'{"not": "a spooled record"}\n')
    env = {**os.environ, "CF_ENV": s.env, "CF_FALLBACK_DIR": str(tmp_path)}

    waiting = _cli("status", env=env)
    assert (waiting.returncode == 1
            and "25 pending record(s)" in waiting.stdout), waiting.stdout + waiting.stderr
    assert "backlog: fallback spool 25 pending" in _stack_status(env)

    replayed = _cli("replay", env=env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed 24 record(s); 1 moved to .failed; spool empty" in replayed.stdout

    arrived = read_topic(s, topic, expect=24)
    assert len(arrived) == 24
    for flow in flows:  # per correlation id (= key = partition) in the order they were spooled
        sent = [str(e.event_id) for e in events if e.correlation_id == flow]
        got = [str(schemas.decode(m.value()).event_id) for m in arrived if m.key() == str(flow).encode()]
        assert got == sent
    assert all(keyring.verify(m.value(), m.headers()).ok for m in arrived)  # headers intact

    drained = _cli("status", env=env)
    assert drained.returncode == 0, drained.stdout
    assert "0 pending record(s)" in drained.stdout and "1 failed line(s)" in drained.stdout
    backlog = _stack_status(env)
    assert "backlog: fallback spool 0 pending, 1 failed line(s); identity outbox " in backlog
    assert all(f"{service} outbox " in backlog for service in ("product", "support", "notification"))


def _stack_status(env: dict[str, str]) -> str:
    """`stack status` output on one line (rich wraps it at the terminal width)."""
    run = subprocess.run([CLI, "stack", "status"], env={**env, "COLUMNS": "300"}, capture_output=True,
                         text=True, timeout=60)
    return run.stdout.replace("\n", " ")
