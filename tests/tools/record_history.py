"""Records a workflow history from a real run on the local stack into tests/histories/NAME.json.

    .venv/bin/cloud-factory stack up
    .venv/bin/python -m tests.tools.record_history incident_retried     # or: all

Each scenario runs the real saga worker, bridge and services (isolated by a fresh tag) against the
real Temporal server, Kafka and PostgreSQL; the JSON it writes is what `tests/replay` replays with
`temporalio.worker.Replayer`. A scenario whose saga opens incidents (an undo failed) acts as the
person would: for each incident, in order, one decision (fix the fault and `retry`, `retry` without
fixing, `resolve` with a note); each incident's own `OrderIncident` history is written beside the
saga's, as NAME.incident-<attempt>.json.

`KEPT` are the paths of earlier releases (recorded before `local-steps`, the oldest before
`operator-view`, `order_created` before the full saga): their committed histories are what proves
those paths still replay, and today's code would record another path under the same name, so they
are never written into tests/histories again; `--out DIR` runs one elsewhere, to see what the path
looks like today. A scenario marked `own_broker` runs on a Kafka broker of the recording's own
(stopped and started by the scenario; the stack's broker is never touched).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from cloud_factory.stack.kafka import KafkaComponent
from core.settings import Settings, get_settings
from messaging.wiring import ensure_catalog_topics
from services.billing.gateway import clear_gateway_faults, inject_gateway_fault
from services.order.api import Outcome, PlacedOrder, cancel_order, pay_order, wait_for_outcome
from services.order.incident_desk import resolve_incident, retry_incident
from services.provisioning.simulator import clear_faults, held_since, inject_fault, release_fault
from tests.support.private_broker import own_broker, start_broker
from tests.support.saga_harness import SagaHarness
from workflows.contracts import InboundEvent
from workflows.incident import OrderIncidentWorkflow
from workflows.order_fulfillment import OrderFulfillmentWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
#: How long one settle (to the end, or to the next incident) may take; the slowest waits out every
#: compensation window of an undo that is never confirmed (2 + 4 + 8 + 16 s) before it opens one.
SETTLE_S = 180.0
#: The note `incident_resolved` records: what the person says they did by hand.
RESOLUTION_NOTE = "refunded by hand in the PSP console (ticket PSP-4711)"

Place = Callable[[SagaHarness], Awaitable[PlacedOrder]]
Decide = Callable[[SagaHarness, PlacedOrder, str], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    """How to start the saga, how it must end, and the decision a person makes on each incident."""

    place: Place
    expected: str
    decisions: tuple[Decide, ...] = ()
    own_broker: bool = False


# ------------------------------------------------------------------ placing


async def _success(h: SagaHarness) -> PlacedOrder:
    """Placed and paid in one call (`place_order(pay=True)`: Update-with-Start of `pay`)."""
    return await h.place("history")


async def _provisioning_failure(h: SagaHarness) -> PlacedOrder:
    return await h.place("history", fail_at="vps")


async def _payment_failure(h: SagaHarness) -> PlacedOrder:
    """Placed with the payment declined in the same call (Update-with-Start of `decline_payment`)."""
    return await h.place("history", fail_at="payment")


async def _compensation_failure(h: SagaHarness) -> PlacedOrder:
    """The VPS fails, the resources are released, the refund is declined."""
    return await h.place("history", fail_at="refund")


async def _every_undo_failure(h: SagaHarness) -> PlacedOrder:
    """Deprovisioning never confirmed and the refund declined: both undos tried (`every-undo`)."""
    placed = await h.place("history", fail_at="deprovision")
    inject_gateway_fault(h.engine, placed.order.order_id, "refund")  # asked for after the windows
    return placed


async def _customer_cancel(h: SagaHarness) -> PlacedOrder:
    """Placed unpaid, paid with the `pay` Update, cancelled with the `request_cancel` Update while
    provisioning is held at the disk, so compensation runs both undos."""
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


async def _kafka_refused(h: SagaHarness) -> PlacedOrder:
    """Placed unpaid; the broker (the recording's own) is stopped and the order paid, so the local
    publish of `order.payment-confirmed` fails and the regular activity takes the step over; the
    broker comes back once that activity runs, and the saga delivers."""
    placed = await h.place("history", pay=False)
    handle = placed.handle
    deadline = time.monotonic() + 60
    while (await handle.query(OrderFulfillmentWorkflow.status)).step != "awaiting-payment":
        if time.monotonic() > deadline:
            raise TimeoutError("the saga never waited for its payment")
        await asyncio.sleep(0.1)
    kafka = KafkaComponent(h.settings)
    await asyncio.to_thread(kafka.stop)
    await pay_order(_client(h), placed.order.workflow_id)
    deadline = time.monotonic() + 120
    while not [a for a in (await handle.describe()).raw_description.pending_activities
               if a.activity_type.name == "publish_event"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the failed local publish was never handed to the regular activity")
        await asyncio.sleep(0.2)
    await asyncio.to_thread(start_broker, kafka)
    return placed


# ------------------------------------------------------------------ a person's decisions


def _client(h: SagaHarness) -> Client:
    assert h.client is not None
    return h.client


async def _fix_refund_and_retry(h: SagaHarness, placed: PlacedOrder, incident_id: str) -> None:
    """The card works again: the retried refund goes through."""
    clear_gateway_faults(h.engine, placed.order.order_id)
    await retry_incident(_client(h), incident_id, by="recorder")


async def _retry_unfixed(h: SagaHarness, placed: PlacedOrder, incident_id: str) -> None:
    """Retried before the cause was fixed: every undo fails again and the next incident opens."""
    await retry_incident(_client(h), incident_id, by="recorder")


async def _fix_all_and_retry(h: SagaHarness, placed: PlacedOrder, incident_id: str) -> None:
    """The provider deletes again and the card works: both retried undos go through."""
    clear_faults(h.engine, placed.order.order_id)
    clear_gateway_faults(h.engine, placed.order.order_id)
    await retry_incident(_client(h), incident_id, by="recorder")


async def _resolve_by_hand(h: SagaHarness, placed: PlacedOrder, incident_id: str) -> None:
    await resolve_incident(_client(h), incident_id, note=RESOLUTION_NOTE, by="recorder")


# ------------------------------------------------------------------ the scenarios

#: The paths of today's code (`local-steps`): `all` records these.
SCENARIOS: dict[str, Scenario] = {
    "local_success": Scenario(_success, "delivered"),
    "local_payment_declined": Scenario(_payment_failure, "payment_failed"),
    "local_update_cancel": Scenario(_customer_cancel, "cancelled"),
    "local_incident_retried": Scenario(_compensation_failure, "compensated", (_fix_refund_and_retry,)),
    "local_incident_resolved": Scenario(_compensation_failure, "resolved_manually", (_resolve_by_hand,)),
    "local_incident_retried_twice": Scenario(
        _every_undo_failure, "compensated", (_retry_unfixed, _fix_all_and_retry)
    ),
    "local_kafka_refused": Scenario(_kafka_refused, "delivered", own_broker=True),
}

#: Recorded by earlier releases; today's code takes another path under these names (local publishes,
#: Update-with-Start, Updates instead of signals, an incident instead of ending), so they are never
#: recorded over. The compensation_failed ones now stop at their incident: recorded there, then
#: terminated.
KEPT: dict[str, Scenario] = {
    "success": Scenario(_success, "delivered"),
    "provisioning_failure": Scenario(_provisioning_failure, "compensated"),
    "payment_failure": Scenario(_payment_failure, "payment_failed"),
    "customer_cancel": Scenario(_customer_cancel, "cancelled"),
    "compensation_failure": Scenario(_compensation_failure, "compensation_failed"),
    "every_undo_failure": Scenario(_every_undo_failure, "compensation_failed"),
    "trusted_success": Scenario(_success, "delivered"),
    "forged_reply_ignored": Scenario(_forged_reply_ignored, "compensated"),
    # `operator-view`, before `local-steps`:
    "operator_success": Scenario(_success, "delivered"),
    "operator_payment_declined": Scenario(_payment_failure, "payment_failed"),
    "update_cancel": Scenario(_customer_cancel, "cancelled"),
    "incident_retried": Scenario(_compensation_failure, "compensated", (_fix_refund_and_retry,)),
    "incident_resolved": Scenario(_compensation_failure, "resolved_manually", (_resolve_by_hand,)),
    "incident_retried_twice": Scenario(
        _every_undo_failure, "compensated", (_retry_unfixed, _fix_all_and_retry)
    ),
}
#: Recorded by the first release; no scenario can take that path any more.
UNRECORDABLE = ("order_created",)

EXPECTED_STATUS = {name: scenario.expected for name, scenario in {**KEPT, **SCENARIOS}.items()}


# ------------------------------------------------------------------ recording


async def _opened(client: Client, incident_id: str, timeout: float) -> None:
    """Wait until the incident runs and holds its ticket: the saga names it just before starting it,
    and the incident's validators refuse a decision until its first task has run."""
    handle = client.get_workflow_handle(incident_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await handle.query(OrderIncidentWorkflow.ticket) is not None:
                return
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"incident {incident_id} never opened")
        await asyncio.sleep(0.1)


async def _settle(handle: WorkflowHandle, decided: str | None) -> Outcome:
    """The saga's next outcome: its end, or an incident other than the one just `decided` (the saga
    names the next one only after the decided one has returned)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        outcome = await wait_for_outcome(handle, timeout=max(1.0, deadline - time.monotonic()))
        if decided is None or outcome.incident_id != decided:
            return outcome
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} still waits on {decided} after it was decided")
        await asyncio.sleep(0.2)


async def record(name: str, out_dir: Path = HISTORIES) -> list[Path]:
    """Run scenario `name` and write its saga's history and each of its incidents'; the paths written."""
    scenario = SCENARIOS.get(name) or KEPT[name]
    settings = get_settings()
    with contextlib.ExitStack() as scope:
        if scenario.own_broker:
            directory = Path(scope.enter_context(tempfile.TemporaryDirectory(prefix="record-")))
            settings, _ = scope.enter_context(own_broker(settings, directory, f"rec{uuid.uuid4().hex[:8]}"))
        return await _record(scenario, name, settings, out_dir)


async def _record(scenario: Scenario, name: str, settings: Settings, out_dir: Path) -> list[Path]:
    ensure_catalog_topics(settings)
    async with SagaHarness(settings) as harness:
        client = _client(harness)
        placed = await scenario.place(harness)
        incidents: list[str] = []
        outcome = await _settle(placed.handle, None)
        for decide in scenario.decisions:
            if outcome.incident_id is None:
                raise RuntimeError(
                    f"scenario {name} ended {outcome.status} before incident {len(incidents) + 1}"
                )
            incidents.append(outcome.incident_id)
            await _opened(client, outcome.incident_id, SETTLE_S)
            await decide(harness, placed, outcome.incident_id)
            outcome = await _settle(placed.handle, outcome.incident_id)
        left_waiting = outcome.incident_id
        if left_waiting is not None:
            incidents.append(left_waiting)
            await _opened(client, left_waiting, SETTLE_S)
        if outcome.status != scenario.expected:
            raise RuntimeError(f"scenario {name} ended {outcome.status}, expected {scenario.expected}")
        if left_waiting is not None and scenario.decisions:
            raise RuntimeError(f"scenario {name} still waits on {left_waiting} after every decision")
        history = await placed.handle.fetch_history()
        if left_waiting is not None:  # a kept compensation_failed path: recorded where it now waits
            await placed.handle.terminate("recorded at its incident")
        children = [await client.get_workflow_handle(incident).fetch_history() for incident in incidents]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.json"]
    paths[0].write_text(history.to_json())
    for attempt, child in enumerate(children, start=1):
        path = out_dir / f"{name}.incident-{attempt}.json"
        path.write_text(child.to_json())
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=[*sorted(SCENARIOS), *sorted(KEPT), *UNRECORDABLE, "all"])
    parser.add_argument("--out", type=Path, default=HISTORIES,
                        help="directory to write to (default tests/histories; required for a KEPT path)")
    args = parser.parse_args()
    names = sorted(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for name in names:
        if name in UNRECORDABLE:
            parser.error(f"{name} is the first release's path: no scenario takes it any more")
        if name in KEPT and args.out.resolve() == HISTORIES.resolve():
            parser.error(f"tests/histories/{name}.json proves an earlier release's path replays; "
                         f"record today's {name} elsewhere with --out DIR")
    for name in names:
        for path in asyncio.run(record(name, args.out)):
            print(path)


if __name__ == "__main__":
    main()
