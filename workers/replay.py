"""Replaying workflow histories against this build's workflow code: the check before a deploy.

A change to `workflows/` that makes running sagas issue other commands than their histories recorded
(a non-determinism) breaks them only once a worker of the new build picks them up again. Replaying
their histories here first finds it before the deploy: from files (the JSON that `temporal workflow
show --output json` and `WorkflowHistory.to_json` write, like `tests/histories/`) or fetched from
the server by a visibility query. `cloud_factory.cli.replay` prints the rows this module yields.

Which workflow classes are replayed is `REPLAYED_WORKFLOWS`, the one place to add a new one; each
history is replayed by the class registered under its workflow type, and a type with no class is
reported as such instead of being replayed by the wrong code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import Runtime
from temporalio.service import RPCError
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from core.temporal import DATA_CONVERTER, core_runtime
from workers.bytecode import ensure_bytecode
from workflows.order_fulfillment import SA_ORDER_STATUS
from workflows.registry import SAGA_WORKFLOWS

__all__ = [
    "DEFAULT_LIMIT",
    "REPLAYED_WORKFLOWS",
    "HistoryLoadError",
    "LoadedHistory",
    "ReplayRow",
    "Verdict",
    "default_query",
    "file_histories",
    "first_mismatch",
    "history_files",
    "load_history",
    "outcome_of",
    "replay",
    "server_histories",
    "workflow_type_name",
]

#: Every workflow class this build's workers run; a history is replayed by the one of its type.
REPLAYED_WORKFLOWS: tuple[type, ...] = SAGA_WORKFLOWS

DEFAULT_LIMIT = 200
_MISMATCH_CHARS = 200


def workflow_type_name(workflow_class: type) -> str:
    """The workflow type a class is registered under (its `@workflow.defn(name=…)`)."""
    definition = getattr(workflow_class, "__temporal_workflow_definition", None)
    if definition is None or definition.name is None:
        raise TypeError(f"{workflow_class.__qualname__} is not a named @workflow.defn class")
    return definition.name


class Verdict(StrEnum):
    OK = "ok"
    NON_DETERMINISTIC = "NON-DETERMINISTIC"
    ERROR = "error"


@dataclass(frozen=True)
class ReplayRow:
    """One history's line in the report."""

    workflow_id: str
    workflow_type: str
    outcome: str
    verdict: Verdict
    mismatch: str = ""
    source: str = ""  # the file it was read from ("" when fetched from the server)

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


@dataclass(frozen=True)
class LoadedHistory:
    """A history ready to replay, with what the report says about it before replaying."""

    history: WorkflowHistory
    workflow_type: str
    outcome: str
    source: str = ""


