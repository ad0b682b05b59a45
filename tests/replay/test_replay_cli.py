"""`cloud-factory replay`, the pre-deploy check, run as a person (and CI) runs it: a subprocess on the
committed histories, on tampered and broken copies of them, and against the test stack's Temporal
server after real sagas ran there."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import Worker

from core.settings import Settings
from core.temporal import connect_client
from messaging.wiring import ensure_catalog_topics
from tests.support.saga_harness import SagaHarness
from workers.replay import (
    REPLAYED_WORKFLOWS,
    LoadedHistory,
    ReplayRow,
    Verdict,
    default_query,
    file_histories,
    load_history,
    replay,
    server_histories,
)
from workflows.order_fulfillment import OrderFulfillmentWorkflow

CLI = str(Path(sys.executable).with_name("cloud-factory"))
HISTORIES = Path(__file__).resolve().parents[1] / "histories"
COMMITTED = sorted(HISTORIES.glob("*.json"))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "replay", *args], capture_output=True, text=True, timeout=240,
                          env={**os.environ, **(env or {})})


def _rows(stdout: str) -> dict[str, dict[str, str]]:
    """The table's rows, keyed by their first column (the history file, or the workflow id), each
    cell read at its header's column (cells may hold spaces: `running (awaiting_payment)`)."""
    lines = stdout.splitlines()
    header = lines[0] if lines else ""
    labels = [label for label in ("history", "workflow id", "outcome", "replay", "first mismatch")
              if label in header]
    assert labels[-4:] == ["workflow id", "outcome", "replay", "first mismatch"], stdout
    starts = [header.index(label) for label in labels]
    rows = {}
    for line in lines[1:-1]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(labels, cells, strict=True))
    return rows


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


