"""Saga benchmark: sagas/s and order.created → order.service-delivered latency at N concurrent
orders, beside a bare Temporal workflow running the same number of activities, same server, same run.

    .venv/bin/python bench/bench_saga.py [--orders 100] [--rounds 2] [--unloaded 20] [--notification]
        [--bare-runner default|saga]

The saga side is the real thing on the real stack: the saga worker in this process, the inbound
bridge, Provisioning and Billing as `cloud-factory worker …` processes as deployed (Notification too
with --notification; --in-process runs them all here, sharing one GIL), signed events on Kafka, rows
in PostgreSQL. The bare side is a workflow of 5 sequential no-op activities (the success path
publishes 5 events) with no Kafka at all. A warm-up order runs first so consumer-group joins and
topic catch-up are not timed. Both sides report start→result (the client's call to the result it
gets back); the saga also created→delivered (its `order.*` events' times), with and without the
simulated provider's sleeps (20 ms per resource created). The saga's side pays in the same call
(Update-with-Start), as the checkout does. Then `--unloaded` orders run one at a time, each placed
after the last delivered: the unloaded created→delivered p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bare_workflow import BareWorkflow, bench_noop  # noqa: E402  (bench/ is on sys.path when run as a script)
from cpu_split import CpuMeter, stack_pids
from soak_stack import require_up
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from core.settings import get_settings
from core.tracing import configure_tracing
from services.common import TenantScope
from services.order.api import new_order, place_order
from services.provisioning.simulator import SimulatedProvider
from workers.bytecode import ensure_bytecode
from workers.heartbeat import read_heartbeats
from workers.inprocess import InProcessWorkers
from workers.saga import SAGA_WORKFLOW_RUNNER
from workflows.contracts import SagaTimings
from workflows.order_fulfillment import OrderFulfillmentWorkflow
from workflows.plans import resources_for_plan

ACTIVITIES = 5
PLAN = "vm-standard-2"
#: What the simulated provider sleeps per order (its latency per resource created), part of every
#: created→delivered figure; printed beside it and taken out of the "without" figure.
PROVIDER_S = len(resources_for_plan(PLAN)) * SimulatedProvider.latency_s


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


Figures = tuple[float, list[float], list[float], int]


async def _saga(workers: InProcessWorkers, tenant_prefix: str, orders: int) -> Figures:
    """(elapsed s, start→result latencies, created→delivered latencies, workflow tasks timed out) of
    `orders` concurrent sagas."""
    assert workers.client is not None
    timings = SagaTimings(payment_timeout_s=600, provisioning_timeout_s=600)
    warm = new_order(f"{tenant_prefix}warm-{uuid.uuid4().hex[:6]}", PLAN, timings=timings)
    await (await place_order(workers.client, warm, task_queue=workers.task_queue)).handle.result()
    batch = [new_order(f"{tenant_prefix}{i % 3}", PLAN, timings=timings) for i in range(orders)]

    async def one(order) -> tuple[float, object]:  # noqa: ANN001
        t0 = time.perf_counter()
        placed = await place_order(workers.client, order, task_queue=workers.task_queue)
        result = await placed.handle.result()
        return time.perf_counter() - t0, (placed, result)

    start = time.perf_counter()
    done = await asyncio.gather(*(one(order) for order in batch))
    elapsed = time.perf_counter() - start
    bad = [result.status for _, (_, result) in done if result.status != "delivered"]
    if bad:
        raise RuntimeError(f"{len(bad)} sagas did not deliver: {bad[:5]}")
    created_to_delivered = [await _created_to_delivered(placed) for _, (placed, _) in done]
    lost = sum([await _timed_out_tasks(placed) for _, (placed, _) in done])
    return elapsed, [latency for latency, _ in done], created_to_delivered, lost


async def _timed_out_tasks(placed) -> int:  # noqa: ANN001
    """Workflow tasks of the saga that timed out: a worker took one and never answered, so the saga
    waited out the task timeout (10 s) before another attempt; the slowest saga sets the round's time."""
    history = await placed.handle.fetch_history()
    timed_out = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
    return sum(1 for event in history.events if event.event_type == timed_out)


