"""The commands a person sends, on the real stack: refused before anything is recorded.

Paying and cancelling are Updates of the saga, deciding an incident an Update of the incident. A
validator refuses what can no longer be done (pay twice, cancel twice, resolve without a note, decide
twice), and an order or incident that has ended refuses everything: the caller gets the reason as
`OrderCommandRefused`, one line, and the workflow's history is exactly what it was — a refused Update
writes nothing, so each refusal here is sent to a settled workflow (nothing in flight) and its history
compared event for event. Placing with the payment is one call (Update-with-Start): the saga's first
workflow task already carries the accepted `pay`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from core.settings import Settings
from services.order.api import (
    OrderCommandRefused,
    PlacedOrder,
    cancel_order,
    new_order,
    pay_order,
    place_order,
)
from services.order.incident_desk import find_incident, resolve_incident, retry_incident
from services.provisioning.simulator import held_since, inject_fault, release_fault
from tests.support.saga_harness import SagaHarness, fast_timings
from tests.support.saga_incidents import event_types, history, incident_open, parked_on_incident, settled
from workers.saga import build_saga_worker
from workflows.contracts import OrderResult
from workflows.incident import MAX_NOTE, OrderIncidentWorkflow
from workflows.metadata import incident_workflow_id
from workflows.order_fulfillment import OrderFulfillmentWorkflow
from workflows.states import SagaStatus

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def harness(stack, settings: Settings) -> AsyncIterator[SagaHarness]:
    async with SagaHarness(settings) as running:
        yield running


async def _finish(placed: PlacedOrder, timeout: float = 90) -> OrderResult:
    return await asyncio.wait_for(placed.handle.result(), timeout)


_EMPTY_TASK = ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED"]


async def _refused(command: Callable[[], Awaitable[object]], *unchanged: WorkflowHandle, match: str) -> str:
    """`command` raises OrderCommandRefused matching `match`, in one line, and records nothing in the
    history of any of `unchanged` (each settled first, so only the command could add to it): no event
    but, at most, the empty workflow task that ran the refusing validator. (The server usually drops
    that task; it keeps it when the saga's only completed task so far accepted an Update, as when an
    order paid at once runs up to its provisioning wait in its first task.)"""
    before = [await settled(handle) for handle in unchanged]
    with pytest.raises(OrderCommandRefused, match=match) as refused:
        await command()
    message = str(refused.value)
    assert "\n" not in message, f"not one line: {message!r}"
    for handle, events in zip(unchanged, before, strict=True):
        after = await history(handle)
        assert [(e.event_id, e.event_type) for e in after[:len(events)]] == [
            (e.event_id, e.event_type) for e in events]
        added = event_types(after[len(events):])
        assert added in ([], _EMPTY_TASK), f"the refused command changed {handle.id}'s history: {added}"
    return message


async def _held_in_provisioning(harness: SagaHarness, name: str) -> PlacedOrder:
    """A paid order whose provisioning is provably under way (its first create held), so the saga
    waits with nothing in flight for as long as the test needs. The hold also holds Provisioning's
    consumer: the test releases it in any case."""
    assert harness.client is not None
    placed = await harness.place(name, pay=False)
    inject_fault(harness.engine, placed.order.order_id, "network", "hold", delay_ms=120_000)
    try:
        assert await pay_order(harness.client, placed.order.workflow_id) == "payment recorded"
        for _ in range(1200):
            if held_since(harness.engine, placed.order.order_id, "network") is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("provisioning never reached the network")
        assert (await placed.handle.query(OrderFulfillmentWorkflow.status)).status == "provisioning"
    except BaseException:
        release_fault(harness.engine, placed.order.order_id, "network")
        raise
    return placed


async def _delivered(harness: SagaHarness, name: str) -> PlacedOrder:
    placed = await harness.place(name)
    assert (await _finish(placed)).status == "delivered"
    return placed


async def test_paying_twice_is_refused_before_anything_is_recorded(harness: SagaHarness) -> None:
    assert harness.client is not None
    placed = await _held_in_provisioning(harness, "twice")
    workflow_id = placed.order.workflow_id
    try:
        message = await _refused(lambda: pay_order(harness.client, workflow_id), placed.handle,
                                 match="already paid")
        assert message.startswith(workflow_id)
        await _refused(lambda: pay_order(harness.client, workflow_id, declined=True), placed.handle,
                       match="already paid")
        with pytest.raises(LookupError,
                           match=r"has no open incident \(it is provisioning, step awaiting-provisioning\)"):
            await find_incident(harness.client, workflow_id)
    finally:  # a held create holds Provisioning's consumer: never leave it for the next test
        release_fault(harness.engine, placed.order.order_id, "network")
    assert (await _finish(placed)).status == "delivered"
    accepted = [e for e in await history(placed.handle)
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for e in accepted] == ["pay"]  # the first payment only


async def test_cancelling_twice_is_refused_and_a_cancelled_order_takes_no_payment(
    harness: SagaHarness,
) -> None:
    assert harness.client is not None
    placed = await _held_in_provisioning(harness, "cancel2")
    workflow_id = placed.order.workflow_id
    try:
        accepted = await cancel_order(harness.client, workflow_id, note="changed my mind")
        assert accepted.startswith("cancel recorded at provisioning")
        await _refused(lambda: cancel_order(harness.client, workflow_id), placed.handle,
                       match="already being cancelled")
        await _refused(lambda: pay_order(harness.client, workflow_id), placed.handle, match="already paid")
    finally:
        release_fault(harness.engine, placed.order.order_id, "network")
    assert (await _finish(placed)).status == "cancelled"
    await _refused(lambda: cancel_order(harness.client, workflow_id), placed.handle,
                   match=r"has already finished \(cancelled\): nothing to cancel")


async def test_paying_an_order_cancelled_before_payment_is_refused(harness: SagaHarness) -> None:
    assert harness.client is not None
    placed = await harness.place("unpaid", pay=False)
    workflow_id = placed.order.workflow_id
    await cancel_order(harness.client, workflow_id)
    assert (await _finish(placed)).status == "cancelled"

    for declined in (False, True):
        await _refused(lambda declined=declined: pay_order(harness.client, workflow_id, declined=declined),
                       placed.handle,
                       match=rf"^{workflow_id}: the order has already finished \(cancelled\): "
                             r"nothing to pay$")


async def test_cancelling_a_delivered_order_is_refused(harness: SagaHarness) -> None:
    assert harness.client is not None
    placed = await _delivered(harness, "kept")
    await _refused(lambda: cancel_order(harness.client, placed.order.workflow_id, note="too late"),
                   placed.handle, match=r"has already finished \(delivered\): nothing to cancel")


async def test_paying_an_order_that_has_ended_is_refused(harness: SagaHarness) -> None:
    assert harness.client is not None
    delivered = await _delivered(harness, "paid")
    await _refused(lambda: pay_order(harness.client, delivered.order.workflow_id), delivered.handle,
                   match=r"has already finished \(delivered\): nothing to pay")
    declined = await harness.place("declined", fail_at="payment")
    assert (await _finish(declined)).status == "payment_failed"
    await _refused(lambda: pay_order(harness.client, declined.order.workflow_id), declined.handle,
                   match=r"has already finished \(payment_failed\): nothing to pay")


async def test_commands_for_an_unknown_order_are_a_lookup_error(harness: SagaHarness) -> None:
    assert harness.client is not None
    unknown = f"order-{harness.tenant('nobody')}-{uuid.uuid4()}"
    with pytest.raises(LookupError, match=rf"^no such workflow {unknown} "):
        await pay_order(harness.client, unknown)
    with pytest.raises(LookupError, match=rf"^no such workflow {unknown} "):
        await cancel_order(harness.client, unknown)
    with pytest.raises(LookupError, match=rf"^no saga {unknown} "):
        await find_incident(harness.client, unknown)


async def test_a_command_nobody_answers_is_a_one_line_timeout(harness: SagaHarness) -> None:
    """A saga on a task queue no worker polls: the Update's wait is cut at `timeout_s` (which the
    SDK reports as its own error, not asyncio's) and becomes one line naming the order."""
    assert harness.client is not None
    order = new_order(harness.tenant("unanswered"), "vm-standard-2", timings=fast_timings())
    placed = await place_order(harness.client, order, pay=False, task_queue=f"nobody-{uuid.uuid4().hex[:8]}")
    try:
        expected = rf"^{order.workflow_id}: no saga worker answered within 2 s; "
        with pytest.raises(TimeoutError, match=expected):
            await cancel_order(harness.client, order.workflow_id, timeout_s=2)
    finally:
        await placed.handle.terminate("test over")