class HistoryLoadError(ValueError):
    """A history file that is not a workflow history; names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot load {path}: {reason}")
        self.path = path


# ------------------------------------------------------------------ loading


def history_files(directory: Path) -> list[Path]:
    """The `*.json` histories in `directory`, sorted; a missing or empty directory is a mistake to name."""
    if not directory.exists():
        raise FileNotFoundError(f"no such directory: {directory}")
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory (--dir wants a directory of *.json histories)")
    files = sorted(path for path in directory.glob("*.json") if path.is_file())
    if not files:
        raise ValueError(f"no *.json histories in {directory}")
    return files


def load_history(path: Path) -> LoadedHistory:
    """Read one history file. The workflow id is the one its start event recorded (the saga derives
    its asks' event ids from it, so replaying under another id takes another path); files of servers
    that did not record it fall back to the file name, which `--save` makes the workflow id."""
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryLoadError(path, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise HistoryLoadError(path, f"not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise HistoryLoadError(path, 'not a workflow history (expected {"events": [...]})')
    events = document["events"]
    if not events:
        raise HistoryLoadError(path, "the history has no events")
    first = events[0] if isinstance(events[0], dict) else {}
    started = first.get("workflowExecutionStartedEventAttributes")
    if not isinstance(started, dict):
        raise HistoryLoadError(path, "the first event is not the workflow's start")
    workflow_id = started.get("workflowId") or path.stem
    try:
        history = WorkflowHistory.from_json(workflow_id, document)
    except Exception as exc:  # noqa: BLE001 - protobuf's parse errors have no common base worth naming
        raise HistoryLoadError(path, f"not a workflow history ({_one_line(str(exc))})") from None
    return _loaded(history, source=str(path))


def _loaded(history: WorkflowHistory, *, source: str = "") -> LoadedHistory:
    started = history.events[0].workflow_execution_started_event_attributes
    return LoadedHistory(history, started.workflow_type.name, outcome_of(history), source)


# ------------------------------------------------------------------ outcome


_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


def _decoded(payload: Payload) -> object:
    try:
        return DATA_CONVERTER.payload_converter.from_payload(payload)
    except Exception:  # noqa: BLE001 - an undecodable value only costs the outcome its detail
        return None


def outcome_of(history: WorkflowHistory) -> str:
    """What the workflow came to: the `status` of its result when it returned one (the saga's final
    status), else its execution status — `running` with the last `OrderStatus` it recorded."""
    last: HistoryEvent = history.events[-1]
    closed = _CLOSED.get(last.event_type)
    if closed == "completed":
        payloads = last.workflow_execution_completed_event_attributes.result.payloads
        result = _decoded(payloads[0]) if payloads else None
        if isinstance(result, dict) and isinstance(result.get("status"), str):
            return result["status"]
    if closed is not None:
        return closed
    status = None
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if SA_ORDER_STATUS.name in fields:
                value = _decoded(fields[SA_ORDER_STATUS.name])
                status = value if isinstance(value, str) else status
    return f"running ({status})" if status else "running"


# ------------------------------------------------------------------ replaying


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MISMATCH_CHARS else line[: _MISMATCH_CHARS - 1] + "…"


_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def first_mismatch(failure: Exception) -> str:
    """The replay failure in one line: the core's own message (`Activity type of scheduled event 'x'
    does not match …`) without the Rust debug wrapping around it."""
    text = str(failure)
    found = _CORE_MESSAGE.search(text)
    if found:
        text = found.group(1).replace('\\"', '"').replace("\\'", "'").replace("\\\\", "\\")
    return _one_line(text)


def _quiet_runtime() -> Runtime:
    """A runtime whose core does not log each failed replay as a warning: the row reports it."""
    return core_runtime("ERROR")


def _row(loaded: LoadedHistory, failure: Exception | None) -> ReplayRow:
    if failure is None:
        verdict = Verdict.OK
    elif isinstance(failure, NondeterminismError):
        verdict = Verdict.NON_DETERMINISTIC
    else:
        verdict = Verdict.ERROR
    return ReplayRow(
        workflow_id=loaded.history.workflow_id,
        workflow_type=loaded.workflow_type,
        outcome=loaded.outcome,
        verdict=verdict,
        mismatch="" if failure is None else first_mismatch(failure),
        source=loaded.source,
    )


async def replay(
    items: AsyncIterable[LoadedHistory | ReplayRow],
    *,
    workflows: Iterable[type] = REPLAYED_WORKFLOWS,
) -> AsyncIterator[ReplayRow]:
    """One row per item, in order: each history replayed by the class of its workflow type (one
    replayer for all of them); rows given in (histories that failed to load or fetch) pass through,
    and a history of a type no class is registered for is an error row naming the known types."""
    classes = {workflow_type_name(cls): cls for cls in workflows}
    known = ", ".join(sorted(classes))
    ahead: deque[ReplayRow] = deque()  # rows of items met while fetching the next history to replay
    replaying: deque[LoadedHistory] = deque()

    async def replayable() -> AsyncIterator[WorkflowHistory]:
        async for item in items:
            if isinstance(item, ReplayRow):
                ahead.append(item)
            elif item.workflow_type not in classes:
                ahead.append(ReplayRow(
                    item.history.workflow_id, item.workflow_type, item.outcome, Verdict.ERROR,
                    f"unknown workflow type {item.workflow_type!r}: this build replays {known} "
                    "(add its class to workers.replay.REPLAYED_WORKFLOWS)", item.source))
            else:
                replaying.append(item)
                yield item.history

    ensure_bytecode(classes.values())
    replayer = Replayer(workflows=list(classes.values()), data_converter=DATA_CONVERTER,
                        runtime=_quiet_runtime())
    async with replayer.workflow_replay_iterator(replayable()) as results:
        async for result in results:
            # The items before this history were met on the way to it: they come first.
            loaded = replaying.popleft()
            while ahead:
                yield ahead.popleft()
            yield _row(loaded, result.replay_failure)
    while ahead:
        yield ahead.popleft()


async def file_histories(paths: Iterable[Path]) -> AsyncIterator[LoadedHistory | ReplayRow]:
    """The histories of `paths`; a file that does not load is an error row naming it."""
    for path in paths:
        try:
            yield load_history(path)
        except HistoryLoadError as exc:
            yield ReplayRow("?", "?", "?", Verdict.ERROR, _one_line(str(exc)), str(path))


# ------------------------------------------------------------------ the server


def default_query(now: dt.datetime | None = None, *, days: int = 7,
                  workflows: Iterable[type] = REPLAYED_WORKFLOWS) -> str:
    """The replayed workflow types, running or closed in the last `days` days: the histories a new
    build's workers may still have to replay (running) or that show the paths taken lately (closed)."""
    now = now or dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(days=days)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    types = " OR ".join(f"WorkflowType = '{workflow_type_name(cls)}'" for cls in workflows)
    return f"({types}) AND (ExecutionStatus = 'Running' OR CloseTime > '{since}')"


def _file_name(workflow_id: str) -> str:
    """A file name for a workflow id (which may hold any character, `/` included)."""
    name = re.sub(r"[/\\\x00]", "_", workflow_id)
    return name if name not in ("", ".", "..") else f"_{name}"


async def server_histories(
    client: Client,
    query: str,
    *,
    limit: int = DEFAULT_LIMIT,
    save: Path | None = None,
    on_fetch: Callable[[str], None] | None = None,
) -> AsyncIterator[LoadedHistory | ReplayRow]:
    """The histories of at most `limit` executions the visibility `query` matches, fetched one at a
    time (a history may be large), each also written to `save`/<workflow id>.json when asked; a
    history that cannot be fetched is an error row, the others still come."""
    saved: set[str] = set()
    async for execution in client.list_workflows(query, limit=limit):
        if on_fetch is not None:
            on_fetch(execution.id)
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            history = await handle.fetch_history()
        except RPCError as exc:
            status = execution.status.name.lower() if execution.status else "?"
            yield ReplayRow(execution.id, execution.workflow_type, status, Verdict.ERROR,
                            _one_line(f"cannot fetch its history: {exc.message}"))
            continue
        source = ""
        if save is not None:
            name = _file_name(execution.id)
            if name in saved:  # another run of the same workflow id
                name = f"{name}.{execution.run_id}"
            saved.add(name)
            path = save / f"{name}.json"
            path.write_text(history.to_json())
            source = str(path)
        yield _loaded(history, source=source)

