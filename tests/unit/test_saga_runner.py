"""The saga worker's workflow runner passes every module through (for CPU): what workflow code imports
during a run is still restricted, names its modules bound at import are not — the full sandbox of the
saga's unit tests and of the replay tests is what refuses those. It also answers the worker's payload
context questions without the sandbox's detour, with the SDK's own answers (`workers.sandbox`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.converter import WorkflowSerializationContext
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import _runner as _sandbox_runner

import workers.sandbox
from core.temporal import DATA_CONVERTER
from workers.saga import SAGA_WORKFLOW_RUNNER
from workers.sandbox import _DirectContexts

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


# ------------------------------------------------- payload contexts without the sandbox's detour
@activity.defn(name="runner_probe")
def _probe(text: str) -> str:
    return text.upper()


@workflow.defn(sandboxed=True)
class ProbeChild:
    @workflow.run
    async def run(self, text: str) -> str:
        return text[::-1]


@workflow.defn(sandboxed=True)
class SchedulesEveryKindOfCommand:
    """An activity, a local activity and a child: each has a serialization context of its own."""

    @workflow.run
    async def run(self, text: str) -> str:
        timeout = timedelta(seconds=10)
        remote = await workflow.execute_activity(_probe, text, start_to_close_timeout=timeout)
        local = await workflow.execute_local_activity(_probe, text, start_to_close_timeout=timeout)
        child_id = f"{workflow.info().workflow_id}-child"
        child = await workflow.execute_child_workflow(ProbeChild.run, text, id=child_id)
        return f"{remote} {local} {child}"


async def _run_probe(runner: WorkflowRunner) -> str:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=DATA_CONVERTER)
    try:
        queue = f"unit-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=queue, workflow_runner=runner,
                          workflows=[SchedulesEveryKindOfCommand, ProbeChild], activities=[_probe],
                          activity_executor=ThreadPoolExecutor(2)):
            return await env.client.execute_workflow(
                SchedulesEveryKindOfCommand.run, "saga", id=f"wf-{queue}", task_queue=queue)
    finally:
        await env.shutdown()


_CONTEXT_QUESTIONS = ("get_serialization_context", "get_external_store_context")


def _count_detours(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], dict[str, Callable[..., object]]]:
    """Count the worker's context questions (both kinds) that take the SDK's way through the sandbox;
    returns the count and the SDK's own methods."""
    detours = [0]
    sdk_ways = {name: getattr(_sandbox_runner._Instance, name) for name in _CONTEXT_QUESTIONS}

    def counting(through_the_sandbox: Callable[..., object]) -> Callable[..., object]:
        def counted(self: object, command_info: object) -> object:
            detours[0] += 1
            return through_the_sandbox(self, command_info)
        return counted

    for name, sdk_way in sdk_ways.items():
        monkeypatch.setattr(_sandbox_runner._Instance, name, counting(sdk_way))
    return detours, sdk_ways


async def test_the_saga_runner_answers_payload_contexts_as_the_sandbox_would_without_its_detour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every context question of a run (activity, local activity, child, the workflow's own; for the
    codec and for external storage) is answered by the workflow instance directly — none through the
    sandbox's code string — and each answer is the one the SDK's sandboxed way gives for the same
    question at the same moment."""
    detours, sdk_ways = _count_detours(monkeypatch)
    answers: dict[str, list[tuple[object, object]]] = {name: [] for name in _CONTEXT_QUESTIONS}

    def comparing(name: str) -> Callable[..., object]:
        direct = getattr(_DirectContexts, name)

        def compared(self: _DirectContexts, command_info: object) -> object:
            answer = direct(self, command_info)
            answers[name].append((answer, sdk_ways[name](self.sandboxed, command_info)))
            return answer
        return compared

    for name in _CONTEXT_QUESTIONS:
        monkeypatch.setattr(_DirectContexts, name, comparing(name))
    assert await _run_probe(SAGA_WORKFLOW_RUNNER) == "SAGA SAGA agas"
    assert detours[0] == 0, f"{detours[0]} context questions went through the sandbox"
    for name, pairs in answers.items():
        assert pairs and all(mine == sdk for mine, sdk in pairs), (name, pairs)
    contexts = [mine for mine, _ in answers["get_serialization_context"]]
    kinds = {(type(mine).__name__, getattr(mine, "is_local", None)) for mine in contexts}
    assert {("ActivitySerializationContext", False), ("ActivitySerializationContext", True),
            ("WorkflowSerializationContext", None)} <= kinds, kinds
    children = {mine.workflow_id for mine in contexts if isinstance(mine, WorkflowSerializationContext)}
    assert any(workflow_id.endswith("-child") for workflow_id in children), children


def test_the_saga_runner_forwards_everything_the_sdks_instance_answers() -> None:
    """A later SDK adding a method to its sandboxed instance (as `get_thread_id` has a default body on
    the base class) must not leave the wrapper answering with the base class's default."""
    public = {name for name, value in vars(_sandbox_runner._Instance).items()
              if callable(value) and not name.startswith("_")}
    assert public <= set(vars(_DirectContexts)), public - set(vars(_DirectContexts))


async def test_the_saga_runner_takes_the_sdks_way_when_it_cannot_find_the_instance(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A later SDK keeping its sandboxed instance elsewhere: the run still completes, through the SDK's
    own (slower) way, and the worker says so once."""
    detours, _ = _count_detours(monkeypatch)
    monkeypatch.setattr(workers.sandbox, "_IN_SANDBOX", "__moved_in_a_later_sdk")
    workers.sandbox._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="workers.sandbox"):
        assert await _run_probe(SAGA_WORKFLOW_RUNNER) == "SAGA SAGA agas"
    workers.sandbox._warn_once.cache_clear()
    assert detours[0] > 0
    warnings = [record.getMessage() for record in caplog.records if record.name == "workers.sandbox"]
    assert len(warnings) == 1 and "go through the sandbox" in warnings[0], warnings
