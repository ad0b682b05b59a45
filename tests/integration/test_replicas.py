"""Replicas that rebalance quietly, as real `cloud-factory worker` processes on the real stack.

Three Notification replicas share one consumer group over six partitions while a stream of events
over many flows arrives. One replica is stalled inside a batch past its max poll interval (the test
holds the flow's advisory lock its handler waits for), so the group hands its partitions on and its
commit is refused once it finishes; then one replica is killed -9, one is added, one stopped with
SIGTERM. Every event's messages exist exactly once, every report is queued once, the stalled batch's
redelivery is skipped by its idempotency key, and the logs of the processes that were not killed
hold no traceback and no error: the refused commit is one INFO line. (Three saga-worker replicas
losing one to SIGKILL mid-saga: `test_saga_replicas`.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

import schemas
from core.db import engine_for
from core.settings import Settings
from messaging.wiring import producer_from
from services.notification.tables import mail_log, notifications, outbox
from tests.support.messaging_support import caught_up, ensure, event, isolated, wait_until
from tests.support.worker_process import (
    isolation_env,
    launch_workers,
    log_count,
    log_problems,
    start_workers,
    stop_workers,
    wait_healthy,
)

pytestmark = pytest.mark.stack

FLOWS = 300
EVENTS = 1500  # five per flow: a few first, then a stream while the replicas come and go
FIRST = 200  # published before the stall
LAST = 200  # the stream's last events, published once the last replica has left: it never ends early
CHANNELS = 2  # email and in-app: two messages per event
# The replicas' max.poll.interval.ms: short enough to stall past, long enough that a loaded machine's
# ordinary batches stay inside it (at 8 s, under a load of 10 on two cores, the group churned for good).
MAX_POLL_MS = 20000
STALL_S = 26.0  # how long the test holds the stalled flow's lock: past MAX_POLL_MS
REFUSED = "commit refused by a rebalance"


def _publish_stream(s: Settings, prefix: str, sent: list[schemas.Envelope], done: threading.Event,
                    go: threading.Event, finish: threading.Event) -> None:
    """FIRST events at once; the stream when `go` is set, its LAST events when `finish` is."""
    producer = producer_from(s, service="order", fallback=False)
    flows = [uuid.uuid4() for _ in range(FLOWS)]
    try:
        for index in range(EVENTS):
            if index in (FIRST, EVENTS - LAST):
                producer.flush()
                (go if index == FIRST else finish).wait(180)
            envelope = event(correlation_id=flows[index % FLOWS], tenant_id=f"{prefix}acme")
            producer.send(envelope)
            sent.append(envelope)
            if index > FIRST and index % 100 == 99:
                producer.flush()
                time.sleep(1.5)  # a stream, not a burst: the replicas come and go while it flows
        producer.flush()
    finally:
        done.set()


def _stall_one_replica(s: Settings, engine, prefix: str) -> schemas.Envelope:
    """Publish one event of a flow whose advisory lock the test holds, so the replica handling it
    waits inside its batch; keep it there past its max poll interval, then let it finish."""
    flow = uuid.uuid4()
    envelope = event(correlation_id=flow, tenant_id=f"{prefix}acme")
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"notification/{flow}"})
        try:
            producer = producer_from(s, service="order", fallback=False)
            producer.send(envelope)
            producer.flush()
            wait_until(lambda: _waiting_on_advisory_locks(engine) > 0, timeout=30,
                       what="a replica waiting for the stalled flow")
            time.sleep(STALL_S)  # the stall itself: the group drops the waiting replica meanwhile
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"notification/{flow}"})
            conn.commit()
    return envelope


def _waiting_on_advisory_locks(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                            ).scalar_one()


def test_notification_replicas_killed_added_stopped(stack, settings: Settings, unique: str,
                                                     tmp_path: Path) -> None:
    prefix = f"r{unique}-"
    s = isolated(settings, unique, kafka_partitions=6)
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    group = f"notification-proc-{unique}"
    env = {**isolation_env(unique, prefix), "CF_ENV": s.env, "CF_KAFKA_PARTITIONS": "6",
           "CF_KAFKA_MAX_POLL_INTERVAL_MS": str(MAX_POLL_MS)}
    engine = engine_for(s.dsn)
    logs = {name: tmp_path / f"{name}.log" for name in ("killed", "stopped", "kept", "added")}
    processes: dict[str, subprocess.Popen] = {}

    def handled() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(notifications)
                                .where(notifications.c.tenant_id == f"{prefix}acme")).scalar_one()

    sent: list[schemas.Envelope] = []
    published, go, finish = threading.Event(), threading.Event(), threading.Event()
    try:
        for name in ("killed", "stopped", "kept"):
            processes[name] = launch_workers(env, "notification", log=logs[name])
        for process in processes.values():
            wait_healthy(s, process)
        publisher = threading.Thread(target=_publish_stream, args=(s, prefix, sent, published, go, finish),
                                     daemon=True)
        publisher.start()

        wait_until(lambda: handled() >= FIRST * CHANNELS, timeout=90, what="the first events handled")
        stalled = _stall_one_replica(s, engine, prefix)

        def refused_by() -> list[str]:  # a refusal, or (before it was one) a failed batch
            return [name for name in ("killed", "stopped", "kept")
                    if log_count(logs[name], REFUSED) or log_count(logs[name], "failed as a whole")]

        wait_until(lambda: bool(refused_by()), timeout=60, what="the stalled replica's commit refused")
        refused = refused_by()  # the stalled one; under load a slow batch elsewhere may join it
        if refused == ["killed"]:  # kill another: a log that shows a refusal must survive
            logs["killed"], logs["kept"] = logs["kept"], logs["killed"]
            processes["killed"], processes["kept"] = processes["kept"], processes["killed"]
        go.set()  # the stream; the replicas come and go while it flows
        mark = FIRST + 1
        wait_until(lambda: handled() >= (mark + 150) * CHANNELS, timeout=90, what="150 more events handled")
        os.kill(processes["killed"].pid, signal.SIGKILL)
        processes["killed"].wait(10)
        with engine.connect() as conn:
            killed_at = conn.execute(select(func.now())).scalar_one()
        wait_until(lambda: handled() >= (mark + 400) * CHANNELS, timeout=90, what="400 more events handled")
        processes["added"] = start_workers(s, env, "notification", log=logs["added"])
        wait_until(lambda: handled() >= (mark + 700) * CHANNELS, timeout=90, what="700 more events handled")
        stop_workers(processes["stopped"])
        assert processes["stopped"].returncode == 0
        finish.set()  # the stream's last events, for the two replicas left

        publisher.join(120)
        assert published.is_set() and len(sent) == EVENTS
        wait_until(lambda: handled() >= (EVENTS + 1) * CHANNELS and caught_up(s, group, topic), timeout=240,
                   what="every event handled and committed")
    finally:
        go.set()
        finish.set()
        stop_workers(*processes.values())

    sent.append(stalled)
    event_ids = {e.event_id for e in sent}
    with engine.connect() as conn:
        per_event = dict(conn.execute(
            select(notifications.c.event_id, func.count()).where(notifications.c.tenant_id == f"{prefix}acme")
            .group_by(notifications.c.event_id)).all())
        reports = conn.execute(select(outbox.c.event_type, func.count()).group_by(outbox.c.event_type)
                               .where(outbox.c.key.in_({str(e.correlation_id).encode() for e in sent}))).all()
        mails = conn.execute(
            select(mail_log.c.reference, func.count(), func.min(mail_log.c.accepted_at))
            .where(mail_log.c.reference.in_([f"{e.event_id}/email" for e in sent]))
            .group_by(mail_log.c.reference)).all()
    # 0 lost, 0 duplicated: two messages per event, each event's reports queued once.
    assert set(per_event) == event_ids
    assert {n for n in per_event.values()} == {CHANNELS}
    assert dict(reports) == {"notification.sent": (EVENTS + 1) * CHANNELS}
    # Every email went out; a second copy only of one the killed replica's relay had accepted before
    # the kill, whose transaction it never committed (the documented at-least-once window of mail).
    assert len(mails) == EVENTS + 1
    assert [m for m in mails if m[1] > 1 and m[2] >= killed_at] == []
    # The processes that were not killed logged no traceback and no error for the rebalances.
    for name in ("stopped", "kept", "added"):
        assert log_problems(logs[name]) == [], f"{name} replica's log"
    # The stalled replica's refusal is one INFO line; the stalled record, handled by it and
    # redelivered to its partition's new owner, was skipped there by its idempotency key.
    refusals = [json.loads(line)["level"] for name in ("stopped", "kept", "added")
                for line in logs[name].read_text().splitlines() if REFUSED in line]
    assert refusals and set(refusals) == {"info"}
    assert sum(log_count(logs[name], f"duplicate {stalled.event_id}") for name in logs) >= 1

