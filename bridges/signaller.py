"""Signals Temporal workflows from a blocking (Kafka consumer) thread.

The Temporal client is asyncio-only; the consumer is a blocking loop. The signaller owns a private
event loop in a daemon thread and submits each signal to it, carrying the caller's OpenTelemetry
context so the trace continues from the Kafka headers into the workflow.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

from opentelemetry import context as otel_context
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from core.temporal import connect

__all__ = ["QueryUnavailable", "WorkflowNotFound", "WorkflowSignaller"]


class WorkflowNotFound(LookupError):
    """No running workflow with that id (never started, or already finished)."""


class QueryUnavailable(RuntimeError):
    """The workflow exists but could not answer the query now (no worker in time, or a workflow of an
    earlier release that has no such query)."""


class WorkflowSignaller:
    def __init__(self, target: str, namespace: str, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bridge-signaller", daemon=True)
        self._thread.start()
        self._client: Client = self._run(connect(target, namespace))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    def signal(self, workflow_id: str, signal: str, arg: Any) -> None:
        """Deliver one signal; raises WorkflowNotFound when nothing is running under that id."""
        self._run(self._signal(workflow_id, signal, arg, otel_context.get_current()))

    def query(self, workflow_id: str, query: str, *, timeout: float = 5.0,
              result_type: type | None = None) -> Any:
        """Ask a workflow a query; WorkflowNotFound when there is none, QueryUnavailable when it cannot
        answer within `timeout` seconds."""
        return self._run(self._query(workflow_id, query, timeout, result_type))

    async def _query(self, workflow_id: str, query: str, timeout: float, result_type: type | None) -> Any:
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            return await handle.query(query, rpc_timeout=timedelta(seconds=timeout), result_type=result_type)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowNotFound(f"no running workflow {workflow_id}: {exc.message}") from None
            raise QueryUnavailable(f"{workflow_id} did not answer {query}: {exc.message}") from None
        except (TimeoutError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
            raise QueryUnavailable(f"{workflow_id} did not answer {query}: {exc}") from None

    async def _signal(self, workflow_id: str, signal: str, arg: Any, ctx: otel_context.Context) -> None:
        token = otel_context.attach(ctx)
        try:
            await self._client.get_workflow_handle(workflow_id).signal(signal, arg)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowNotFound(f"no running workflow {workflow_id}: {exc.message}") from None
            raise
        finally:
            otel_context.detach(token)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
