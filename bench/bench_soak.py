"""Soak benchmark: N orders with the demo's mix of failures through running worker processes, then
every order reconciled against Kafka and the services' tables.

    .venv/bin/python bench/bench_soak.py --orders 10000 [--in-flight 100] [--rate R] [--workers separate|all]
    .venv/bin/python bench/bench_soak.py --orders 300          # a quick check

Needs the `bench` extra (matplotlib; `bash scripts/setup.sh` installs it, or
`.venv/bin/python -m pip install -e '.[bench]'`). By default the bench starts a private stack of its
own (Kafka, Temporal, PostgreSQL under `.cloud-factory-bench/`, free ports; stopped and removed at
the end); `--env-stack` runs against the stack the `CF_*` environment points at instead (it must be
up). The workers are real `cloud-factory worker KIND` processes, one per kind (saga, bridge and every
service; `--workers all`: one `worker all`), isolated by the run's task queue, consumer groups and
tenant prefix. Orders follow the demo's plan of 20 (`cloud_factory.demo.DEMO_PLAN`): half happy,
declined payments, provisioning failing for good at the network, disk or VPS (compensation: the
resources made are deleted, the payment refunded), a flaky VPS create, a refund the gateway declines
(compensation fails; the incident expires after a few seconds, the order ends compensation_failed),
a customer cancel during provisioning. They are placed with `--in-flight` unfinished at most (and at
`--rate` per second at most, when given).

Afterwards each order must be terminal and agree with its events on Kafka, the provider's resources
(created / deleted) and Billing's captures, refunds and invoices. Printed: outcomes, orders/s over
the run, created→terminal latency p50/p99 (the saga's `order.*` event times), each worker's RSS
(start / peak / end, sampled from /proc); written: `bench/results/soak-<time>.{json,md,png}`.
Exit 1 when an order disagrees, when orders do not finish within `--timeout` or when none finishes
for `--stall-s`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from soak_reconcile import FlowIndex, OrderRun, reconcile  # noqa: E402  (bench/ is on sys.path)
from soak_report import figures, render, require_matplotlib, write_all
from soak_stack import soak_stack
from soak_workers import RssSampler, kinds_for, start_workers, stop_workers
from temporalio.service import RPCError

from cloud_factory.demo import DEMO_PLAN
from cloud_factory.faults import arm_failure
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from messaging.wiring import ensure_catalog_topics
from services.order.api import OrderCommandRefused, cancel_order, new_order, place_order
from services.provisioning.simulator import inject_fault
from workflows.contracts import SagaTimings
from workflows.order_fulfillment import OrderFulfillmentWorkflow
from workflows.states import SagaStatus

PLANS = ("vm-small-1", "vm-standard-2", "vm-large-4")
LOAD = "bench (load)"  # this process: the load generator and the reconciliation
RESULTS = Path(__file__).resolve().parent / "results"
# Generous waits (a loaded 2-core machine is slow, and a timeout here would be the bench's artefact);
# an incident nobody answers expires after a few seconds, so a failed refund still ends the order.
TIMINGS = SagaTimings(payment_timeout_s=600, provisioning_timeout_s=600, incident_deadline_s=3)


class Load:
    """Places the orders with bounded in-flight (and an optional rate) and follows each to its end."""

    def __init__(self, client, engine, runs: list[OrderRun], task_queue: str, in_flight: int,  # noqa: ANN001
                 rate: float | None) -> None:
        self.client, self.engine, self.runs, self.queue = client, engine, runs, task_queue
        self.in_flight, self.rate = in_flight, rate
        self.t0 = time.monotonic()
        self.placed = self.finished = 0
        self.cancels: Counter[str] = Counter()
        self.result_retries: Counter[str] = Counter()  # server errors while waiting for a result

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def _arm(self, run: OrderRun) -> None:
        if run.scenario == "cancel":  # a slow disk keeps it provisioning long enough to cancel
            await asyncio.to_thread(inject_fault, self.engine, run.order.order_id, "disk", "slow",
                                    delay_ms=1500)
        elif run.scenario not in ("happy path", "payment"):
            await asyncio.to_thread(arm_failure, self.engine, run.order.order_id, run.scenario)

    async def _cancel_while_provisioning(self, handle, run: OrderRun) -> None:  # noqa: ANN001
        """Like a customer watching the order page: cancel once it shows `provisioning`."""
        for _ in range(600):
            try:
                if (await handle.query(OrderFulfillmentWorkflow.status)).status == SagaStatus.PROVISIONING:
                    break
            except RPCError:
                pass  # no worker answered this time; ask again
            await asyncio.sleep(0.2)
        try:
            await cancel_order(self.client, run.order.workflow_id, note="soak: customer cancel")
            run.cancel_sent = True
            self.cancels["accepted"] += 1
        except OrderCommandRefused:
            self.cancels["refused (too late)"] += 1
        except (TimeoutError, RPCError) as exc:
            self.cancels[f"not sent ({type(exc).__name__})"] += 1

    async def _result(self, handle, attempts: int = 5):  # noqa: ANN001, ANN202
        """The saga's result; a server error on the long poll (the loaded dev server has answered
        "Namespace default is not found" once in 2000) is the client's to ride out: read again."""
        for attempt in range(1, attempts + 1):
            try:
                return await handle.result()
            except RPCError as exc:
                if attempt == attempts:
                    raise
                self.result_retries[str(exc)[:80]] += 1
                await asyncio.sleep(attempt)
        raise AssertionError("unreachable")

    async def _one(self, index: int, run: OrderRun) -> None:
        if self.rate:
            await asyncio.sleep(max(0.0, index / self.rate - self.now()))
        try:
            await self._arm(run)
            run.placed_at = self.now()
            placed = await place_order(self.client, run.order, declined=run.scenario == "payment",
                                       task_queue=self.queue)
            self.placed += 1
            cancel = (asyncio.create_task(self._cancel_while_provisioning(placed.handle, run))
                      if run.scenario == "cancel" else None)
            result = await self._result(placed.handle)
            run.outcome = str(result.status)
            if cancel is not None and not cancel.done():
                cancel.cancel()
        except Exception as exc:  # noqa: BLE001 - a failed order is a figure (and a mismatch), not a crash
            run.outcome = f"error: {type(exc).__name__}: {str(exc)[:80]}"
        run.done_at = self.now()
        self.finished += 1

    async def run(self) -> None:
        work = iter(enumerate(self.runs))

        async def lane() -> None:
            for index, run in work:
                await self._one(index, run)

        await asyncio.gather(*(lane() for _ in range(min(self.in_flight, len(self.runs)))))


