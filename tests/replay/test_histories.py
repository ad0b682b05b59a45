"""Every committed history, recorded from a real run, still replays against today's workflow code,
and the replayer does catch a change that would break running sagas."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.contracts import OrderRequest, OrderResult
from workflows.order_fulfillment import OrderFulfillmentWorkflow

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))
PATHS = {
    "order_created",
    "success",
    "provisioning_failure",
    "payment_failure",
    "customer_cancel",
    "compensation_failure",
}


def _history(name: str) -> WorkflowHistory:
    path = Path(__file__).resolve().parents[1] / "histories" / f"{name}.json"
    return WorkflowHistory.from_json(name, path.read_text())


def test_histories_are_committed() -> None:
    assert {path.stem for path in HISTORIES} >= PATHS


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await Replayer(workflows=[OrderFulfillmentWorkflow]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _MemoDroppedWorkflow(OrderFulfillmentWorkflow):
    """A plausible careless edit: stop mirroring status into the memo (one command fewer per step)."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    async def _set(self, status: str, step: str) -> None:
        self._status, self._step = status, step
        workflow.upsert_search_attributes([])


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _UnpatchedWorkflow(OrderFulfillmentWorkflow):
    """The full saga without its `workflow.patched` guard: the first release's history must break."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        self._order = order
        await self._set("created", "order-created")
        created = await self._publish("order-created", "order.created", order.created_payload(), None)
        return await self._after_created(order, created.event_id)


@pytest.mark.parametrize("name", ["success", "provisioning_failure", "compensation_failure"])
async def test_a_non_deterministic_change_is_caught(name: str) -> None:
    result = await Replayer(workflows=[_MemoDroppedWorkflow]).replay_workflow(
        _history(name), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


async def test_removing_the_patch_guard_breaks_the_first_release_history() -> None:
    result = await Replayer(workflows=[_UnpatchedWorkflow]).replay_workflow(
        _history("order_created"), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