async def _created_to_delivered(placed) -> float:  # noqa: ANN001
    """Seconds from the saga's `order.created` to its `order.service-delivered` (its timeline)."""
    timeline = await placed.handle.query(OrderFulfillmentWorkflow.timeline)
    at = {e.event_type: dt.datetime.fromisoformat(e.at) for e in timeline if e.direction == "out"}
    return (at["order.service-delivered"] - at["order.created"]).total_seconds()


async def _unloaded(workers: InProcessWorkers, tenant_prefix: str, orders: int) -> list[float]:
    """created→delivered of `orders` sagas placed one at a time (each after the last delivered)."""
    assert workers.client is not None
    timings = SagaTimings(payment_timeout_s=600, provisioning_timeout_s=600)
    latencies = []
    for i in range(orders):
        order = new_order(f"{tenant_prefix}{i % 3}", PLAN, timings=timings)
        placed = await place_order(workers.client, order, task_queue=workers.task_queue)
        result = await placed.handle.result()
        if result.status != "delivered":
            raise RuntimeError(f"an unloaded saga did not deliver: {result.status}")
        latencies.append(await _created_to_delivered(placed))
    return latencies


async def _bare(workers: InProcessWorkers, orders: int, runner: str) -> tuple[float, list[float]]:
    assert workers.client is not None
    queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    ensure_bytecode([BareWorkflow])  # as the saga worker does for its modules: the same footing
    async with Worker(
        workers.client,
        task_queue=queue,
        workflows=[BareWorkflow],
        activities=[bench_noop],
        **({"workflow_runner": SAGA_WORKFLOW_RUNNER} if runner == "saga" else {}),
        activity_executor=ThreadPoolExecutor(max_workers=64),
        max_concurrent_activities=64,
    ):
        await workers.client.execute_workflow(
            BareWorkflow.run, ACTIVITIES, id=f"{queue}-warm", task_queue=queue
        )
        start = time.perf_counter()

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            await workers.client.execute_workflow(
                BareWorkflow.run, ACTIVITIES, id=f"{queue}-{i}", task_queue=queue
            )
            return time.perf_counter() - t0

        latencies = await asyncio.gather(*(one(i) for i in range(orders)))
        return time.perf_counter() - start, list(latencies)


def _service_processes(settings, tag: str, prefix: str, kinds: list[str]) -> list[subprocess.Popen]:
    env = {**os.environ, "CF_WORKER_GROUP_SUFFIX": f"-bench-{tag}", "CF_WORKER_TENANT_PREFIX": prefix}
    cli = str(Path(sys.executable).parent / "cloud-factory")
    processes = [
        subprocess.Popen([cli, "worker", kind], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for kind in kinds
    ]
    deadline = time.monotonic() + 60
    while {p.pid for p in processes} - {beat.pid for beat in read_heartbeats(settings.state_dir)}:
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError("a service worker did not start")
        time.sleep(0.2)
    return processes


def _ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:7.0f} ms  p99 {_pct(values, 0.99) * 1000:7.0f} ms"


