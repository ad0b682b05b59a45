"""Every committed history, recorded from a real run, still replays against today's workflow code,
and the replayer does catch a change that would break running sagas."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.temporal import DATA_CONVERTER
from schemas.payloads.order import OrderCancellationReason
from workflows.contracts import CompensationEntry, InboundEvent, OrderRequest, OrderResult, order_workflow_id
from workflows.order_fulfillment import (
    PATCH_EVERY_UNDO,
    PATCH_FULL_SAGA,
    PATCH_TRUSTED_REPLIES,
    OrderFulfillmentWorkflow,
)
from workflows.states import SagaStatus, SagaStep

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))
PATHS = {
    "order_created",
    "success",
    "provisioning_failure",
    "payment_failure",
    "customer_cancel",
    "compensation_failure",
    "every_undo_failure",
    "trusted_success",
    "forged_reply_ignored",
}


def _recorded(text: str, fallback: str) -> WorkflowHistory:
    """The history under its real workflow id (the saga derives its asks' event ids from it), read
    from the order it was started with."""
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    order = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    workflow_id = order_workflow_id(order["tenant_id"], order["order_id"]) if "tenant_id" in order else fallback
    return WorkflowHistory.from_json(workflow_id, text)


def _replayer(workflow_class: type) -> Replayer:
    """A replayer decoding as every client and worker does (`core.temporal.DATA_CONVERTER`)."""
    return Replayer(workflows=[workflow_class], data_converter=DATA_CONVERTER)


def _history(name: str) -> WorkflowHistory:
    path = Path(__file__).resolve().parents[1] / "histories" / f"{name}.json"
    return _recorded(path.read_text(), name)


def test_histories_are_committed() -> None:
    assert {path.stem for path in HISTORIES} >= PATHS


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = _recorded(path.read_text(), path.stem)
    result = await _replayer(OrderFulfillmentWorkflow).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


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
    history = json.loads((Path(__file__).resolve().parents[1] / "histories" / f"{name}.json").read_text())
    key = "markerRecordedEventAttributes"
    payloads = [e[key]["details"]["patch-data"]["payloads"][0] for e in history["events"] if key in e]
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
