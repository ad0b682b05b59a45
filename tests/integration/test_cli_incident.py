"""A person deciding a failed compensation from the command line, against the real stack: the
incident is listed, shown, refused without a note or twice (one line, exit 1, no traceback), and
resolved; paying twice or cancelling a delivered order is refused the same way.

The saga worker and the services run in this process (`SagaHarness`); the CLI runs as a subprocess
against the same test stack, as a person's shell would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.settings import Settings
from services.order.api import pay_order, wait_for_outcome
from services.order.tables import incidents
from services.provisioning.simulator import inject_fault, release_fault
from tests.support.saga_harness import SagaHarness

pytestmark = pytest.mark.stack

CLI = str(Path(sys.executable).with_name("cloud-factory"))


@pytest.fixture(scope="module")
async def harness(stack, settings: Settings) -> AsyncIterator[SagaHarness]:
    async with SagaHarness(settings) as running:
        yield running


async def _cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, off the event loop (the saga worker in this process keeps running)."""
    return await asyncio.to_thread(
        subprocess.run, [CLI, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def _refused(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], result.stderr


async def test_an_incident_is_listed_refused_without_a_note_and_resolved_once(harness: SagaHarness) -> None:
    placed = await harness.place("inc", fail_at="refund")
    outcome = await wait_for_outcome(placed.handle, timeout=120)
    assert outcome.needs_a_person and outcome.status == "compensation_failed", outcome
    incident_id = outcome.incident_id
    assert incident_id == f"incident-{placed.order.workflow_id}-1"

    listed = await _cli("incident", "list", "--tenant", placed.order.tenant_id)
    assert listed.returncode == 0, listed.stderr
    assert incident_id in listed.stdout and "refund_payment" in listed.stdout, listed.stdout

    shown = await _cli("incident", "show", placed.order.workflow_id)  # found through the saga
    assert shown.returncode == 0, shown.stderr
    assert "waits for a person" in shown.stdout and "refund failed" in shown.stdout, shown.stdout

    _refused(await _cli("incident", "resolve", incident_id, "--note", "  "), "needs --note")
    resolved = await _cli("incident", "resolve", incident_id, "--note", "refunded by hand", "--by", "ada")
    assert resolved.returncode == 0, resolved.stderr
    _refused(await _cli("incident", "retry", incident_id), incident_id)  # decided, then closed

    result = await asyncio.wait_for(placed.handle.result(), 60)
    assert result.status == "resolved_manually"
    with harness.engine.connect() as conn:
        row = conn.execute(
            select(incidents).where(incidents.c.workflow_id == placed.order.workflow_id)
        ).mappings().one()
    assert (row["state"], row["resolution"], row["note"], row["closed_by"]) == (
        "closed", "resolved", "refunded by hand", "ada")
    listed_after = await _cli("incident", "list", "--tenant", placed.order.tenant_id)
    assert incident_id not in listed_after.stdout, listed_after.stdout


async def test_a_person_is_told_why_a_payment_or_cancel_is_refused(harness: SagaHarness) -> None:
    placed = await harness.place("cmd", pay=False)
    # Held at the disk, so the order is still in flight (paid, provisioning) when the CLI pays again.
    inject_fault(harness.engine, placed.order.order_id, "disk", "hold", delay_ms=120_000)
    assert harness.client is not None
    assert await pay_order(harness.client, placed.order.workflow_id) == "payment recorded"
    _refused(await _cli("order", "pay", placed.order.workflow_id), "already paid")
    release_fault(harness.engine, placed.order.order_id, "disk")
    result = await asyncio.wait_for(placed.handle.result(), 90)
    assert result.status == "delivered"
    _refused(await _cli("order", "cancel", placed.order.workflow_id), "already finished (delivered)")
    # The `temporal` CLI prints an empty list as `null`; the compensation also says it in words.
    shown = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).with_name("temporal")), "workflow", "query", "--address",
         harness.settings.temporal_target, "--workflow-id", placed.order.workflow_id,
         "--type", "compensation", "--output", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    [view] = json.loads(shown.stdout)["queryResult"]
    assert (view["owed_count"], view["summary"]) == (0, "nothing is owed"), view

    unpaid = await harness.place("cmd", pay=False)
    cancelled = await _cli("order", "cancel", unpaid.order.workflow_id, "--note", "changed my mind")
    assert cancelled.returncode == 0, cancelled.stderr
    _refused(await _cli("order", "cancel", unpaid.order.workflow_id), "already")
    _refused(await _cli("order", "pay", unpaid.order.workflow_id), "cancelled")
    assert (await asyncio.wait_for(unpaid.handle.result(), 60)).status == "cancelled"
