"""HTTP order API benchmark: requests/s and p50/p99 latency of the edge on loopback at bounded
concurrency, beside same-run baselines, and a check that the default rate limit holds under load.

    .venv/bin/python bench/bench_api.py [--requests 80] [--orders 40] [--concurrency 8 32] [--place-alone]

Everything runs in this process (one GIL: load generator, uvicorn, the saga worker and the
consumers share it, so the figures are a floor, not a deployment's capacity): the saga worker on its
own task queue, the bridge, Provisioning and Billing consumers scoped to this run's tenants, the
Identity outbox relay, and two `run_api` servers on port 0 — one with a rate limit too high to bite
(the timed one), one with the default limit (the 429 check). An API key is created through Identity's
commands and is used once the API's projection has it.

Measured at each concurrency (--requests GETs, --orders POSTs / placements per row; httpx.AsyncClient
with that many connections; errors — an answer other than the expected one — are counted per row and
left out of the latencies):

(a) `GET /v1/orders/{id}` of an existing order — key check, rate limiter, 3 saga queries — twice:
    an order still running (placed without payment, so it waits: the worker answers from its cache)
    and a delivered one (closed: every query replays its history on the worker);
(c) `GET /healthz` — the HTTP stack without a key (it pings PostgreSQL and Temporal's health check);
    and the same 3 queries on the Temporal client without HTTP, for each order, so (a) splits into
    edge and Temporal;
(b) `POST /v1/orders` (payment authorized) — only the HTTP answer time: Update-with-Start, then the
    3 queries that make the answer; the sagas complete in the background, and are drained (untimed)
    before the next phase so they do not load it;
(d) the same work without HTTP: `place_order` + the same 3 queries (and with --place-alone
    `place_order` alone).

Ratios: (a)/(c), (a)/(direct queries), (b)/(d): throughput ratio and p50 latency ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings, get_settings
from core.tracing import configure_tracing
from edge.api.server import run_api
from services.common import TenantScope
from services.common.commands import build_commands
from services.common.outbox_services import service_tables
from services.identity.commands import IdentityCommands
from services.order.api import new_order, place_order
from workers.inprocess import InProcessWorkers
from workers.outbox import build_outbox_relay
from workflows.contracts import order_workflow_id
from workflows.order_fulfillment import OrderFulfillmentWorkflow

ORDER_BODY = {"planId": "vm-small-1", "payment": {"outcome": "authorized"}}
PLAN = ORDER_BODY["planId"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass
class Run:
    name: str
    concurrency: int
    elapsed: float
    latencies: list[float]
    errors: Counter[str]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return _pct(self.latencies, 0.99) * 1000


async def _load(name: str, n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> Run:
    """`n` calls of `one(i)`, `concurrency` in flight at any time; each call's latency."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            t0 = time.perf_counter()
            try:
                await one(i)
            except Unexpected as exc:
                errors[str(exc)] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a failed call is counted, not fatal
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    if not latencies:
        raise RuntimeError(f"{name}: every call failed: {dict(errors)}")
    return Run(name, concurrency, time.perf_counter() - start, latencies, errors)


class Unexpected(Exception):
    """An answer with another status than the one expected (counted per row as an error)."""


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise Unexpected(str(response.status_code))
    return response


async def _settle(http: httpx.AsyncClient, path: str, auth: dict[str, str], timeout_s: float = 60) -> None:
    start = time.perf_counter()
    while (status := (await http.get(path, headers=auth)).status_code) != 200:
        if time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"GET {path} still answers {status} after {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def _queries(client, workflow_id: str) -> None:  # noqa: ANN001
    handle = client.get_workflow_handle(workflow_id)
    await asyncio.gather(handle.query(OrderFulfillmentWorkflow.status),
                         handle.query(OrderFulfillmentWorkflow.compensation),
                         handle.query(OrderFulfillmentWorkflow.timeline))