async def test_placing_rides_out_a_cut_wait_until_a_saga_worker_records_the_payment(
        harness: SagaHarness, settings: Settings) -> None:
    """Placing with the payment waits for a saga worker to record it; a busy server cuts that wait
    (here: each wait cut after 1 s, no worker on the queue yet). The order is placed by then, so the
    payment goes again under the same Update id until a worker comes: recorded once, order delivered."""
    assert harness.client is not None
    queue = f"late-{uuid.uuid4().hex[:8]}"
    order = new_order(harness.tenant("late-worker"), "vm-standard-2", timings=fast_timings())
    placing = asyncio.create_task(place_order(harness.client, order, task_queue=queue, rpc_timeout_s=1))
    try:
        await asyncio.sleep(4)  # several cut waits
        assert not placing.done(), f"placing gave up while no worker answered: {placing.exception()!r}"
        async with build_saga_worker(harness.client, settings, task_queue=queue):
            placed = await asyncio.wait_for(placing, 60)
            result = await _finish(placed)
    finally:
        placing.cancel()
    assert result.status is SagaStatus.DELIVERED
    accepted = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                for e in await history(placed.handle)
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert accepted == ["pay"], f"the payment was recorded other than once: {accepted}"


async def test_placing_with_nothing_started_is_a_one_line_timeout(harness: SagaHarness) -> None:
    """No worker ever comes: after `timeout_s` the caller gets one line naming the order."""
    assert harness.client is not None
    order = new_order(harness.tenant("no-worker"), "vm-standard-2", timings=fast_timings())
    with pytest.raises(TimeoutError, match=rf"^{order.workflow_id}: placed, but no saga worker recorded"):
        await place_order(harness.client, order, task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
                          timeout_s=3, rpc_timeout_s=1)
    await harness.client.get_workflow_handle(order.workflow_id).terminate("test over")


