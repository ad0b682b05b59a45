"""The sagas as a person sees them in the Web UI, from headless Chromium on real sagas.

DEPENDS ON THE WORKFLOW CHANGE of issue 12 (points 1–2: user metadata on the saga, and a saga that
needs a person opening an `OrderIncident` child that stays Running). Until that change is merged
these tests FAIL, on purpose: they are neither skipped nor xfailed, so they turn green exactly when
the Web UI shows what they assert. The words come from workflows/metadata.py, the same functions
the workflow uses. The browser harness itself is proven on its own by
tests/integration/test_webui_browser.py.

- A compensated saga (provisioning fails at the VPS) shows its static summary (`saga_summary`) on
  its User Metadata tab and every step it took, as activity summaries (`publish_summary`), in its
  Event History.
- A saga whose refund fails (compensation_failed) stands out in the default list, without any query
  or configuration: a row of type `OrderIncident`, id `incident-<saga workflow id>-1`, Running.

Screenshots: test-artifacts/webui/<test name>-<page>.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from tests.support.browser import WebUI
from tests.support.saga_harness import SagaHarness
from workflows.metadata import INCIDENT_WORKFLOW_TYPE, incident_workflow_id, publish_summary, saga_summary

pytestmark = pytest.mark.stack

#: What a compensated saga publishes, in order: the steps done, then their undos newest first.
COMPENSATED_STEPS = [
    "order.created",
    "order.payment-confirmed",
    "order.provisioning-started",
    "order.compensation-started",
    "order.cancelled",  # release the network and disk made before the VPS failed
    "billing.refund-requested",
    "order.compensation-completed",
    "order.failed",
]


@pytest.fixture(scope="module")
async def harness(stack, settings: Settings) -> AsyncIterator[SagaHarness]:
    """The saga worker stays up while pages are open: the UI asks it for the current details."""
    async with SagaHarness(settings) as running:
        yield running


async def test_compensated_saga_page_shows_summary_and_named_steps(
    harness: SagaHarness, webui: WebUI
) -> None:
    placed = await harness.place("webui", fail_at="vps")
    result = await asyncio.wait_for(placed.handle.result(), 90)
    assert result.status == "compensated"
    run_id = (await placed.handle.describe()).run_id

    await webui.open(
        webui.workflow_url(placed.order.workflow_id, run_id, "user-metadata"),
        page="user-metadata",
        expect=[saga_summary(placed.order)],
    )
    await webui.open(
        webui.workflow_url(placed.order.workflow_id, run_id, "history"),
        page="history",
        expect=[publish_summary(event_type) for event_type in COMPENSATED_STEPS],
    )


async def test_saga_needing_a_person_stands_out_in_the_default_list(
    harness: SagaHarness, webui: WebUI
) -> None:
    placed = await harness.place("webui", fail_at="refund")
    incident_id = incident_workflow_id(placed.order.workflow_id, 1)
    assert harness.client is not None
    try:
        await _incident_started(harness.client, placed.handle, incident_id, timeout_s=120)
        listed = await webui.open(webui.list_url(), page="list", expect=[incident_id])
        row = listed.row_with(incident_id)
        assert INCIDENT_WORKFLOW_TYPE in row and "running" in row.lower(), f"the incident's row reads {row!r}"
    finally:  # the saga waits for a person (and its incident with it): end both
        for workflow_id in (incident_id, placed.order.workflow_id):
            with contextlib.suppress(RPCError):  # not started (before the change) or already closed
                await harness.client.get_workflow_handle(workflow_id).terminate("Web UI test done")


async def _incident_started(
    client: Client, saga: WorkflowHandle, incident_id: str, *, timeout_s: float
) -> None:
    """Wait (bounded) until the saga's incident workflow exists; fail at once, naming how the saga
    ended, if the saga closes without one (the saga before the workflow change simply completes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await client.get_workflow_handle(incident_id).describe()
            return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        saga_state = await saga.describe()
        if saga_state.status != WorkflowExecutionStatus.RUNNING:
            result = await saga.result() if saga_state.status == WorkflowExecutionStatus.COMPLETED else None
            raise AssertionError(
                f"the saga {saga.id} closed {saga_state.status.name if saga_state.status else '?'} "
                f"({result.status if result else 'no result'}) without starting its incident {incident_id}"
            )
        assert time.monotonic() < deadline, f"no incident {incident_id} within {timeout_s:g} s"
        await asyncio.sleep(0.5)