async def _drain(client, workflow_ids: list[str]) -> float:  # noqa: ANN001
    """Wait (untimed for the figures) until every saga placed by a phase has finished."""
    start = time.perf_counter()
    results = await asyncio.gather(*(client.get_workflow_handle_for(OrderFulfillmentWorkflow.run, w).result()
                                     for w in workflow_ids), return_exceptions=True)
    # A saga whose POST failed before placing it never started: nothing to wait for.
    results = [r for r in results if not (isinstance(r, RPCError) and r.status is RPCStatusCode.NOT_FOUND)]
    bad = [r if isinstance(r, BaseException) else r.status for r in results
           if isinstance(r, BaseException) or r.status != "delivered"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(results)} sagas did not deliver: {bad[:5]}")
    return time.perf_counter() - start


async def _wait_usable(http: httpx.AsyncClient, auth: dict[str, str], timeout_s: float = 90) -> float:
    """Seconds until the key is in the API's projection: an unknown order answers 404, not 401."""
    start = time.perf_counter()
    while True:
        status = (await http.get(f"/v1/orders/{uuid.uuid4()}", headers=auth)).status_code
        if status == 404:
            return time.perf_counter() - start
        if status != 401 or time.perf_counter() - start > timeout_s:
            waited = time.perf_counter() - start
            raise RuntimeError(f"the API key is not usable after {waited:.0f} s ({status})")
        await asyncio.sleep(0.1)


async def _rate_limit_check(base: str, auth: dict[str, str], rate: float, burst: int,
                            seconds: float = 3.0, lanes: int = 16) -> bool:
    """Hammer the default-limit server with one key for `seconds`; the accepted requests must stay
    within burst + rate × elapsed, and every 429 must carry a whole-seconds Retry-After."""
    await asyncio.sleep(burst / rate + 0.5)  # the readiness probe spent a token: let the bucket refill
    statuses: Counter[int] = Counter()
    retry_after: Counter[str] = Counter()
    missing = 0
    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=lanes)) as http:
        start = time.perf_counter()

        async def lane() -> None:
            nonlocal missing
            while time.perf_counter() - start < seconds:
                response = await http.get(f"/v1/orders/{uuid.uuid4()}", headers=auth)
                statuses[response.status_code] += 1
                if response.status_code == 429:
                    value = response.headers.get("retry-after")
                    if value is None or not value.isdigit() or int(value) < 1:
                        missing += 1
                    else:
                        retry_after[value] += 1

        await asyncio.gather(*(lane() for _ in range(lanes)))
        elapsed = time.perf_counter() - start
        wait = max((int(v) for v in retry_after), default=1)
        await asyncio.sleep(wait)
        after = (await http.get(f"/v1/orders/{uuid.uuid4()}", headers=auth)).status_code
    accepted, limited = statuses[404], statuses[429]
    ceiling = burst + rate * elapsed + 1
    other = {s: c for s, c in statuses.items() if s not in (404, 429)}
    ok = limited > 0 and accepted <= ceiling and missing == 0 and not other and after == 404
    print(f"rate limit (defaults: {rate:g}/s, burst {burst}), {lanes} in flight for {elapsed:.1f} s: "
          f"{sum(statuses.values())} requests, {accepted} accepted "
          f"(404; ceiling burst + rate×t = {ceiling:.0f}), "
          f"{limited} answered 429 (Retry-After {dict(retry_after)}, missing/invalid {missing})"
          + (f", other {other}" if other else "")
          + f"; after waiting Retry-After: {after}  → {'OK' if ok else 'FAILED'}")
    return ok


