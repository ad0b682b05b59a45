"""Records a workflow history from a real run on the local stack into tests/histories/NAME.json.

    .venv/bin/cloud-factory stack up
    .venv/bin/python -m tests.tools.record_history success      # or: all

Each scenario runs the real saga worker, bridge and services (isolated by a fresh tag) against the
real Temporal server, Kafka and PostgreSQL; the JSON it writes is what `tests/replay` replays with
`temporalio.worker.Replayer`. `order_created` is the first release's history and can no longer be
recorded (the workflow now waits for payment); it stays committed to prove the old path replays.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.settings import get_settings
from messaging.wiring import ensure_catalog_topics
from services.billing.gateway import inject_gateway_fault
from services.order.api import PlacedOrder, cancel_order, pay_order
from services.provisioning.simulator import held_since, inject_fault, release_fault
from tests.support.saga_harness import SagaHarness
from workflows.contracts import InboundEvent

HISTORIES = Path(__file__).resolve().parents[1] / "histories"

EXPECTED_STATUS = {
    "success": "delivered",
    "provisioning_failure": "compensated",
    "payment_failure": "payment_failed",
    "customer_cancel": "cancelled",
    "compensation_failure": "compensation_failed",
    "every_undo_failure": "compensation_failed",
    "trusted_success": "delivered",
    "forged_reply_ignored": "compensated",
}


async def _success(h: SagaHarness) -> PlacedOrder:
    return await h.place("history")


async def _provisioning_failure(h: SagaHarness) -> PlacedOrder:
    return await h.place("history", fail_at="vps")


async def _payment_failure(h: SagaHarness) -> PlacedOrder:
    return await h.place("history", fail_at="payment")


async def _compensation_failure(h: SagaHarness) -> PlacedOrder:
    return await h.place("history", fail_at="refund")


async def _every_undo_failure(h: SagaHarness) -> PlacedOrder:
    """Deprovisioning never confirmed and the refund declined: both undos tried (`every-undo`)."""
    placed = await h.place("history", fail_at="deprovision")
    inject_gateway_fault(h.engine, placed.order.order_id, "refund")  # asked for after the windows
    return placed


async def _customer_cancel(h: SagaHarness) -> PlacedOrder:
    """Paid, cancelled while provisioning (held at the disk), so compensation runs both undos."""
    placed = await h.place("history", pay=False)
    inject_fault(h.engine, placed.order.order_id, "disk", "hold", delay_ms=120_000)
    assert h.client is not None
    await pay_order(h.client, placed.order.workflow_id)
    deadline = time.monotonic() + 60
    while held_since(h.engine, placed.order.order_id, "disk") is None:
        if time.monotonic() > deadline:
            raise TimeoutError("provisioning never reached the disk")
        await asyncio.sleep(0.05)
    await cancel_order(h.client, placed.order.workflow_id, note="recorded cancel")
    release_fault(h.engine, placed.order.order_id, "disk")
    return placed


async def _forged_reply_ignored(h: SagaHarness) -> PlacedOrder:
    """VPS creation fails; a fake `provisioning.completed` answering no ask of the saga reaches it as a
    signal (as through a bridge that could not ask the saga first): ignored, the saga compensates."""
    placed = await h.place("history", fail_at="vps")
    forged = InboundEvent(
        event_id=str(uuid.uuid4()), event_type="provisioning.completed", version="v3",
        data={"orderId": placed.order.order_id, "attempts": 1, "endpoints": [],
              "resources": [{"resourceId": str(uuid.uuid4()), "kind": "vm", "region": "eu-west-1",
                             "name": "vps"}]},
        causation_id=str(uuid.uuid4()), tenant_id=placed.order.tenant_id)
    await placed.handle.signal("domain_event", forged)
    return placed


SCENARIOS: dict[str, Callable[[SagaHarness], Awaitable[PlacedOrder]]] = {
    "success": _success,
    "provisioning_failure": _provisioning_failure,
    "payment_failure": _payment_failure,
    "customer_cancel": _customer_cancel,
    "compensation_failure": _compensation_failure,
    "every_undo_failure": _every_undo_failure,
    "trusted_success": _success,  # the same path with `trusted-replies`: answers checked against asks
    "forged_reply_ignored": _forged_reply_ignored,
}


async def record(name: str, out_dir: Path = HISTORIES) -> Path:
    settings = get_settings()
    ensure_catalog_topics(settings)
    async with SagaHarness(settings) as harness:
        placed = await SCENARIOS[name](harness)
        result = await asyncio.wait_for(placed.handle.result(), 120)
        if result.status != EXPECTED_STATUS[name]:
            raise RuntimeError(f"scenario {name} ended {result.status}, expected {EXPECTED_STATUS[name]}")
        history = await placed.handle.fetch_history()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(history.to_json())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=[*sorted(SCENARIOS), "all"])
    args = parser.parse_args()
    for name in sorted(SCENARIOS) if args.scenario == "all" else [args.scenario]:
        print(asyncio.run(record(name)))


if __name__ == "__main__":
    main()
