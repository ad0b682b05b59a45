"""The saga worker's workflow runner passes every module through (for CPU), yet its sandbox still
refuses what would make a workflow non-deterministic."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

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
class UsesTheWorkflowClock:
    @workflow.run
    async def run(self) -> str:
        return workflow.now().isoformat()


async def test_the_saga_runner_still_refuses_a_non_deterministic_call() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=DATA_CONVERTER)
    try:
        queue = f"unit-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=queue, workflows=[ReadsTheWallClock, UsesTheWorkflowClock],
                          workflow_runner=SAGA_WORKFLOW_RUNNER):
            assert await env.client.execute_workflow(UsesTheWorkflowClock.run, id=f"fine-{queue}",
                                                     task_queue=queue)
            handle = await env.client.start_workflow(ReadsTheWallClock.run, id=f"clock-{queue}",
                                                     task_queue=queue)
            failures: list[str] = []
            for _ in range(100):
                history = await handle.fetch_history()
                failures = [event.workflow_task_failed_event_attributes.failure.message
                            for event in history.events
                            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
                if failures:
                    break
                await asyncio.sleep(0.1)
            with contextlib.suppress(RPCError):  # a saga runner without the guard let it complete
                await handle.terminate("test over")
    finally:
        await env.shutdown()
    assert failures and "datetime.datetime.now" in failures[0], failures


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
