"""The order CLI against a real `cloud-factory worker all` process: place, pay, cancel, show."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from core.settings import Settings
from tests.support.worker_process import CLI, isolation_env, start_workers, stop_workers

pytestmark = pytest.mark.stack


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [CLI, *args], env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _workflow_id(output: str) -> str:
    match = re.search(r"\(workflow (order-\S+)\)", output)
    assert match, output
    return match.group(1)


def test_place_show_and_cancel_through_the_cli(stack, settings: Settings, unique: str) -> None:
    prefix = f"c{unique}-"
    env = isolation_env(unique, prefix)
    workers = start_workers(settings, env)
    try:
        placed = _run(env, "order", "place", "--tenant", f"{prefix}acme", "--fail-at", "disk", "--wait")
        assert "outcome: compensated" in placed
        failed_id = _workflow_id(placed)
        report = json.loads(_run(env, "order", "show", failed_id, "--json"))

        waiting = _run(env, "order", "place", "--tenant", f"{prefix}acme", "--no-pay")
        waiting_id = _workflow_id(waiting)
        _run(env, "order", "cancel", waiting_id, "--note", "too slow")
        deadline = time.monotonic() + 30
        while (cancelled := json.loads(_run(env, "order", "show", waiting_id, "--json")))[
            "status"
        ] != "cancelled":
            assert time.monotonic() < deadline, f"the cancelled order is still {cancelled['status']}"
            time.sleep(0.5)
        bad = subprocess.run(
            [CLI, "order", "place", "--tenant", "x", "--fail-at", "moon"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop_workers(workers)

    assert report["status"] == "compensated" and report["execution_status"] == "COMPLETED"
    assert report["compensation_stack"] == []
    types = [event["eventType"] for event in report["events"]]
    assert types.index("order.created") < types.index("provisioning.failed") < types.index("order.cancelled")
    assert types.index("provisioning.deprovisioned") < types.index("billing.refund-requested")
    assert types[-1] in {"order.failed", "notification.sent"} and "order.compensation-completed" in types
    assert all(event["signatureOk"] for event in report["events"])
    assert (report["dlq"] == [] and report["activities"] >= 8 and report["signals"] >= 3
            and report["updates"] == 1)  # the payment is an Update
    assert bad.returncode != 0 and "moon" in bad.stderr
    assert [e["eventType"] for e in cancelled["events"] if e["eventType"].startswith("order.")] == [
        "order.created",
        "order.cancelled",
    ]
