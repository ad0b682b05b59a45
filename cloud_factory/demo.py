"""The main job: about 20 orders across 3 tenants through the real stack, some set up to fail.

Every worker runs inside this process (saga worker, bridge, Provisioning, Billing, Notification,
Identity's outbox relay and the HTTP API), serving the demo tenants only. Each tenant gets an API key
created through Identity (it reaches the API only as an event), and every order is placed — and the
customer's cancel sent — through the HTTP API with that key. Orders are placed concurrently with
failures injected (declined
payment, provisioning failing at each step, a flaky provider, a refund that cannot be paid, a
customer cancel); `watch` reports each saga's status until all have finished; the summary reads the
flows back from Kafka (events per type, DLQ) and replays a few records to show deduplication.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

import schemas
from cloud_factory.faults import arm_failure
from cloud_factory.front_door import FrontDoor, IssuedKey
from core.db import engine_for
from core.settings import Settings
from core.tracing import configure_tracing
from messaging import TopicReader
from messaging.metrics import METRICS
from messaging.wiring import ensure_catalog_topics, producer_from
from services.common import TenantScope
from services.notification.tables import notifications
from services.order.api import PlacedOrder, new_order, wait_for_outcome
from services.order.flow import read_dlq, read_flow
from services.provisioning.simulator import inject_fault
from workers.inprocess import InProcessWorkers
from workflows.contracts import OrderSnapshot, PublishedEvent
from workflows.order_fulfillment import OrderFulfillmentWorkflow

__all__ = [
    "DEMO_PLAN",
    "DemoOrder",
    "DemoSummary",
    "read_record",
    "run_demo",
    "ui_link",
    "wait_for_notifications",
]

TENANTS = ("demo-acme", "demo-globex", "demo-initech")
PLANS = ("vm-small-1", "vm-standard-2", "vm-large-4")
# What happens to each of the 20 orders: None = the happy path.
DEMO_PLAN: tuple[str | None, ...] = (
    None,
    None,
    "vps",
    None,
    "payment",
    None,
    "transient",
    None,
    "disk",
    None,
    "cancel",
    None,
    "refund",
    None,
    "network",
    None,
    "payment",
    None,
    "vps",
    None,
)


@dataclass
class DemoOrder:
    placed: PlacedOrder
    scenario: str
    status: str = "starting"
    step: str = "-"
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    incident_id: str | None = None  # the incident it waits on for a person (its undo failed)


@dataclass
class DemoSummary:
    orders: list[DemoOrder]
    outcomes: Counter
    events_per_type: Counter
    dlq: int
    duplicates_suppressed: int
    notifications: int
    elapsed_s: float
    ui_url: str
    actors: Counter = field(default_factory=Counter)  # who placed the orders: order.created's actor type


def ui_link(settings: Settings, workflow_id: str | None = None) -> str:
    base = f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows"
    return f"{base}/{workflow_id}" if workflow_id else base


async def _place(workers: InProcessWorkers, door: FrontDoor, keys: dict[str, IssuedKey], index: int,
                 scenario: str | None, tag: str) -> DemoOrder:
    """One order through the HTTP API with its tenant's key; the demo names the order id itself so
    the simulators can be armed for it before it is placed."""
    settings, client = workers.settings, workers.client
    assert client is not None
    order = new_order(TENANTS[index % 3].replace("demo-", f"demo{tag}-", 1), PLANS[index % 3])
    engine = engine_for(settings.dsn)
    if scenario == "cancel":
        inject_fault(engine, order.order_id, "disk", "slow", delay_ms=1500)
    elif scenario not in (None, "payment"):
        arm_failure(engine, order.order_id, scenario)
    body = {"planId": order.plan_id, "region": order.region, "orderId": order.order_id,
            "customerId": order.customer_id,
            "payment": {"outcome": "declined" if scenario == "payment" else "authorized"}}
    key = keys[order.tenant_id]
    async with door.client() as http:
        answer = await http.post("/v1/orders", json=body, headers=key.headers)
    if answer.status_code != 201:
        raise RuntimeError(f"the API refused demo order {order.order_id}: {answer.json().get('detail')}")
    placed = PlacedOrder(order, client.get_workflow_handle_for(OrderFulfillmentWorkflow.run,
                                                               order.workflow_id))
    if scenario == "cancel":
        asyncio.get_running_loop().create_task(_cancel_while_provisioning(door, key, placed))
    return DemoOrder(placed, scenario or "happy path")


async def _cancel_while_provisioning(door: FrontDoor, key: IssuedKey, placed: PlacedOrder) -> None:
    async with door.client() as http:
        path = f"/v1/orders/{placed.order.order_id}"
        for _ in range(200):
            if (await http.get(path, headers=key.headers)).json().get("status") == "provisioning":
                break
            await asyncio.sleep(0.1)
        await http.post(f"{path}/cancel", headers=key.headers)  # 409 when too late: the order completes


async def _watch(orders: list[DemoOrder], on_progress: Callable[[list[DemoOrder]], None]) -> None:
    async def follow(item: DemoOrder) -> None:
        """Until the saga ends — or opens an incident and waits for a person, which the demo leaves
        open for the Web UI and `cloud-factory incident` to show."""

        def seen(snapshot: OrderSnapshot) -> None:
            item.status, item.step = snapshot.status, snapshot.step

        outcome = await wait_for_outcome(item.placed.handle, poll_s=0.3, on_snapshot=seen)
        item.status, item.incident_id = outcome.status, outcome.incident_id
        item.step = f"waits for a person: {outcome.incident_id}" if outcome.needs_a_person else "done"
        item.seconds = time.monotonic() - item.started

    async def report() -> None:
        while any(item.seconds is None for item in orders):
            on_progress(orders)
            await asyncio.sleep(0.25)
        on_progress(orders)

    await asyncio.gather(report(), *(follow(item) for item in orders))


def _replay_some(settings: Settings, records, count: int = 3) -> int:
    """Re-send a few of Provisioning's records (an at-least-once redelivery, signed by Provisioning as
    its worker would after a crash) to show they are suppressed."""
    producer = producer_from(settings, service="provisioning")
    for record in records[:count]:
        producer.publish(record.envelope)  # same event id: consumers must recognise it
    return min(count, len(records))


async def run_demo(
    settings: Settings,
    *,
    on_progress: Callable[[list[DemoOrder]], None] = lambda _: None,
    say: Callable[[str], None] = print,
    orders: int = len(DEMO_PLAN),
    tag: str = "",
) -> DemoSummary:
    """Run the main job; `tag` isolates a run (tenants `demo<tag>-…`, own consumer groups and task queue)."""
    configure_tracing("demo")
    say("creating topics for the event catalog")
    await asyncio.to_thread(ensure_catalog_topics, settings)
    started_ms = int(time.time() * 1000) - 1000
    t0 = time.monotonic()
    duplicates_before = METRICS.get("duplicates")
    isolation = {"task_queue": f"demo-{tag}", "group_suffix": f"-demo-{tag}"} if tag else {}
    async with (InProcessWorkers(settings, scope=TenantScope(f"demo{tag}-"), **isolation) as workers,
                FrontDoor(settings, task_queue=workers.task_queue, group_id=f"edge-api-demo{tag}") as door):
        tenants = [t.replace("demo-", f"demo{tag}-", 1) for t in TENANTS]
        say(f"workers and the HTTP API ({door.base_url}) up; creating an API key per tenant through Identity")
        keys = dict(zip(tenants, await asyncio.gather(*(door.issue_key(t) for t in tenants)), strict=True))
        say(f"placing {orders} orders across {len(TENANTS)} tenants through the API")
        plan = [DEMO_PLAN[i % len(DEMO_PLAN)] for i in range(orders)]
        placed = await asyncio.gather(*(_place(workers, door, keys, i, scenario, tag)
                                        for i, scenario in enumerate(plan)))
        await _watch(list(placed), on_progress)
        waiting = [item.incident_id for item in placed if item.incident_id]
        say("all sagas settled" + (f"; {len(waiting)} wait for a person (`cloud-factory incident list`)"
                                   if waiting else "") + "; reading the flows back from Kafka")
        correlations = {p.placed.order.correlation_id for p in placed}
        records = []
        for item in placed:
            records += await asyncio.to_thread(
                read_flow, settings, item.placed.order.correlation_id, list(schemas.catalog), started_ms
            )
        replayable = [r for r in records if r.envelope.event_type == "provisioning.completed"]
        await asyncio.to_thread(_replay_some, settings, replayable)
        await asyncio.sleep(3)  # let the consumers see the redelivered records
        duplicates = METRICS.get("duplicates") - duplicates_before
    dlq = await asyncio.to_thread(read_dlq, settings, list(schemas.catalog), started_ms)
    with engine_for(settings.dsn).connect() as conn:
        sent = len(
            conn.execute(
                select(notifications.c.id).where(
                    notifications.c.correlation_id.in_([uuid.UUID(c) for c in correlations])
                )
            ).all()
        )
    return DemoSummary(
        orders=list(placed),
        outcomes=Counter(item.status for item in placed),
        events_per_type=Counter(r.envelope.event_type for r in records),
        dlq=sum(1 for _topic, value, _headers in dlq if any(c.encode() in value for c in correlations)),
        duplicates_suppressed=duplicates,
        notifications=sent,
        elapsed_s=time.monotonic() - t0,
        ui_url=ui_link(settings) + "?query=" + f"TenantId%20STARTS_WITH%20%22demo{tag}-%22",
        actors=Counter(str(r.envelope.actor.type) for r in records
                       if r.envelope.event_type == "order.created"),
    )


# ---------------------------------------------------------------- helpers kept for the slice test
def read_record(
    settings: Settings, published: PublishedEvent
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The exact record an activity produced: (key, value, headers)."""
    with TopicReader(settings.bootstrap_servers, group_prefix="demo-reader") as reader:
        try:
            msg = reader.read_one(published.topic, published.partition, published.offset, timeout_s=30)
        except (LookupError, TimeoutError) as exc:
            raise TimeoutError(
                f"record {published.topic}[{published.partition}]@{published.offset} not readable"
            ) from exc
    return msg.key(), msg.value(), list(msg.headers() or [])


def wait_for_notifications(settings: Settings, event_id: str, *, timeout: float = 60) -> int:
    engine = engine_for(settings.dsn)
    deadline = time.monotonic() + timeout
    query = select(notifications.c.id).where(notifications.c.event_id == uuid.UUID(event_id))
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = len(conn.execute(query).all())
        if rows:
            return rows
        time.sleep(0.2)
    raise TimeoutError(f"no notification recorded for event {event_id} within {timeout:.0f}s")
