"""SIGKILL PostgreSQL mid-flow, start it again: nothing is lost, nothing is doubled, and the workers'
log blames the database, not Kafka.

A PostgreSQL server of this test's own (own cluster and port; the shared one is never touched)
serves a real `cloud-factory worker all` subprocess: the saga's consumers (bridge, Billing,
Provisioning, Notification with its transactional outbox) and every outbox relay. Temporal and Kafka
are the session's. Three orders are placed, the server is killed with SIGKILL (postmaster and every
backend) while they are in flight, three more are placed during the outage, and after the outage
the server is started again on the same data directory (crash recovery). Every order must be
delivered; Billing captures, records and invoices each once; Notification writes one message per
event and channel for every order alike, each reported once in its outbox, all published (the relay
resumed) and on Kafka. While the server is down, the worker's relay and consumer lines name the
database (host:port) in one line without a traceback, and none claims Kafka is to blame; a handler
that cannot reach the database waits in place without spending its retries (nothing is
dead-lettered or parked).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

import schemas
from cloud_factory.stack.postgres import PostgresComponent
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from messaging.tables import parked
from schemas import Service
from services.billing.tables import invoices, ledger, payments, psp_operations
from services.notification.tables import notifications, outbox
from services.order.api import new_order, place_order
from services.order.flow import read_dlq, read_flow
from tests.support.private_postgres import crash_server, start_server
from tests.support.rows import rows_per_order
from tests.support.saga_harness import fast_timings
from tests.support.worker_process import isolation_env, start_workers, stop_workers
from workflows.order_fulfillment import OrderFulfillmentWorkflow

pytestmark = pytest.mark.stack

BEFORE, DURING = 3, 3  # orders placed before the crash, and while the server is down
OUTAGE_S = 12  # several relay attempts (every 2 s) and consumer batches fail meanwhile
RECOVERY_LIMIT_S = 120
WORKER_LOGGERS = ("messaging.outbox.relay", "messaging.consumer.runtime", "messaging.consumer.deadlettering")


def _log_lines(path: Path, since: float, until: float) -> list[dict]:
    """The worker's JSON lines of the relay and the consumer runtime logged in [since, until]."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # a line of a library that does not log through ours
        if not isinstance(line, dict) or line.get("logger") not in WORKER_LOGGERS:
            continue
        at = dt.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
        if since <= at <= until:
            lines.append(line)
    return lines