def _first_task_accepts(events: list, update: str) -> None:
    """The history opens with the start and one workflow task, and the Update accepted right after
    it, sequenced by that task — before the saga did anything; no payment comes as a signal (the
    only signals are the bridge's `domain_event`s, Provisioning's answers)."""
    assert event_types(events[:5]) == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    ]
    accepted = events[4].workflow_execution_update_accepted_event_attributes
    assert accepted.accepted_request.input.name == update
    assert accepted.accepted_request_sequencing_event_id == events[1].event_id  # the first task
    names = event_types(events)
    assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 1
    signals = {e.workflow_execution_signaled_event_attributes.signal_name
               for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED}
    assert signals <= {"domain_event"}, signals
    # … before the saga's first command (a patch marker, then its first publish).
    first_command = min(names.index(kind) for kind in ("ACTIVITY_TASK_SCHEDULED", "MARKER_RECORDED")
                        if kind in names)
    assert names.index("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") < first_command


async def test_placing_with_the_payment_is_one_update_with_start(harness: SagaHarness) -> None:
    placed = await _delivered(harness, "withstart")
    _first_task_accepts(await history(placed.handle), "pay")
    declined = await harness.place("withstart-declined", fail_at="payment")
    assert (await _finish(declined)).status == "payment_failed"
    _first_task_accepts(await history(declined.handle), "decline_payment")


async def test_an_incident_refuses_what_a_person_cannot_decide(harness: SagaHarness) -> None:
    """Resolving without a note, deciding twice and deciding a closed incident are refused; the
    incident's and the saga's histories stay as they were."""
    client = harness.client
    assert client is not None
    placed = await harness.place("desk", fail_at="refund")  # the refund is declined for good
    saga_id = placed.order.workflow_id
    outcome, _ticket = await incident_open(client, placed.handle)
    first = incident_workflow_id(saga_id, 1)
    assert outcome.incident_id == first and await find_incident(client, saga_id) == first
    await parked_on_incident(placed.handle, first)
    incident = client.get_workflow_handle(first)

    for note in ("", "   "):
        await _refused(lambda note=note: resolve_incident(client, saga_id, note=note),
                       incident, placed.handle, match="resolve needs --note")
    too_long = f"the note has {MAX_NOTE + 1} characters; at most {MAX_NOTE}"
    await _refused(lambda: resolve_incident(client, first, note="x" * (MAX_NOTE + 1)),
                   incident, placed.handle, match=too_long)

    assert await retry_incident(client, saga_id) == "the saga retries the failed undos, newest first"
    # A second decision on the same incident: refused, whether it still runs or already closed.
    await _refused(lambda: resolve_incident(client, first, note="fixed by hand"), incident,
                   match=rf"^{first}: (the incident was already decided: retry|the incident is closed)")

    # The retry was declined again: incident 2. Two people decide at once: exactly one wins.
    outcome, _ticket = await incident_open(client, placed.handle, 2)
    second = incident_workflow_id(saga_id, 2)
    assert outcome.incident_id == second
    await parked_on_incident(placed.handle, second)
    decided = await asyncio.gather(
        resolve_incident(client, second, note="refunded by bank transfer", by="anna"),
        resolve_incident(client, second, note="refunded in cash", by="ben"),
        return_exceptions=True,
    )
    won = [i for i, answer in enumerate(decided) if isinstance(answer, str)]
    lost = [answer for answer in decided if isinstance(answer, BaseException)]
    assert len(won) == 1 and len(lost) == 1, decided
    assert isinstance(lost[0], OrderCommandRefused) and "\n" not in str(lost[0])
    assert any(reason in str(lost[0])
               for reason in ("the incident was already decided: resolve", "the incident is closed"))
    result = await _finish(placed)
    assert result.status == "resolved_manually"
    decision = await client.get_workflow_handle_for(OrderIncidentWorkflow.run, second).result()
    assert decision.action == "resolve" and decision.by == ("anna", "ben")[won[0]]

    for reference, decide in ((first, retry_incident), (second, retry_incident)):
        await _refused(lambda decide=decide, reference=reference: decide(client, reference),
                       client.get_workflow_handle(reference),
                       placed.handle, match=rf"^{reference}: the incident is closed")
    await _refused(lambda: resolve_incident(client, second, note="again"), placed.handle,
                   match=rf"^{second}: the incident is closed")
    ended = rf"^{saga_id} has no open incident \(it is resolved_manually, step done\)"
    with pytest.raises(LookupError, match=ended):
        await retry_incident(client, saga_id)