async def _serve(settings: Settings, stop: asyncio.Event, *, task_queue: str,
                 group_id: str) -> tuple[asyncio.Task, str]:
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_api(settings, stop, port=0, task_queue=task_queue, group_id=group_id,
                                       ready=bound.set_result))
    done, _ = await asyncio.wait({task, bound}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        await task
        raise RuntimeError("the API stopped before listening")
    return task, f"http://{settings.api_host}:{bound.result()}"


def _row(run: Run) -> str:
    errors = ", ".join(f"{count}×{what}" for what, count in sorted(run.errors.items())) or "0"
    figures = f"{run.rate:9.1f} {run.p50_ms:9.1f} {run.p99_ms:9.1f}"
    return f"{run.name:<40} {run.concurrency:>4} {figures}  {errors}"


def _ratio(label: str, a: Run, b: Run) -> str:
    return (f"{label:<50} c={a.concurrency:<3} throughput {a.rate / b.rate:5.2f}x   "
            f"p50 latency {a.p50_ms / b.p50_ms:5.2f}x")


async def main(requests: int, orders: int, levels: list[int], place_alone: bool) -> int:
    settings = get_settings()
    configure_tracing("bench")
    tag = uuid.uuid4().hex[:8]
    prefix = f"bapi{tag}-"
    tenant = f"{prefix}api"
    unlimited = settings.model_copy(update={"api_rate_per_s": 1e9, "api_burst": 10**9})
    default_rate = Settings.model_fields["api_rate_per_s"].default
    default_burst = Settings.model_fields["api_burst"].default
    limited = settings.model_copy(update={"api_rate_per_s": default_rate, "api_burst": default_burst})

    relay_stop, api_stop = threading.Event(), asyncio.Event()
    relay = await asyncio.to_thread(build_outbox_relay, settings, "identity")
    relay_thread = threading.Thread(target=relay.run, args=(relay_stop,), name="identity-relay", daemon=True)
    relay_thread.start()
    servers: list[asyncio.Task] = []
    runs: list[Run] = []
    try:
        async with InProcessWorkers(settings, task_queue=f"bench-api-{tag}", group_suffix=f"-bench-{tag}",
                                    scope=TenantScope(prefix), notification=False, replicas=1) as workers:
            client = workers.client
            assert client is not None
            fast_task, fast = await _serve(unlimited, api_stop, task_queue=workers.task_queue,
                                           group_id=f"edge-api-bench-{tag}")
            slow_task, slow = await _serve(limited, api_stop, task_queue=workers.task_queue,
                                           group_id=f"edge-api-bench-{tag}-limited")
            servers += [fast_task, slow_task]

            tables = service_tables("identity")
            commands = await asyncio.to_thread(build_commands, settings, "identity", tables.metadata,
                                               tables.outbox, IdentityCommands)
            user_id = await asyncio.to_thread(commands.register, tenant, f"bench-{tag}@example.com", "Bench")
            key = await asyncio.to_thread(commands.create_api_key, user_id, "bench",
                                          ["orders:read", "orders:write"])
            auth = {"Authorization": f"Bearer {key.secret}"}
            async with (httpx.AsyncClient(base_url=fast) as http,
                        httpx.AsyncClient(base_url=slow) as http_slow):
                lag = await _wait_usable(http, auth)
                await _wait_usable(http_slow, auth)
                print(f"API key usable after {lag:.1f} s (Identity outbox → relay → Kafka → API projection)")
                # Warm-up (untimed): one order through the API and one directly, both delivered; the
                # API's order is the delivered order read by (a); a second one, placed without payment,
                # is the running one (terminated at the end).
                placed = _expect(await http.post("/v1/orders", json=ORDER_BODY, headers=auth), 201).json()
                existing = placed["orderId"]
                waiting = _expect(await http.post("/v1/orders", json={"planId": PLAN}, headers=auth),
                                  201).json()["orderId"]
                warm = new_order(tenant, PLAN)
                await place_order(client, warm, task_queue=workers.task_queue)
                await _drain(client, [order_workflow_id(tenant, existing), warm.workflow_id])
                # The first queries of a just-closed saga can miss the worker (it is evicting the run):
                # read the existing order until it answers, untimed.
                await _settle(http, f"/v1/orders/{existing}", auth)
                await _settle(http, f"/v1/orders/{waiting}", auth)

            drained = 0.0
            for conc in levels:
                limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
                async with httpx.AsyncClient(base_url=fast, limits=limits, timeout=60) as http:
                    await asyncio.gather(*(http.get("/healthz") for _ in range(conc)))  # open the connections

                    async def health(_i: int) -> None:
                        _expect(await http.get("/healthz"), 200)

                    runs.append(await _load("(c) GET /healthz", requests, conc, health))
                    for label, order_id in (("running", waiting), ("delivered", existing)):

                        async def show(_i: int, order_id: str = order_id) -> None:
                            _expect(await http.get(f"/v1/orders/{order_id}", headers=auth), 200)

                        async def direct_show(_i: int, order_id: str = order_id) -> None:
                            await _queries(client, order_workflow_id(tenant, order_id))

                        runs.append(await _load(f"(a) GET /v1/orders/{{id}}, {label}", requests, conc, show))
                        runs.append(await _load(f"    3 queries, no HTTP, {label}", requests, conc,
                                                direct_show))

                    posted: list[str] = []

                    async def post(_i: int, posted: list[str] = posted) -> None:
                        order_id = str(uuid.uuid4())  # chosen here: a saga whose answer failed is drained too
                        posted.append(order_workflow_id(tenant, order_id))
                        _expect(await http.post("/v1/orders", json={**ORDER_BODY, "orderId": order_id},
                                                headers=auth), 201)

                    runs.append(await _load("(b) POST /v1/orders", orders, conc, post))
                    drained += await _drain(client, posted)

                    directs = (("(d) place_order + 3 queries, no HTTP", True),
                               ("    place_order alone, no HTTP", False))
                    for name, with_view in directs[:2 if place_alone else 1]:
                        direct: list[str] = []

                        async def place(_i: int, with_view: bool = with_view,
                                        direct: list[str] = direct) -> None:
                            order = new_order(tenant, PLAN)
                            await place_order(client, order, task_queue=workers.task_queue)
                            direct.append(order.workflow_id)
                            if with_view:
                                await _queries(client, order.workflow_id)

                        runs.append(await _load(name, orders, conc, place))
                        drained += await _drain(client, direct)

            ok = await _rate_limit_check(slow, auth, default_rate, default_burst)
            running = client.get_workflow_handle(order_workflow_id(tenant, waiting))
            await running.terminate("bench_api finished")
            api_stop.set()
            await asyncio.gather(*servers)
    finally:
        api_stop.set()
        for server in servers:
            if not server.done():
                await server
        relay_stop.set()
        await asyncio.to_thread(relay_thread.join, 30)

    sagas = len(levels) * (3 if place_alone else 2) * orders
    print(f"\n{requests} requests per GET row, {orders} per POST/place row, loopback, "
          "everything in one process; "
          f"{sagas} sagas drained between phases in {drained:.0f} s (untimed)")
    print(f"{'request':<40} {'conc':>4} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9}  errors")
    for run in runs:
        print(_row(run))
    by = {(r.name.strip(), r.concurrency): r for r in runs}
    print()
    for conc in levels:
        for label in ("running", "delivered"):
            get = by[f"(a) GET /v1/orders/{{id}}, {label}", conc]
            print(_ratio(f"(a) GET {label} order / (c) GET /healthz", get, by["(c) GET /healthz", conc]))
            print(_ratio(f"(a) GET {label} order / its 3 queries, no HTTP", get,
                         by[f"3 queries, no HTTP, {label}", conc]))
        print(_ratio("(b) POST / (d) place_order + 3 queries", by["(b) POST /v1/orders", conc],
                     by["(d) place_order + 3 queries, no HTTP", conc]))
        if place_alone:
            print(_ratio("(b) POST / place_order alone", by["(b) POST /v1/orders", conc],
                         by["place_order alone, no HTTP", conc]))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=80, help="GET requests per row and concurrency.")
    parser.add_argument("--orders", type=int, default=40,
                        help="POSTs (and direct placements) per row and concurrency; each starts a saga.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32], help="Requests in flight.")
    parser.add_argument("--place-alone", action="store_true",
                        help="Also time place_order without the 3 queries the POST answer is made from.")
    args = parser.parse_args()
    if min(args.requests, args.orders) < max(args.concurrency):
        parser.error("--requests and --orders must be at least the highest --concurrency")
    sys.exit(asyncio.run(main(args.requests, args.orders, args.concurrency, args.place_alone)))
