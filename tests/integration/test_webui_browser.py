"""The browser harness on the real Web UI: what a workflow's user metadata looks like to a person.

A probe workflow of this module's own worker (tests/support/webui_probe.py) carries a static summary
and details, an activity and a timer with summaries and its current details; headless Chromium must
find each of them where Web UI 2.54.1 renders them, and a child that stays Running must be a row of
the default list. This module proves the harness on its own; the saga's pages are
tests/integration/test_webui_sagas.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from core.settings import Settings
from core.temporal import connect_client
from tests.support.browser import WebUI
from tests.support.webui_probe import PROBE_CHILD_TYPE, ProbeChild, ProbeWorkflow, probe_step

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def probe(stack, settings: Settings) -> AsyncIterator[tuple[Client, str]]:
    """A worker for the probe, kept running: the Web UI asks it for the current details."""
    client = await connect_client(settings)
    task_queue = f"webui-probe-{uuid.uuid4().hex[:10]}"
    workflows = [ProbeWorkflow, ProbeChild]
    async with Worker(client, task_queue=task_queue, workflows=workflows, activities=[probe_step]):
        yield client, task_queue


async def test_user_metadata_renders(webui: WebUI, probe: tuple[Client, str], unique: str) -> None:
    client, task_queue = probe
    summary = f"Probe {unique} · the static summary"
    handle = await client.start_workflow(
        ProbeWorkflow.run,
        args=[unique, None],
        id=f"webui-probe-{unique}",
        task_queue=task_queue,
        static_summary=summary,
        static_details=f"**Probe {unique}** does two things:\n\n1. its step\n2. its pause",
    )
    assert await handle.result() == f"probe {unique} finished"
    run_id = (await handle.describe()).run_id

    metadata = await webui.open(
        webui.workflow_url(handle.id, run_id, "user-metadata"),
        page="user-metadata",
        # Markdown rendered: the bold and the list markers are gone, the words are there.
        expect=[summary, f"Probe {unique} does two things:", "its pause", f"Probe {unique}: finished"],
    )
    assert f"**Probe {unique}**" not in metadata.text, "the details were shown as raw Markdown"

    await webui.open(
        webui.workflow_url(handle.id, run_id, "history"),
        page="history",
        expect=[f"probe step {unique} → nobody", f"probe pause {unique}, 0.1 s"],
    )
    await webui.open(
        webui.workflow_url(handle.id, run_id, "timeline"),
        page="timeline",
        expect=[f"web_ui_probe_step • probe step {unique} → nobody", f"probe pause {unique}, 0.1 s"],
    )


async def test_running_child_is_a_row_of_the_default_list(
    webui: WebUI, probe: tuple[Client, str], unique: str
) -> None:
    """The shape of a saga's incident: a child of its own type that stays Running, seen in the list
    a person opens first (no query) and under its parent's Relationships."""
    client, task_queue = probe
    child_id = f"webui-probe-child-{unique}"
    handle = await client.start_workflow(
        ProbeWorkflow.run, args=[unique, child_id], id=f"webui-probe-parent-{unique}", task_queue=task_queue
    )
    try:
        listed = await webui.open(webui.list_url(), page="list", expect=[child_id])
        row = listed.row_with(child_id)
        assert PROBE_CHILD_TYPE in row and "running" in row.lower(), f"the child's row reads {row!r}"

        run_id = (await handle.describe()).run_id
        await webui.open(
            webui.workflow_url(handle.id, run_id, "relationships"),
            page="relationships",
            expect=[PROBE_CHILD_TYPE, child_id],
        )
    finally:
        await handle.terminate("Web UI test done")  # the child goes with it (ParentClosePolicy.TERMINATE)