async def main(orders: int, rounds: int, notification: bool, in_process: bool, unloaded: int,
               bare_runner: str) -> None:
    settings = get_settings()
    require_up(settings)
    configure_tracing("bench")
    tag = uuid.uuid4().hex[:8]
    prefix = f"bench{tag}-"
    kinds = ["bridge", "provisioning", "billing"] + (["notification"] if notification else [])
    processes = [] if in_process else _service_processes(settings, tag, prefix, kinds)
    print(
        f"{orders} concurrent orders, {ACTIVITIES} activities each, {rounds} round(s) in alternating order "
        f"(notification {'on' if notification else 'off'}; services "
        f"{'in this process' if in_process else 'as worker processes'}; bare workflow on the "
        f"{'saga worker' if bare_runner == 'saga' else 'default'} runner)", flush=True
    )
    ratios = []
    here = "this process (workers)"
    services = {kind: process.pid for kind, process in zip(kinds, processes, strict=False)}
    meter = CpuMeter({here: os.getpid(), **stack_pids(settings), **services}, alone=frozenset({here}))
    try:
        async with InProcessWorkers(
            settings,
            task_queue=f"bench-saga-{tag}",
            group_suffix=f"-bench-{tag}",
            scope=TenantScope(prefix),
            notification=notification,
            consumers=in_process,
        ) as workers:
            for round_ in range(1, rounds + 1):
                figures, cpu = {}, {}
                for side in ("saga", "bare") if round_ % 2 else ("bare", "saga"):
                    meter.start()
                    if side == "saga":
                        figures[side] = await _saga(workers, prefix, orders)
                    else:
                        figures[side] = (*await _bare(workers, orders, bare_runner), [], 0)
                    cpu[side] = meter.stop()
                saga_s, saga_lat, created_lat, lost = figures["saga"]
                bare_s, bare_lat, _, _ = figures["bare"]
                saga_rate, bare_rate = orders / saga_s, orders / bare_s
                ratios.append(saga_rate / bare_rate)
                print(f"round {round_}")
                print(f"  saga : {saga_rate:7.1f} sagas/s  start→result {_ms(saga_lat)}   ({saga_s:.1f} s)")
                without = _ms([v - PROVIDER_S for v in created_lat])
                print(f"         created→delivered {_ms(created_lat)}   (simulated provider "
                      f"{PROVIDER_S * 1000:.0f} ms of it; without: {without})")
                print(f"         workflow tasks timed out: {lost} (a saga waits 10 s for each)")
                print(f"  bare : {bare_rate:7.1f} wf/s     start→result {_ms(bare_lat)}   ({bare_s:.1f} s)")
                print(f"  ratio: saga/bare throughput {ratios[-1]:.2f}x")
                print("  CPU ms per saga | per bare workflow (each side's whole run, warm-up included):")
                for name in meter.roots:
                    saga_ms, bare_ms = (cpu[side][name] * 1000 / orders for side in ("saga", "bare"))
                    if saga_ms or bare_ms:
                        print(f"    {name:<24} {saga_ms:7.1f} | {bare_ms:7.1f}")
                totals = [sum(cpu[side].values()) * 1000 / orders for side in ("saga", "bare")]
                print(f"    {'total':<24} {totals[0]:7.1f} | {totals[1]:7.1f}", flush=True)
            if unloaded:
                alone = await _unloaded(workers, prefix, unloaded)
                print(f"unloaded, {unloaded} orders one at a time: created→delivered {_ms(alone)}; "
                      f"without the simulated provider's {PROVIDER_S * 1000:.0f} ms "
                      f"{_ms([v - PROVIDER_S for v in alone])} (goal p50 <= 150 ms)", flush=True)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)
    print(f"saga/bare throughput over {rounds} round(s): {min(ratios):.2f}–{max(ratios):.2f}x "
          f"(median {statistics.median(ratios):.2f}x; goal ≥ 1.0x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2,
                        help="Rounds of saga and bare, alternating which goes first.")
    parser.add_argument("--notification", action="store_true", help="Run the Notification consumer as well.")
    parser.add_argument("--in-process", action="store_true", help="Run the services in this process too.")
    parser.add_argument("--unloaded", type=int, default=20,
                        help="Then this many orders one at a time: unloaded created→delivered (0: none).")
    parser.add_argument("--bare-runner", choices=["default", "saga"], default="default",
                        help="The bare workflow's runner: the SDK's default sandbox (a bare workflow as "
                             "written), or the saga worker's (workers.saga.SAGA_WORKFLOW_RUNNER).")
    args = parser.parse_args()
    if args.orders < 1 or args.rounds < 1 or args.unloaded < 0:
        parser.error("--orders and --rounds must be at least 1, --unloaded at least 0")
    asyncio.run(main(args.orders, args.rounds, args.notification, args.in_process, args.unloaded,
                     args.bare_runner))