async def test_postgres_sigkilled_mid_flow_and_restarted(
    private_postgres: tuple[Settings, PostgresComponent], settings: Settings, unique: str, tmp_path: Path
) -> None:
    own, postgres = private_postgres
    engine = engine_for(own.dsn)
    address = f"{own.host}:{own.pg_port}"
    env = {**isolation_env(unique, f"p{unique}-"), "CF_PG_PORT": str(own.pg_port)}
    worker_log = tmp_path / "worker.log"
    since_ms = int(time.time() * 1000) - 1000
    timings = fast_timings()
    timings.provisioning_timeout_s = 180  # the outage must not time the provisioning out
    orders = [new_order(f"p{unique}-{n}", "vm-standard-2", timings=timings) for n in range(BEFORE + DURING)]
    workers = start_workers(own, env, log=worker_log)
    try:
        client = await connect_client(own)
        placed = [await place_order(client, order, task_queue=env["CF_ORDER_TASK_QUEUE"])
                  for order in orders[:BEFORE]]
        await asyncio.sleep(1.0)  # their events are being handled: payments, resources, messages
        await asyncio.to_thread(crash_server, postgres)
        down_at = time.time()
        placed += [await place_order(client, order, task_queue=env["CF_ORDER_TASK_QUEUE"])
                   for order in orders[BEFORE:]]
        await asyncio.sleep(OUTAGE_S - (time.time() - down_at))
        assert workers.poll() is None, f"the worker process died with the database; see {worker_log}"
        up_at = time.time()
        await asyncio.to_thread(start_server, postgres)  # same data directory: crash recovery
        results = await asyncio.wait_for(asyncio.gather(*(
            client.get_workflow_handle_for(OrderFulfillmentWorkflow.run, p.order.workflow_id).result()
            for p in placed)), RECOVERY_LIMIT_S)
        # The relays resumed: Notification's outbox empties (its reports of the last events included).
        deadline = time.monotonic() + 30
        while (pending := _pending(engine)) or len({frozenset(c.items()) for c in _told(engine, orders)}) > 1:
            assert time.monotonic() < deadline, (
                f"{pending} outbox row(s) unpublished; messages per order: {_told(engine, orders)}")
            await asyncio.sleep(0.5)
    finally:
        stop_workers(workers)

    assert [r.status for r in results] == ["delivered"] * len(orders), results
    # No record of the run was given up on: none dead-lettered, none parked (a database outage is no
    # fault of the record's, so it spends no retries).
    dead = [(topic, headers.get("x-cf-dlq-original"), headers.get("x-cf-dlq-group"))
            for topic, _, headers in await asyncio.to_thread(read_dlq, own, _consumed_types(), since_ms)
            if headers.get("x-cf-dlq-group", "").endswith(env["CF_WORKER_GROUP_SUFFIX"])]
    assert dead == [], dead
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(parked)).scalar_one() == 0
    order_ids = [uuid.UUID(order.order_id) for order in orders]
    one_each = dict.fromkeys(order_ids, 1)
    # Billing: one payment, one capture at the gateway (no unique key there: a second would show),
    # one invoice, one ledger line of each kind.
    assert rows_per_order(engine, payments, order_ids, payments.c.status == "captured") == one_each
    assert rows_per_order(engine, psp_operations, order_ids, psp_operations.c.kind == "capture") == one_each
    assert rows_per_order(engine, invoices, order_ids) == one_each
    assert rows_per_order(engine, ledger, order_ids, ledger.c.kind == "capture") == one_each
    assert rows_per_order(engine, ledger, order_ids, ledger.c.kind == "invoice") == one_each
    # Notification: the same messages for every order (none lost), each once, each reported once.
    with engine.connect() as conn:
        told = conn.execute(select(notifications.c.event_id)).all()
        reports = conn.execute(select(outbox.c.event_id, outbox.c.key, outbox.c.event_type,
                                      outbox.c.published_at)).all()
    by_order = _told(engine, orders)
    assert by_order[0] and set(by_order[0].values()) == {1}, by_order[0]
    assert all(kinds == by_order[0] for kinds in by_order), by_order
    assert len(reports) == len(told) == sum(len(kinds) for kinds in by_order)
    assert all(r.published_at is not None for r in reports)
    # Every report is on Kafka (a re-sent one carries the same event id).
    for order in orders:
        mine = {r.event_id for r in reports if r.key == order.correlation_id.encode()}
        types = sorted({r.event_type for r in reports})
        records = await asyncio.to_thread(read_flow, own, order.correlation_id, types, since_ms)
        assert mine and {str(r.envelope.event_id) for r in records} == mine, order.workflow_id

    # While the server was down, the relays and consumers said so, naming it, in one line each.
    outage = _log_lines(worker_log, down_at, up_at + 1)
    relay = [line for line in outage if line["logger"] == "messaging.outbox.relay"]
    batch = [line for line in outage if line["logger"] == "messaging.consumer.runtime"
             and "failed as a whole" in line["message"]]
    held = [line for line in outage if line["logger"] == "messaging.consumer.deadlettering"]
    assert relay and batch, f"no relay or consumer line during the outage; see {worker_log}"
    for line in relay + batch:
        assert f"database at {address}" in line["message"], (line["message"],
                                                             str(line.get("exception"))[-1500:])
    for line in outage:
        assert line.get("exception") is None, line["message"]
    assert all("the database is unreachable" in line["message"] for line in held), held
    for line in outage:
        message = line["message"].lower()
        assert "kafka" not in message and "broker" not in message and "unacknowledged" not in message, (
            line["message"])


def _pending(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)
                                .where(outbox.c.published_at.is_(None))).scalar_one())


def _told(engine, orders) -> list[Counter]:
    """Per order: how many messages of each (event type, channel) Notification wrote."""
    with engine.connect() as conn:
        told = conn.execute(select(notifications.c.correlation_id, notifications.c.event_type,
                                   notifications.c.channel)).all()
    return [Counter((r.event_type, r.channel) for r in told if str(r.correlation_id) == o.correlation_id)
            for o in orders]


def _consumed_types() -> list[str]:
    """Every event type the saga's consumers (bridge, Billing, Provisioning, Notification) read."""
    services = (Service.ORDER, Service.BILLING, Service.PROVISIONING, Service.NOTIFICATION)
    return sorted({entry.event_type for service in services
                   for entry in schemas.catalog.subscriptions(service)})
