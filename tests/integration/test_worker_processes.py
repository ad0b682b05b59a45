"""`cloud-factory worker KIND --processes N` on the real stack: one supervisor, N worker processes in
one consumer group, each event handled once, a child killed -9 replaced, the whole set stopped by
one SIGTERM — or taken along when the supervisor itself is killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

import schemas
from cloud_factory.stack._process import children_of, pid_alive
from core.db import engine_for
from core.settings import Settings
from messaging.groups import assignment
from messaging.wiring import producer_from
from services.notification.tables import notifications
from tests.support.messaging_support import caught_up, ensure, event, isolated, wait_until
from tests.support.worker_process import CLI, isolation_env, log_problems
from workers.heartbeat import read_heartbeats

pytestmark = pytest.mark.stack

CHANNELS = 2  # email and in-app: two messages per event


def _children(s: Settings, supervisor: subprocess.Popen, kind: str) -> set[int]:
    """The pids of `supervisor`'s children that beat healthy as `kind` workers."""
    children = children_of(supervisor.pid)
    return {beat.pid for beat in read_heartbeats(s.state_dir)
            if beat.kinds == [kind] and beat.healthy and beat.pid in children}


def _supervise(env: dict[str, str], kind: str, processes: int, log: Path) -> subprocess.Popen:
    with log.open("ab") as sink:
        return subprocess.Popen([CLI, "worker", kind, "--processes", str(processes)], env=env,
                                stdout=subprocess.DEVNULL, stderr=sink)


def _publish(s: Settings, tenant: str, count: int, flows: int = 60) -> list[schemas.Envelope]:
    producer = producer_from(s, service="order", fallback=False)
    keys = [uuid.uuid4() for _ in range(flows)]
    sent = [event(correlation_id=keys[i % flows], tenant_id=tenant) for i in range(count)]
    for envelope in sent:
        producer.send(envelope)
    producer.flush()
    return sent


def _split(s: Settings, group: str, covering: set[tuple[str, int]] = frozenset()) -> bool:
    """Two members, each assigned partitions of its own, together `covering` (a partition moving
    between them is revoked by one before it is assigned to the other)."""
    members = [{(topic, p) for topic, partitions in member.items() for p in partitions}
               for member in assignment(s.bootstrap_servers, group, timeout=20)]
    return (len(members) == 2 and all(members) and not members[0] & members[1]
            and covering <= members[0] | members[1])


def test_two_notification_processes_share_the_group_and_survive_a_killed_child(
        stack, settings: Settings, unique: str, tmp_path: Path) -> None:
    prefix = f"p{unique}-"
    tenant = f"{prefix}acme"
    s = isolated(settings, unique, kafka_partitions=6)
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    group = f"notification-proc-{unique}"
    env = {**isolation_env(unique, prefix), "CF_ENV": s.env, "CF_KAFKA_PARTITIONS": "6"}
    engine = engine_for(s.dsn)
    log = tmp_path / "supervisor.log"

    def handled() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(notifications)
                                .where(notifications.c.tenant_id == tenant)).scalar_one()

    supervisor = _supervise(env, "notification", 2, log)
    try:
        wait_until(lambda: len(_children(s, supervisor, "notification")) == 2, timeout=90,
                   what="two notification processes beating")
        first = _children(s, supervisor, "notification")
        # Both processes are members of the one group, the partitions split between them.
        wait_until(lambda: _split(s, group, {(topic, p) for p in range(6)}), timeout=90,
                   what="the group's partitions split between two members, the topic's all assigned")
        sent = _publish(s, tenant, 300)
        wait_until(lambda: handled() >= 300 * CHANNELS and caught_up(s, group, topic), timeout=120,
                   what="the first 300 events handled and committed")

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(_children(s, supervisor, "notification") - first) == 1, timeout=90,
                   what="the killed process replaced")
        sent += _publish(s, tenant, 300)
        # Caught up with no record after these: partitions a survivor kept through the rebalance
        # were committed again where a rebalance had refused their commit.
        wait_until(lambda: handled() >= 600 * CHANNELS and caught_up(s, group, topic), timeout=180,
                   what="the next 300 events handled and committed")
        children = _children(s, supervisor, "notification")
        assert len(children) == 2 and victim not in children
    finally:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(90)
    assert code == 0
    with engine.connect() as conn:
        per_event = dict(conn.execute(select(notifications.c.event_id, func.count())
                                      .where(notifications.c.tenant_id == tenant)
                                      .group_by(notifications.c.event_id)).all())
    assert set(per_event) == {e.event_id for e in sent}  # 0 lost
    assert set(per_event.values()) == {CHANNELS}  # 0 doubled
    # Every child stopped gracefully (its heartbeat cleared), none is left running.
    assert not [beat for beat in read_heartbeats(s.state_dir) if beat.pid in first | children]
    text = log.read_text()
    assert f"(pid {victim}) exited unasked, exit code -9; starting it again in 1 s" in text
    assert text.count("stopped, exit code 0") == 2
    assert log_problems(log) == []


def test_a_supervisor_killed_hard_takes_its_saga_workers_along(stack, settings: Settings, unique: str,
                                                               tmp_path: Path) -> None:
    env = isolation_env(unique, f"k{unique}-")
    log = tmp_path / "supervisor.log"
    supervisor = _supervise(env, "saga", 2, log)
    try:
        wait_until(lambda: len(_children(settings, supervisor, "saga")) == 2, timeout=90,
                   what="two saga processes beating")
        children = _children(settings, supervisor, "saga")
    finally:
        supervisor.kill()
        supervisor.wait(10)

    wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=30,
               what="the orphaned saga workers to stop")
    # They stopped gracefully on the kernel's SIGTERM: each cleared its heartbeat.
    assert not [beat for beat in read_heartbeats(settings.state_dir) if beat.pid in children]
    time.sleep(0.5)
    assert log_problems(log) == []
