"""A tiny workflow that carries every kind of Temporal user metadata, to prove the Web UI harness.

The saga's own metadata is someone else's change; this probe shows, independently of it, that the
browser helper sees what the Web UI renders: a static summary and details, an activity's and a
timer's summary, the current details, and a child that stays Running (as a saga's incident will).
Only temporalio is imported, so the workflow sandbox loads it cleanly.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.workflow import ParentClosePolicy

__all__ = ["ProbeChild", "ProbeWorkflow", "probe_step", "PROBE_TYPE", "PROBE_CHILD_TYPE"]

PROBE_TYPE = "WebUiProbe"
PROBE_CHILD_TYPE = "WebUiProbeChild"


@activity.defn(name="web_ui_probe_step")
async def probe_step(label: str) -> str:
    """The probe's one activity: its summary is what the history must show."""
    return f"done {label}"


@workflow.defn(name=PROBE_CHILD_TYPE)
class ProbeChild:
    """Waits until it is released (or terminated): a Running row in the list, like an incident."""

    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._released)
        return "released"

    @workflow.signal
    def release(self) -> None:
        self._released = True


@workflow.defn(name=PROBE_TYPE)
class ProbeWorkflow:
    """Runs one activity and one timer, each with a summary, sets its current details, and with
    `child_id` starts a child that stays Running and then waits as long as the child does."""

    @workflow.run
    async def run(self, label: str, child_id: str | None = None) -> str:
        workflow.set_current_details(f"**Probe {label}**: running its step")
        await workflow.execute_activity(
            probe_step,
            label,
            start_to_close_timeout=timedelta(seconds=30),
            summary=f"probe step {label} → nobody",
        )
        await workflow.sleep(0.1, summary=f"probe pause {label}, 0.1 s")
        if child_id is not None:
            child = await workflow.start_child_workflow(
                ProbeChild.run,
                id=child_id,
                static_summary=f"probe child of {label}",
                parent_close_policy=ParentClosePolicy.TERMINATE,
            )
            workflow.set_current_details(f"**Probe {label}**: waits for child `{child_id}`")
            return await child
        workflow.set_current_details(f"**Probe {label}**: finished")
        return f"probe {label} finished"