async def _progress(load: Load, sampler: RssSampler, every_s: float, stall_s: float) -> None:
    """A line every `every_s`; raises TimeoutError when no order has finished for `stall_s`."""
    last_finished, last_t, last_change = 0, 0.0, 0.0
    total = len(load.runs)
    while True:
        await asyncio.sleep(every_s)
        t, finished = load.now(), load.finished
        if finished != last_finished:
            last_change = t
        rate = (finished - last_finished) / (t - last_t)
        rss = {name: mb for name, mb in sampler.latest().items() if name != LOAD}
        print(f"[{t:6.0f} s] placed {load.placed:>6}/{total}  terminal {finished:>6}  "
              f"in flight {load.placed - finished:>4}  {rate:6.1f} orders/s (last {every_s:.0f} s), "
              f"{finished / t:6.1f} overall  worker RSS max {max(rss.values(), default=0):.0f} MB "
              f"({max(rss, key=rss.get, default='-')})", flush=True)
        last_finished, last_t = finished, t
        if t - last_change > stall_s:
            raise TimeoutError(f"no order finished for {stall_s:.0f} s")


async def soak(settings: Settings, args: argparse.Namespace) -> int:
    tag = uuid.uuid4().hex[:8]
    prefix, queue = f"soak{tag}-", f"soak-{tag}"
    env = {"CF_ORDER_TASK_QUEUE": queue, "CF_WORKER_GROUP_SUFFIX": f"-soak-{tag}",
           "CF_WORKER_TENANT_PREFIX": prefix}
    await asyncio.to_thread(ensure_catalog_topics, settings)
    kinds = kinds_for(args.workers)
    started = dt.datetime.now(dt.UTC)
    stem = args.out / f"soak-{started:%Y%m%d-%H%M%S}"
    print(f"starting {len(kinds)} worker process(es): {', '.join(kinds)} (logs in {stem}-logs/)")
    workers = start_workers(settings, kinds, env, Path(f"{stem}-logs"))
    try:
        pids = {w.kind: w.pid for w in workers} | {LOAD: os.getpid()}
        client = await connect_client(settings)
        engine = engine_for(settings.dsn)
        runs = [OrderRun(new_order(f"{prefix}{i % 3}", PLANS[i % 3], timings=TIMINGS),
                         DEMO_PLAN[i % len(DEMO_PLAN)] or "happy path") for i in range(args.orders)]
        since_ms = int(time.time() * 1000) - 5000
        load = Load(client, engine, runs, queue, args.in_flight, args.rate)
        sampler = RssSampler(pids, every_s=args.sample_s, t0=load.t0).start()
        print(f"placing {args.orders} orders, at most {args.in_flight} in flight"
              + (f", at most {args.rate:g}/s" if args.rate else "") + f" (tenants {prefix}0..2)", flush=True)
        progress = asyncio.create_task(_progress(load, sampler, args.progress_s, args.stall_s))
        main = asyncio.create_task(load.run())
        done, _ = await asyncio.wait({main, progress}, timeout=args.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        unfinished = [r for r in runs if r.done_at is None]
        if main not in done:
            why = progress.exception() if progress in done else f"--timeout {args.timeout:.0f} s passed"
            main.cancel()
            progress.cancel()
            sampler.stop()
            stuck = Counter(r.scenario for r in unfinished if r.placed_at is not None)
            print(f"error: {len(unfinished)} of {len(runs)} orders did not finish ({why}); "
                  f"placed but unfinished, by scenario: {dict(stuck)}", file=sys.stderr)
            return 1
        progress.cancel()
        print(f"all {len(runs)} orders finished in {load.now():.0f} s; customer cancels: "
              f"{dict(load.cancels)}; result reads retried after a server error: "
              f"{dict(load.result_retries) or 0}; reconciling with Kafka and the services' tables",
              flush=True)
        index = FlowIndex(settings, {r.order.correlation_id for r in runs}, since_ms)
        result = await asyncio.to_thread(reconcile, settings, engine, runs, index, settle_s=args.settle_s)
        sampler.stop()
    finally:
        stop_workers(workers)
    latencies = {r.order.workflow_id: flow.last_order_event - flow.first_created for r in runs
                 if (flow := index.flows.get(r.order.correlation_id)) and flow.first_created
                 and flow.last_order_event}
    meta = {"orders": args.orders, "in_flight": args.in_flight, "rate": args.rate,
            "workers": args.workers, "started": started.isoformat(timespec="seconds"),
            "stack": "private" if not args.env_stack else "environment", "cancels": dict(load.cancels),
            "result_retries": dict(load.result_retries)}
    fig = figures(meta, runs, latencies, sampler, result)
    print()
    print(render(fig), end="")
    paths = write_all(fig, stem)
    print(f"\nwritten: {', '.join(str(p) for p in paths)}")
    if result.mismatches:
        print(f"error: {len(result.mismatches)} orders do not reconcile", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=100, help="Orders placed but not finished, at most.")
    parser.add_argument("--rate", type=float, default=None, help="Orders placed per second, at most.")
    parser.add_argument("--workers", choices=("separate", "all"), default="separate",
                        help="One process per worker kind (default), or one `worker all`.")
    parser.add_argument("--env-stack", action="store_true",
                        help="Use the stack the CF_* environment points at instead of a private one.")
    parser.add_argument("--keep-state", action="store_true", help="Keep the private stack's state directory.")
    parser.add_argument("--timeout", type=float, default=None,
                        help="Seconds for the whole load, at most (default 600 + 1.5 per order).")
    parser.add_argument("--stall-s", type=float, default=300, help="Fail when no order finishes this long.")
    parser.add_argument("--settle-s", type=float, default=120,
                        help="How long the services' rows may lag the outcomes before a difference counts.")
    parser.add_argument("--sample-s", type=float, default=3, help="RSS sampling interval.")
    parser.add_argument("--progress-s", type=float, default=10, help="Seconds between progress lines.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Where the figures are written.")
    args = parser.parse_args()
    if args.orders < 1 or args.in_flight < 1 or (args.rate is not None and args.rate <= 0):
        parser.error("--orders, --in-flight and --rate must be positive")
    if args.timeout is None:
        args.timeout = 600 + 1.5 * args.orders
    require_matplotlib()
    with soak_stack(not args.env_stack, keep_state=args.keep_state) as settings:
        return asyncio.run(soak(settings, args))


if __name__ == "__main__":
    sys.exit(main())