def _one_error_line(result: subprocess.CompletedProcess, needle: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    _no_traceback(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def _tamper(source: Path, target: Path) -> None:
    """`source` with its first scheduled activity renamed: the code schedules `publish_event` there."""
    history = json.loads(source.read_text())
    scheduled = next(e for e in history["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "renamed_activity"
    target.write_text(json.dumps(history))


# ------------------------------------------------------------------ --dir (what CI runs)


def test_the_committed_histories_replay() -> None:
    """`cloud-factory replay --dir tests/histories`: the same check the suite's replay tests make,
    through the command people run before a deploy; one row per committed history, all ok."""
    result = _cli("--dir", str(HISTORIES))
    _no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert sorted(rows) == [path.name for path in COMMITTED]
    incidents = [path for path in COMMITTED if ".incident-" in path.name]
    assert len(COMMITTED) >= 19 and len(incidents) >= 4  # 15 sagas, 4 incidents of them
    for path in COMMITTED:
        row = rows[path.name]
        assert (row["replay"], row["first mismatch"]) == ("ok", ""), row
        assert row["workflow id"] == load_history(path).history.workflow_id
        # Both workflow types replayed: a saga, or the incident it opened (`incident-<saga id>-<n>`).
        saga = path.name.split(".")[0] + ".json"
        if path in incidents:
            attempt = path.name.split(".incident-")[1].removesuffix(".json")
            assert row["workflow id"] == f"incident-{rows[saga]['workflow id']}-{attempt}", row
            assert load_history(path).workflow_type == "OrderIncident"
        else:
            assert row["workflow id"].startswith("order-"), row
    assert rows["success.json"]["outcome"] == "delivered"
    assert rows["payment_failure.json"]["outcome"] == "payment_failed"
    assert rows["compensation_failure.json"]["outcome"] == "compensation_failed"
    assert rows["incident_retried.json"]["outcome"] == "compensated"
    assert rows["incident_resolved.json"]["outcome"] == "resolved_manually"
    assert rows["incident_retried.incident-1.json"]["outcome"] == "completed"
    assert result.stdout.splitlines()[-1] == f"{len(COMMITTED)} histories: {len(COMMITTED)} ok"


def test_a_tampered_history_is_non_deterministic(tmp_path: Path) -> None:
    shutil.copy(HISTORIES / "payment_failure.json", tmp_path / "payment_failure.json")
    _tamper(HISTORIES / "success.json", tmp_path / "tampered.json")
    result = _cli("--dir", str(tmp_path))
    _no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows["payment_failure.json"]["replay"] == "ok"
    tampered = rows["tampered.json"]
    assert (tampered["outcome"], tampered["replay"]) == ("delivered", "NON-DETERMINISTIC")
    assert tampered["first mismatch"] == (
        "[TMPRL1100] Nondeterminism error: Activity type of scheduled event 'renamed_activity' "
        "does not match activity type of activity command 'publish_event'")
    assert result.stdout.splitlines()[-1] == "2 histories: 1 ok, 1 NON-DETERMINISTIC"


def test_a_history_that_does_not_load_is_named_and_fails_the_check(tmp_path: Path) -> None:
    shutil.copy(HISTORIES / "success.json", tmp_path / "success.json")
    (tmp_path / "corrupt.json").write_text('{"events": [{"eventId": "1",')
    (tmp_path / "not_a_history.json").write_text('{"workflows": []}')
    result = _cli("--dir", str(tmp_path))
    _no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows["success.json"]["replay"] == "ok"
    assert rows["corrupt.json"]["replay"] == "error"
    assert rows["corrupt.json"]["first mismatch"].startswith(
        f"cannot load {tmp_path / 'corrupt.json'}: not JSON")
    assert rows["not_a_history.json"]["first mismatch"] == (
        f"cannot load {tmp_path / 'not_a_history.json'}: "
        'not a workflow history (expected {"events": [...]})')


def test_a_history_of_an_unknown_workflow_type_is_reported(tmp_path: Path) -> None:
    history = json.loads((HISTORIES / "payment_failure.json").read_text())
    history["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] = "OrderRefund"
    (tmp_path / "refund.json").write_text(json.dumps(history))
    result = _cli("--dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    row = _rows(result.stdout)["refund.json"]
    assert row["replay"] == "error"
    assert row["first mismatch"] == (
        "unknown workflow type 'OrderRefund': this build replays OrderFulfillmentWorkflow, OrderIncident "
        "(add its class to workers.replay.REPLAYED_WORKFLOWS)")


def test_a_saga_history_given_to_the_incident_type_is_caught(tmp_path: Path) -> None:
    """A history is replayed by the class of the type it names: a saga's renamed `OrderIncident`
    goes to the incident class, which cannot even read its input."""
    history = json.loads((HISTORIES / "payment_failure.json").read_text())
    history["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] = "OrderIncident"
    (tmp_path / "incident.json").write_text(json.dumps(history))
    result = _cli("--dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    row = _rows(result.stdout)["incident.json"]
    assert (row["outcome"], row["replay"]) == ("payment_failed", "error"), row


def test_bad_directories_are_one_line(tmp_path: Path) -> None:
    _one_error_line(_cli("--dir", str(tmp_path / "missing")), f"no such directory: {tmp_path / 'missing'}")
    _one_error_line(_cli("--dir", str(tmp_path)), f"no *.json histories in {tmp_path}")
    (tmp_path / "file.json").write_text("{}")
    _one_error_line(_cli("--dir", str(tmp_path / "file.json")), "is not a directory")


# ------------------------------------------------------------------ the machinery: a class per type


@workflow.defn(name="ReplayProbeWorkflow", sandboxed=False)
class _ProbeWorkflow:
    """A second workflow type, as `OrderIncident` will be: its histories need its own class."""

    @workflow.run
    async def run(self, name: str) -> dict[str, str]:
        await workflow.sleep(0.01)
        return {"status": f"probed {name}"}


async def _items(*items: LoadedHistory | ReplayRow) -> AsyncIterator[LoadedHistory | ReplayRow]:
    for item in items:
        yield item


async def test_each_history_is_replayed_by_the_class_of_its_type(stack, settings: Settings,
                                                                 tmp_path: Path) -> None:
    client = await connect_client(settings)
    queue = f"probe-{uuid.uuid4().hex[:10]}"
    async with Worker(client, task_queue=queue, workflows=[_ProbeWorkflow]):
        handle = await client.start_workflow(_ProbeWorkflow.run, "x", id=f"probe-{uuid.uuid4()}",
                                             task_queue=queue)
        await asyncio.wait_for(handle.result(), 60)
    (tmp_path / "probe.json").write_text((await handle.fetch_history()).to_json())
    (tmp_path / "broken.json").write_text("{")
    shutil.copy(HISTORIES / "success.json", tmp_path / "success.json")
    paths = [tmp_path / "probe.json", tmp_path / "broken.json", tmp_path / "success.json"]

    async def rows(workflows: tuple[type, ...]) -> list[ReplayRow]:
        return [row async for row in replay(file_histories(paths), workflows=workflows)]

    both = await rows((*REPLAYED_WORKFLOWS, _ProbeWorkflow))
    assert [(row.workflow_type, row.outcome, row.verdict) for row in both] == [
        ("ReplayProbeWorkflow", "probed x", Verdict.OK),
        ("?", "?", Verdict.ERROR),
        ("OrderFulfillmentWorkflow", "delivered", Verdict.OK),
    ]
    assert both[0].workflow_id == handle.id and both[1].source == str(tmp_path / "broken.json")
    only_orders = await rows(REPLAYED_WORKFLOWS)
    assert [row.verdict for row in only_orders] == [Verdict.ERROR, Verdict.ERROR, Verdict.OK]
    assert only_orders[0].mismatch.startswith("unknown workflow type 'ReplayProbeWorkflow'")
    assert OrderFulfillmentWorkflow in REPLAYED_WORKFLOWS


# ------------------------------------------------------------------ --query against the server


@pytest.fixture(scope="module")
async def harness(stack, settings: Settings) -> AsyncIterator[SagaHarness]:
    ensure_catalog_topics(settings)
    async with SagaHarness(settings) as running:
        yield running


async def test_query_replays_the_server_s_histories_and_saves_them(harness: SagaHarness, settings: Settings,
                                                                   tmp_path: Path) -> None:
    delivered = await harness.place()
    waiting = await harness.place(pay=False)  # stays running: waits for its payment
    try:
        result = await asyncio.wait_for(delivered.handle.result(), 120)
        assert result.status == "delivered"
        ids = (delivered.order.workflow_id, waiting.order.workflow_id)
        assert harness.client is not None
        # The default query finds both: the one closed a moment ago and the running one.
        for workflow_id in ids:
            found = await harness.client.count_workflows(
                f"{default_query()} AND WorkflowId = '{workflow_id}'")
            assert found.count == 1, workflow_id

        saved = tmp_path / "saved"
        query = f"WorkflowId = '{ids[0]}' OR WorkflowId = '{ids[1]}'"
        fetched = await asyncio.to_thread(_cli, "--query", query, "--save", str(saved))
        _no_traceback(fetched)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        rows = _rows(fetched.stdout)
        assert [rows[ids[0]][c] for c in ("outcome", "replay", "first mismatch")] == ["delivered", "ok", ""]
        assert [rows[ids[1]][c] for c in ("outcome", "replay")] == ["running (awaiting_payment)", "ok"]
        assert sorted(path.name for path in saved.iterdir()) == sorted(f"{i}.json" for i in ids)
        assert fetched.stdout.splitlines()[-1] == f"2 histories: 2 ok; saved to {saved}"
    finally:
        await waiting.handle.terminate("test over")

    # The saved files are fixtures like the committed ones: `--dir` replays them under their ids.
    again = await asyncio.to_thread(_cli, "--dir", str(saved))
    assert again.returncode == 0, again.stdout + again.stderr
    rows = _rows(again.stdout)
    assert {name: row["workflow id"] for name, row in rows.items()} == {f"{i}.json": i for i in ids}
    assert all(row["replay"] == "ok" for row in rows.values())

    # ...and what `--query` fetched replays with the machinery the same way.
    histories = [item async for item in server_histories(harness.client, query)]
    assert sorted(item.history.workflow_id for item in histories if isinstance(item, LoadedHistory)) == \
        sorted(ids)


async def test_a_refused_query_is_the_server_s_reason(stack) -> None:
    result = await asyncio.to_thread(_cli, "--query", "NoSuchAttribute = 'x'")
    _one_error_line(result, "Temporal refused the query \"NoSuchAttribute = 'x'\": invalid query")


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    line = _one_error_line(_cli(env={"CF_TEMPORAL_PORT": "1"}), "Temporal is not reachable at 127.0.0.1:1")
    assert "cloud-factory stack up" in line
    unreachable = _cli("--query", "WorkflowType = 'x'", "--save", str(tmp_path),
                       env={"CF_TEMPORAL_PORT": "1"})
    _one_error_line(unreachable, "127.0.0.1:1")


def test_the_command_module_imports_no_temporalio() -> None:
    """`cloud-factory --help` must stay fast: the command imports the machinery only when it runs."""
    module = Path(__file__).resolve().parents[2] / "cloud_factory" / "cli" / "replay.py"
    probe = ("import importlib.util, sys\n"
             f"spec = importlib.util.spec_from_file_location('replay_alone', {str(module)!r})\n"
             "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('temporalio', 'workers', 'workflows', 'core', 'rich')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
