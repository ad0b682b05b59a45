"""The saga worker's workflow runner: the SDK's sandbox with every module passed through, asking the
workflow instance for a payload's serialization context directly.

Why: around every workflow task the worker decodes the activation's payloads and encodes the
completion's (three passes each way), and for each payload sequence it asks the workflow instance
which serialization context applies (the activity's, a child's, the workflow's) and, encoding, which
external-storage context. temporalio 1.35's sandbox answers by compiling and running a code string
inside the sandbox — the importer's global patches applied and undone each time: in one 100-order
round of bench/bench_saga.py (~200 workflow runs, sagas and bare workflows) 22,956 context questions
at ~98 µs and 5,881 store-context ones at ~85 µs, ~13 ms of CPU per workflow run.

With every module passed through, the instance inside the sandbox is made of the very classes
outside it, and the question is a pure lookup of its pending commands; asking it directly returns
the same context object the sandboxed detour would. Activations still run in the sandbox, so what
the sandbox refuses is unchanged (see `workers.saga.SAGA_WORKFLOW_RUNNER` for what passing every
module through gives up). Should a later SDK keep its instance elsewhere, the runner takes the SDK's
own path (correct, only slower) and says so once; tests/unit/test_saga_runner.py holds the pinned
SDK to the direct path and to the SDK's answers.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import SerializationContext, StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import Info

if TYPE_CHECKING:
    from temporalio.worker._command_aware_visitor import CommandInfo

__all__ = ["PassThroughSandboxRunner"]

_log = logging.getLogger(__name__)
# Where temporalio 1.35's sandbox keeps the workflow instance it runs (`_runner._Instance`).
_IN_SANDBOX = "__temporal_in_sandbox"


@dataclass(frozen=True)
class PassThroughSandboxRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` passing every module through, its serialization contexts asked of
    the workflow instance directly."""

    restrictions: SandboxRestrictions = field(
        default_factory=SandboxRestrictions.default.with_passthrough_all_modules)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        sandboxed = super().create_instance(det)
        inner = _instance_inside(sandboxed)
        if inner is None:
            _warn_once()
            return sandboxed
        return _DirectContexts(sandboxed, inner)


class _DirectContexts(WorkflowInstance):
    """A sandboxed workflow instance whose context questions skip the sandbox."""

    def __init__(self, sandboxed: WorkflowInstance, inner: WorkflowInstance) -> None:
        self.sandboxed = sandboxed
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self.sandboxed.activate(act)

    def get_info(self) -> Info:
        return self.sandboxed.get_info()

    def get_thread_id(self) -> int | None:
        return self.sandboxed.get_thread_id()

    def get_serialization_context(self, command_info: CommandInfo | None) -> SerializationContext | None:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        return self._inner.get_external_store_context(command_info)


def _instance_inside(sandboxed: WorkflowInstance) -> WorkflowInstance | None:
    """The workflow instance the sandbox runs, if this SDK keeps it where 1.35 does."""
    namespace = getattr(sandboxed, "globals_and_locals", None)
    holder = namespace.get(_IN_SANDBOX) if isinstance(namespace, dict) else None
    inner = getattr(holder, "instance", None)
    return inner if isinstance(inner, WorkflowInstance) else None


@functools.cache
def _warn_once() -> None:
    _log.warning("this temporalio keeps the sandboxed workflow instance elsewhere: payload "
                 "contexts go through the sandbox (correct, ~100 µs slower per payload sequence)")
