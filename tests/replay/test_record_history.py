"""The recorder of tests/histories/: it records today's paths from real runs on the test stack
(the saga and each incident it opened, settled with `wait_for_outcome`), what it writes replays, and
it never records over the histories that prove an earlier release's path still replays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.record_history import HISTORIES, KEPT, record
from workers.replay import Verdict, file_histories, load_history, replay


def _recorder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.tools.record_history", *args], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("name", ["success", "compensation_failure", "order_created", "operator_success"])
def test_the_kept_histories_are_never_recorded_over(name: str) -> None:
    before = (HISTORIES / f"{name}.json").read_bytes()
    result = _recorder(name)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("record_history.py: error: "), result.stderr
    assert (HISTORIES / f"{name}.json").read_bytes() == before


def test_the_kept_names_are_the_committed_histories_of_earlier_releases() -> None:
    for name in KEPT:
        assert (HISTORIES / f"{name}.json").is_file(), name


async def test_a_resolved_incident_is_recorded_with_its_incident_and_both_replay(
    stack, tmp_path: Path
) -> None:
    paths = await record("local_incident_resolved", tmp_path)
    assert [path.name for path in paths] == [
        "local_incident_resolved.json", "local_incident_resolved.incident-1.json"]
    saga, incident = (load_history(path) for path in paths)
    assert (saga.workflow_type, saga.outcome) == ("OrderFulfillmentWorkflow", "resolved_manually")
    assert (incident.workflow_type, incident.outcome) == ("OrderIncident", "completed")
    assert incident.history.workflow_id == f"incident-{saga.history.workflow_id}-1"
    rows = [row async for row in replay(file_histories(paths))]
    assert [row.verdict for row in rows] == [Verdict.OK, Verdict.OK]


async def test_a_kept_compensation_failed_path_is_recorded_where_it_now_waits(stack, tmp_path: Path) -> None:
    """Today's compensation_failure opens an incident instead of ending: recorded at the incident
    (running), then terminated; written only with `--out`, never over the committed one."""
    paths = await record("compensation_failure", tmp_path)
    assert [path.name for path in paths] == [
        "compensation_failure.json", "compensation_failure.incident-1.json"]
    assert load_history(paths[0]).outcome == "running (compensation_failed)"
    rows = [row async for row in replay(file_histories(paths))]
    assert [row.verdict for row in rows] == [Verdict.OK, Verdict.OK]
