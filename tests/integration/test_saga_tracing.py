"""The trace continues from the Kafka headers into the workflow: the bridge's `domain_event` signal
carries (in its Temporal header) the trace context of the `provisioning.completed` record it came from."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from core.settings import Settings
from services.order.flow import read_flow
from tests.support.saga_harness import SagaHarness

pytestmark = pytest.mark.stack


async def test_signal_carries_the_trace_of_the_kafka_record(stack, settings: Settings, unique: str) -> None:
    since = int(time.time() * 1000) - 1000
    async with SagaHarness(settings, unique) as harness:
        placed = await harness.place("trace")
        result = await asyncio.wait_for(placed.handle.result(), 90)
        history = await placed.handle.fetch_history()
    assert result.status == "delivered"
    [completed] = read_flow(settings, placed.order.correlation_id, ["provisioning.completed"], since)
    record_trace = completed.headers["traceparent"].split("-")[1]

    signal_traces = []
    for event in history.events:
        if event.WhichOneof("attributes") != "workflow_execution_signaled_event_attributes":
            continue
        attributes = event.workflow_execution_signaled_event_attributes
        if attributes.signal_name != "domain_event":
            continue
        carried = json.loads(attributes.header.fields["_tracer-data"].data)
        signal_traces.append(carried["traceparent"].split("-")[1])
    assert signal_traces, "the bridge's signal carried no trace context"
    assert record_trace in signal_traces
