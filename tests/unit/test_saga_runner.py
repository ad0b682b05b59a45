"""The saga worker's workflow runner passes every module through (for CPU): what workflow code imports
during a run is still restricted, names its modules bound at import are not — the full sandbox of the
saga's unit tests and of the replay tests is what refuses those."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sys
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.temporal import DATA_CONVERTER
from workers.saga import SAGA_WORKFLOW_RUNNER

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


@workflow.defn(sandboxed=True)
class ReadsTheWallClock:
    @workflow.run
    async def run(self) -> str:
        import datetime

        return datetime.datetime.now().isoformat()  # the sandbox must refuse this


@workflow.defn(sandboxed=True)
class ReadsTheWallClockThroughItsModule:
    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()  # `datetime` was bound when this module was imported


@workflow.defn(sandboxed=True)
class UsesTheWorkflowClock:
    @workflow.run
    async def run(self) -> str:
        return workflow.now().isoformat()


async def _task_failures(runner: WorkflowRunner, workflow_class: type) -> list[str]:
    """The workflow task failures of one run of `workflow_class` on `runner` (none: it completed)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=DATA_CONVERTER)
    failures: list[str] = []
    try:
        queue = f"unit-{uuid.uuid4().hex[:8]}"
        workflows = [ReadsTheWallClock, ReadsTheWallClockThroughItsModule, UsesTheWorkflowClock]
        async with Worker(env.client, task_queue=queue, workflow_runner=runner, workflows=workflows):
            handle = await env.client.start_workflow(workflow_class.run, id=f"wf-{queue}", task_queue=queue)
            for _ in range(100):
                history = await handle.fetch_history()
                failures = [event.workflow_task_failed_event_attributes.failure.message
                            for event in history.events
                            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
                completed = history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
                if failures or completed:
                    break
                await asyncio.sleep(0.1)
            with contextlib.suppress(RPCError):  # completed already
                await handle.terminate("test over")
    finally:
        await env.shutdown()
    return failures


async def test_the_saga_runner_refuses_a_non_deterministic_call_imported_during_a_run() -> None:
    assert await _task_failures(SAGA_WORKFLOW_RUNNER, UsesTheWorkflowClock) == []
    failures = await _task_failures(SAGA_WORKFLOW_RUNNER, ReadsTheWallClock)
    assert failures and "datetime.datetime.now" in failures[0], failures


async def test_only_the_full_sandbox_refuses_a_name_bound_when_the_module_was_imported() -> None:
    """The limit of passing modules through, recorded: the saga's unit tests (test_saga_workflow.py)
    and the replay tests run the full sandbox, which refuses it; the saga worker's runner does not."""
    failures = await _task_failures(SandboxedWorkflowRunner(), ReadsTheWallClockThroughItsModule)
    assert failures and "datetime.datetime.now" in failures[0], failures
    assert await _task_failures(SAGA_WORKFLOW_RUNNER, ReadsTheWallClockThroughItsModule) == []


def test_workflow_modules_hold_no_mutable_module_state() -> None:
    """The saga runner shares the workflow modules between every run in a process: a module-level
    list, dict or set one run could change would leak into the next (and break replay)."""
    import importlib
    import pkgutil

    import workflows

    mutable = (list, dict, set, bytearray)
    found = [f"workflows.{info.name}.{name}: {type(value).__name__}"
             for info in pkgutil.iter_modules(workflows.__path__)
             for name, value in vars(importlib.import_module(f"workflows.{info.name}")).items()
             if not name.startswith("__") and isinstance(value, mutable)]
    assert found == [], "make them read-only (tuple, frozenset, types.MappingProxyType)"
