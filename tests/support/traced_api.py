"""One order placed through the HTTP API and fulfilled by every worker of the saga, in a process of
its own with whatever `CF_TRACE_EXPORTER` and `OTEL_EXPORTER_OTLP_*` its environment sets (tracing is
configured once per process).

The process runs the saga harness (saga worker, bridge, provisioning, billing and notification
consumers, scoped to tenants `t<tag>-…`), Identity's outbox relay and the API on a free port with the
harness's task queue; it creates a user and an API key in tenant `t<tag>-a`, waits until the API's
projection knows the key, sends `POST /v1/orders` with the `traceparent` given (none when it is `-`),
polls the order until it is delivered and gives the notification consumer a few seconds for
`order.fulfilled`. Prints one JSON line (order id, status); exits 0 once the order was delivered. The
tracer provider is shut down (its spans flushed) before the process exits.

Usage: python -m tests.support.traced_api <tag> <traceparent|->
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable

import httpx
from opentelemetry import trace

from core.settings import get_settings
from core.tracing import configure_tracing
from tests.support.api_harness import ApiHarness
from workflows.states import FINAL_STATUSES

_DELIVERED_TIMEOUT_S = 90.0
_KEY_TIMEOUT_S = 60.0
_NOTIFICATION_GRACE_S = 4.0
_SETTLED = {status.value for status in FINAL_STATUSES}


async def _poll(client: httpx.AsyncClient, path: str, timeout: float,
                done: Callable[[httpx.Response], bool]) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path)
        if done(response) or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.3)


async def main(tag: str, traceparent: str | None) -> int:
    configure_tracing("traced-api")
    settings = get_settings()
    async with ApiHarness(settings, tag) as api:
        try:
            key = await api.issue_key("a", usable_within_s=_KEY_TIMEOUT_S)
        except TimeoutError as exc:
            print(f"the API never accepted the key: {exc}", file=sys.stderr)
            return 1
        async with api.client(headers=key.headers) as client:
            headers = {"traceparent": traceparent} if traceparent else {}
            body = {"planId": "vm-small-1", "payment": {"outcome": "authorized"}}
            placed = await client.post("/v1/orders", headers=headers, json=body)
            if placed.status_code != 201:
                print(f"POST /v1/orders: {placed.status_code} {placed.text}", file=sys.stderr)
                return 1
            order_id = placed.json()["orderId"]
            final = await _poll(client, f"/v1/orders/{order_id}", _DELIVERED_TIMEOUT_S,
                                lambda r: r.status_code == 200 and r.json()["status"] in _SETTLED)
            status = final.json().get("status") if final.status_code == 200 else final.status_code
            await asyncio.sleep(_NOTIFICATION_GRACE_S)  # Notification hears order.fulfilled
        print(json.dumps({"orderId": order_id, "status": status}))
        return 0 if status == "delivered" else 1


def run(tag: str, traceparent: str | None) -> int:
    try:
        return asyncio.run(main(tag, traceparent))
    finally:
        provider = trace.get_tracer_provider()
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            shutdown()  # flushes the batch processor's spans to the exporter


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], None if sys.argv[2] == "-" else sys.argv[2]))
