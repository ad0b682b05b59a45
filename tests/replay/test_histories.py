"""Every committed history, recorded from a real run, still replays against today's workflow code,
and the replayer does catch a change that would break running sagas."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.worker import Replayer

from core.temporal import DATA_CONVERTER
from schemas.payloads.order import OrderCancellationReason
from tests.tools.record_history import EXPECTED_STATUS, KEPT, RESOLUTION_NOTE, SCENARIOS, UNRECORDABLE
from workers.replay import load_history
from workflows.contracts import (
    CancelRequest,
    CompensationEntry,
    InboundEvent,
    IncidentDecision,
    IncidentTicket,
    OrderRequest,
    OrderResult,
    PaymentConfirmation,
    PaymentFailure,
    PublishedEvent,
    PublishRequest,
    order_workflow_id,
)
from workflows.incident import OrderIncidentWorkflow
from workflows.order_fulfillment import (
    PATCH_EVERY_UNDO,
    PATCH_FULL_SAGA,
    PATCH_LOCAL_STEPS,
    PATCH_OPERATOR_VIEW,
    PATCH_TRUSTED_REPLIES,
    OrderFulfillmentWorkflow,
)
from workflows.ports import PublishingPort
from workflows.registry import SAGA_WORKFLOWS
from workflows.states import SagaStatus, SagaStep

DIRECTORY = Path(__file__).resolve().parents[1] / "histories"
HISTORIES = sorted(DIRECTORY.glob("*.json"))
#: Recorded with `operator-view`, before `local-steps`.
OPERATOR = {"operator_success", "operator_payment_declined", "update_cancel", "incident_retried",
            "incident_resolved", "incident_retried_twice"}
#: Recorded before `operator-view` (`order_created` before the full saga): the paths of earlier releases.
OLD = {*KEPT, *UNRECORDABLE} - OPERATOR
#: Recorded with `local-steps`: the sagas' histories, and each incident's as NAME.incident-<attempt>.
NEW = set(SCENARIOS)
INCIDENTS = {
    f"{prefix}{name}"
    for prefix in ("", "local_")
    for name in ("incident_retried.incident-1", "incident_resolved.incident-1",
                 "incident_retried_twice.incident-1", "incident_retried_twice.incident-2")
}
PATHS = OLD | OPERATOR | NEW | INCIDENTS


def _recorded(text: str, fallback: str) -> WorkflowHistory:
    """The history under its real workflow id (the saga derives its asks' event ids from it): the one
    its start recorded, else derived from the order it was started with."""
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    workflow_id = started.get("workflowId")
    if not workflow_id:
        order = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
        has_order = "tenant_id" in order
        workflow_id = order_workflow_id(order["tenant_id"], order["order_id"]) if has_order else fallback
    return WorkflowHistory.from_json(workflow_id, text)


def _replayer(*workflow_classes: type) -> Replayer:
    """A replayer decoding as every client and worker does (`core.temporal.DATA_CONVERTER`)."""
    return Replayer(workflows=list(workflow_classes), data_converter=DATA_CONVERTER)


def _history(name: str) -> WorkflowHistory:
    return _recorded((DIRECTORY / f"{name}.json").read_text(), name)


async def _failure(workflow_class: type, name: str) -> Exception | None:
    result = await _replayer(workflow_class).replay_workflow(_history(name), raise_on_replay_failure=False)
    return result.replay_failure


def _non_deterministic(failure: Exception | None) -> bool:
    return failure is not None and "nondetermin" in str(failure).lower()


def test_histories_are_committed() -> None:
    """A file for every path the recorder knows, and one per incident its scenarios decide."""
    assert {path.stem for path in HISTORIES} == PATHS
    decided = {f"{name}.incident-{n}" for name, scenario in {**KEPT, **SCENARIOS}.items()
               for n in range(1, len(scenario.decisions) + 1)}
    assert decided == INCIDENTS


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_history_replays(path: Path) -> None:
    """Each history by the class of its type, as `cloud-factory replay` and the workers run them."""
    history = _recorded(path.read_text(), path.stem)
    result = await _replayer(*SAGA_WORKFLOWS).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


@pytest.mark.parametrize("name", sorted(OLD | OPERATOR | NEW))
def test_each_saga_history_ended_as_its_scenario_expects(name: str) -> None:
    expected = "created" if name in UNRECORDABLE else EXPECTED_STATUS[name]
    assert load_history(DIRECTORY / f"{name}.json").outcome == expected


def _workflow_type(name: str) -> str:
    started = json.loads((DIRECTORY / f"{name}.json").read_text())["events"][0]
    return started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]


def test_the_incident_histories_are_the_incident_workflow_s() -> None:
    assert {name for name in PATHS if _workflow_type(name) == "OrderIncident"} == INCIDENTS


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _MemoDroppedWorkflow(OrderFulfillmentWorkflow):
    """A plausible careless edit: stop mirroring status into the memo (one command fewer per step)."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _set(self, status: SagaStatus, step: SagaStep) -> None:
        self._status, self._step = status, step
        workflow.upsert_search_attributes([])


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _UnpatchedWorkflow(OrderFulfillmentWorkflow):
    """The full saga without its `workflow.patched` guard: the first release's history must break."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        self._order = order
        await self._set(SagaStatus.CREATED, SagaStep.ORDER_CREATED)
        created = await self._publish("order-created", order.created_payload(), None)
        return await self._after_created(order, created.event_id)


@pytest.mark.parametrize("name", ["success", "provisioning_failure", "compensation_failure"])
async def test_a_non_deterministic_change_is_caught(name: str) -> None:
    result = await _replayer(_MemoDroppedWorkflow).replay_workflow(
        _history(name), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


async def test_removing_the_patch_guard_breaks_the_first_release_history() -> None:
    result = await _replayer(_UnpatchedWorkflow).replay_workflow(
        _history("order_created"), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


def _patch_ids(name: str) -> list[str]:
    """The `workflow.patched` markers a history recorded, in order."""
    history = json.loads((DIRECTORY / f"{name}.json").read_text())
    key = "markerRecordedEventAttributes"
    payloads = [e[key]["details"]["patch-data"]["payloads"][0] for e in history["events"]
                if key in e and e[key]["markerName"] == "core_patch"]
    return [json.loads(base64.b64decode(p["data"]))["id"] for p in payloads]


def test_only_the_every_undo_history_took_the_new_compensation_path() -> None:
    assert _patch_ids("every_undo_failure") == [PATCH_FULL_SAGA, PATCH_EVERY_UNDO]
    # Recorded before the change: replaying them must keep stopping at the first failed undo.
    assert _patch_ids("compensation_failure") == [PATCH_FULL_SAGA]


def test_the_trusted_histories_took_the_checked_path_and_the_older_ones_did_not() -> None:
    assert _patch_ids("trusted_success") == [PATCH_FULL_SAGA, PATCH_TRUSTED_REPLIES]
    # The fake reply reached the saga in its first task, before `run`: the check was decided by it.
    assert _patch_ids("forged_reply_ignored") == [PATCH_TRUSTED_REPLIES, PATCH_FULL_SAGA]
    for name in ("success", "provisioning_failure", "customer_cancel", "every_undo_failure"):
        assert PATCH_TRUSTED_REPLIES not in _patch_ids(name)


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _TrustingWorkflow(OrderFulfillmentWorkflow):
    """The saga before `trusted-replies` took effect: the first event of each type wins, asked or not."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    def _refusal(self, event: InboundEvent) -> str | None:
        return None


async def test_the_forged_reply_history_needs_the_reply_check() -> None:
    """Applying the fake completion would deliver the order instead of compensating: the replayer
    catches the difference, so the check cannot be dropped while such sagas run."""
    result = await _replayer(_TrustingWorkflow).replay_workflow(
        _history("forged_reply_ignored"), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _StopsAtFirstFailureWorkflow(OrderFulfillmentWorkflow):
    """The first release's compensation: after a failed undo, the later ones are not tried."""

    def __init__(self) -> None:
        super().__init__()
        self._gave_up = False

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _undo(
        self,
        entry: CompensationEntry,
        cancel_reason: OrderCancellationReason,
        by_customer: bool,
        cause_id: str,
        *,
        retry: int = 0,
    ) -> tuple[bool, str, str]:
        if self._gave_up:
            return False, cause_id, "not tried"
        ok, last, why = await super()._undo(entry, cancel_reason, by_customer, cause_id, retry=retry)
        self._gave_up = not ok
        return ok, last, why


async def test_the_every_undo_history_needs_every_undo_tried() -> None:
    result = await _replayer(_StopsAtFirstFailureWorkflow).replay_workflow(
        _history("every_undo_failure"), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


# ------------------------------------------------------------------ operator-view


def test_the_operator_view_histories_took_its_path_and_the_older_ones_did_not() -> None:
    """`operator-view` is decided once, at the start of `run`, after the two earlier patches; a
    failed undo also meets `every-undo` (an incident names every failed undo)."""
    for name in OPERATOR | NEW:
        assert _patch_ids(name)[:3] == [PATCH_FULL_SAGA, PATCH_TRUSTED_REPLIES, PATCH_OPERATOR_VIEW], name
    for name in ("incident_retried", "incident_resolved", "incident_retried_twice"):
        assert _patch_ids(name) == [
            PATCH_FULL_SAGA, PATCH_TRUSTED_REPLIES, PATCH_OPERATOR_VIEW, PATCH_EVERY_UNDO], name
        assert _patch_ids(f"local_{name}") == [PATCH_FULL_SAGA, PATCH_TRUSTED_REPLIES, PATCH_OPERATOR_VIEW,
                                               PATCH_LOCAL_STEPS, PATCH_EVERY_UNDO], name
    for name in OLD:
        assert PATCH_OPERATOR_VIEW not in _patch_ids(name), name
    for name in INCIDENTS:
        assert _patch_ids(name) == [], name  # the incident is new: nothing of it is behind a patch


def _events(name: str) -> list[dict]:
    return json.loads((DIRECTORY / f"{name}.json").read_text())["events"]


def _updates(name: str) -> list[str]:
    key = "workflowExecutionUpdateAcceptedEventAttributes"
    return [e[key]["acceptedRequest"]["input"]["name"] for e in _events(name) if key in e]


def _signals(name: str) -> list[str]:
    key = "workflowExecutionSignaledEventAttributes"
    return [e[key]["signalName"] for e in _events(name) if key in e]


def test_people_s_commands_are_updates_in_the_new_histories_and_signals_in_the_old() -> None:
    for prefix in ("", "local_"):
        assert _updates(f"{'local' if prefix else 'operator'}_success") == ["pay"]
        assert _updates(f"{'local' if prefix else 'operator'}_payment_declined") == ["decline_payment"]
        assert _updates(f"{prefix}update_cancel") == ["pay", "request_cancel"]
    for name in OPERATOR | NEW:  # the bridge keeps its signal: events are fire-and-forget
        assert set(_signals(name)) <= {"domain_event"}, name
    assert _updates("customer_cancel") == []
    assert {"confirm_payment", "cancel"} <= set(_signals("customer_cancel"))


@pytest.mark.parametrize(
    "name", ["operator_success", "operator_payment_declined", "local_success", "local_payment_declined"]
)
def test_update_with_start_recorded_the_payment_in_the_saga_s_first_task(name: str) -> None:
    """Placed and paid in one call: the Update is accepted before the first task's commands (the
    patch markers), so the saga never waited for a payment that came later."""
    kinds = [event["eventType"] for event in _events(name)]
    first_marker = kinds.index("EVENT_TYPE_MARKER_RECORDED")
    accepted = kinds.index("EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    assert kinds[:4] == ["EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
                         "EVENT_TYPE_WORKFLOW_TASK_STARTED", "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"]
    assert accepted < first_marker


def _decision(name: str) -> IncidentDecision:
    """The incident's result: what the person decided."""
    completed = _history(name).events[-1].workflow_execution_completed_event_attributes
    payloads = list(completed.result.payloads)
    decision = DATA_CONVERTER.payload_converter.from_payloads(payloads, [IncidentDecision])[0]
    assert isinstance(decision, IncidentDecision)
    return decision


def _ticket(name: str) -> IncidentTicket:
    """The incident's input: what the saga handed to the person."""
    started = _history(name).events[0].workflow_execution_started_event_attributes
    ticket = DATA_CONVERTER.payload_converter.from_payloads(list(started.input.payloads), [IncidentTicket])[0]
    assert isinstance(ticket, IncidentTicket)
    return ticket


def test_each_incident_holds_its_saga_s_ticket_and_the_person_s_decision() -> None:
    for prefix in ("", "local_"):
        _check_incidents(prefix)


def _check_incidents(prefix: str) -> None:
    resolved = _decision(f"{prefix}incident_resolved.incident-1")
    assert (resolved.action, resolved.note, resolved.by) == ("resolve", RESOLUTION_NOTE, "recorder")
    for name in ("incident_retried.incident-1", "incident_retried_twice.incident-1",
                 "incident_retried_twice.incident-2"):
        assert _decision(f"{prefix}{name}").action == "retry", name
    for name in ("incident_retried", "incident_resolved", "incident_retried_twice"):
        saga = f"{prefix}{name}"
        saga_id = _history(saga).workflow_id
        for attempt in (1, 2) if saga.endswith("incident_retried_twice") else (1,):
            incident = f"{saga}.incident-{attempt}"
            ticket = _ticket(incident)
            assert (ticket.saga_workflow_id, ticket.attempt) == (saga_id, attempt)
            assert _history(incident).workflow_id == f"incident-{saga_id}-{attempt}"
    assert [str(step) for step in _ticket(f"{prefix}incident_retried.incident-1").failed_steps] == [
        "refund_payment"]
    assert [str(step) for step in _ticket(f"{prefix}incident_retried_twice.incident-2").failed_steps] == [
        "deprovision_resources", "refund_payment"]


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _NoIncidentWorkflow(OrderFulfillmentWorkflow):
    """The saga before `operator-view` for a failed undo: publish `order.failed` right away and end
    `compensation_failed`, no incident, nobody waited for."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _wait_for_a_person(self, why: object, failures: list, cause_id: str) -> OrderResult:
        return await self._compensation_failed(failures, cause_id)


@pytest.mark.parametrize("name", ["incident_resolved", "incident_retried", "incident_retried_twice",
                                  "local_incident_resolved", "local_incident_retried",
                                  "local_incident_retried_twice"])
async def test_the_incident_histories_need_the_saga_to_wait_for_a_person(name: str) -> None:
    assert _non_deterministic(await _failure(_NoIncidentWorkflow, name))


@pytest.mark.parametrize("name", ["compensation_failure", "every_undo_failure"])
async def test_the_older_failed_compensations_replay_without_any_incident(name: str) -> None:
    """Recorded before `operator-view`: they end `compensation_failed` as they did, so code without
    the incident replays them as well as today's does."""
    assert await _failure(_NoIncidentWorkflow, name) is None


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _OneIncidentWorkflow(OrderFulfillmentWorkflow):
    """A saga that gives up after one retry: the second incident is never opened (as if expired)."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _incident(self, failures: list, *, attempt: int) -> IncidentDecision:
        if attempt > 1:
            return IncidentDecision("expired", "gave up after one retry")
        return await super()._incident(failures, attempt=attempt)


async def test_a_retry_that_fails_again_must_open_the_next_incident() -> None:
    for prefix in ("", "local_"):
        assert _non_deterministic(await _failure(_OneIncidentWorkflow, f"{prefix}incident_retried_twice"))
        for name in ("incident_retried", "incident_resolved"):  # one incident each: the same commands
            assert await _failure(_OneIncidentWorkflow, f"{prefix}{name}") is None, name


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _UpdatesIgnoredWorkflow(OrderFulfillmentWorkflow):
    """The people's Updates accepted but not applied (a handler that records nothing)."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    @workflow.update
    def pay(self, payment: PaymentConfirmation) -> str:
        return "ignored"

    @workflow.update
    def decline_payment(self, failure: PaymentFailure) -> str:
        return "ignored"

    @workflow.update
    def request_cancel(self, request: CancelRequest) -> str:
        return "ignored"


@pytest.mark.parametrize("name", ["operator_success", "operator_payment_declined", "update_cancel",
                                  "local_success", "local_payment_declined", "local_update_cancel"])
async def test_the_update_histories_need_the_updates_applied(name: str) -> None:
    assert _non_deterministic(await _failure(_UpdatesIgnoredWorkflow, name))


@pytest.mark.parametrize("name", ["success", "payment_failure", "customer_cancel"])
async def test_the_signal_histories_do_not_depend_on_the_updates(name: str) -> None:
    """Paid, declined and cancelled by the signals of earlier clients: still applied as before."""
    assert await _failure(_UpdatesIgnoredWorkflow, name) is None


@workflow.defn(name="OrderIncident", sandboxed=False)
class _NoDeadlineIncident(OrderIncidentWorkflow):
    """An incident that waits for a person without its deadline (no durable timer)."""

    @workflow.run
    async def run(self, ticket: IncidentTicket) -> IncidentDecision:
        self._ticket = ticket
        await workflow.wait_condition(lambda: self._decision is not None)
        assert self._decision is not None
        return self._decision


@pytest.mark.parametrize("name", sorted(INCIDENTS))
async def test_the_incident_histories_need_the_incident_s_deadline(name: str) -> None:
    assert _non_deterministic(await _failure(_NoDeadlineIncident, name))


# ------------------------------------------------------------------ local-steps

_LOCAL_MARKER = "core_local_activity"


def _publishes(name: str) -> list[tuple[str, str]]:
    """How each publish of a history went out, in order: ("local", "ok" | "failed") for a local
    activity's marker, ("activity", step) for a scheduled `publish_event`."""
    found = []
    for event in _events(name):
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker["markerName"] == _LOCAL_MARKER:
            found.append(("local", "failed" if "failure" in marker else "ok"))
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "publish_event":
            request = json.loads(base64.b64decode(scheduled["input"]["payloads"][0]["data"]))
            found.append(("activity", request["step"]))
    return found


def test_the_local_steps_histories_took_its_path_and_the_older_ones_did_not() -> None:
    for name in NEW:
        assert _patch_ids(name)[:4] == [
            PATCH_FULL_SAGA, PATCH_TRUSTED_REPLIES, PATCH_OPERATOR_VIEW, PATCH_LOCAL_STEPS], name
        if name != "local_kafka_refused":  # every publish went out in the saga's own workflow task
            assert {how for how, _ in _publishes(name)} == {"local"}, name
            assert ("local", "failed") not in _publishes(name), name
    for name in OLD | OPERATOR:
        assert PATCH_LOCAL_STEPS not in _patch_ids(name), name
        assert all(how == "activity" for how, _ in _publishes(name)), name


def test_a_refused_local_publish_was_handed_to_the_regular_activity() -> None:
    """Kafka down at `order.payment-confirmed`: the local try failed, the step's regular activity
    (retried by Temporal, in plain view) published it, and the saga went on locally."""
    publishes = _publishes("local_kafka_refused")
    assert publishes[:3] == [("local", "ok"), ("local", "failed"), ("activity", "payment-confirmed")]
    assert set(publishes[3:]) == {("local", "ok")} and len(publishes) == 6, publishes


def test_the_local_steps_halve_the_history_of_a_delivered_saga() -> None:
    assert len(_events("local_success")) * 2 <= len(_events("operator_success"))


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _RegularPublishWorkflow(OrderFulfillmentWorkflow):
    """Every step published by the regular activity again (state still written at the waits)."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _publish_locally(self, request: object, summary: str) -> None:
        return None


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _StateAtEveryStepWorkflow(OrderFulfillmentWorkflow):
    """Local publishes, but the search attributes and memo written at every change of status."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _set(self, status: SagaStatus, step: SagaStep) -> None:
        await super()._set(status, step)
        self._mirror()


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _NoFallbackWorkflow(OrderFulfillmentWorkflow):
    """A failed local publish fails the saga instead of handing the step to the regular activity."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _publish_locally(self, request: PublishRequest, summary: str) -> PublishedEvent | None:
        return await workflow.execute_local_activity_method(
            PublishingPort.publish_event, request, start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=1), summary=summary)


@pytest.mark.parametrize("name", sorted(NEW))
async def test_the_local_steps_histories_need_the_local_publishes(name: str) -> None:
    assert _non_deterministic(await _failure(_RegularPublishWorkflow, name))


@pytest.mark.parametrize("name", ["local_success", "local_update_cancel", "local_incident_retried"])
async def test_the_local_steps_histories_need_the_state_written_where_the_saga_waits(name: str) -> None:
    assert _non_deterministic(await _failure(_StateAtEveryStepWorkflow, name))


@pytest.mark.parametrize("name", sorted(OPERATOR))
async def test_the_operator_histories_do_not_depend_on_the_local_steps(name: str) -> None:
    """Recorded before `local-steps`: the variants above replay them as well as today's code."""
    assert await _failure(_RegularPublishWorkflow, name) is None
    assert await _failure(_StateAtEveryStepWorkflow, name) is None


async def test_the_kafka_refused_history_needs_the_fallback() -> None:
    failure = await _failure(_NoFallbackWorkflow, "local_kafka_refused")
    assert failure is not None
    assert _non_deterministic(failure) or "payment-confirmed" in str(failure), failure
