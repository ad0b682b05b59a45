"""The typed Temporal boundary writes the bytes the default converter wrote.

`core.temporal.DATA_CONVERTER` decodes into pydantic-typed values, yet a saga's history must not see a
byte of difference: a running saga retries activities with their recorded input, replays decode what
earlier builds wrote, and an earlier build's worker may still pick up a task this build scheduled. The
literals below are the JSON the previous build's default converter produced for these values (its
hand-written camelCase dicts, `dataclasses` and `json.dumps`); the same values built the typed way
must encode to exactly those bytes. Every payload of every committed history must also decode typed
and encode back to what was recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

import schemas
from bridges.inbound import inbound_event
from bridges.outbound import envelope_for
from core.temporal import DATA_CONVERTER
from schemas import Payload
from schemas.examples import example_event
from schemas.payloads.order import CompensationStep, OrderCancellationReason
from workflows import events
from workflows.contracts import (
    CancelRequest,
    InboundEvent,
    IncidentAction,
    IncidentClosure,
    IncidentDecision,
    IncidentRequest,
    IncidentTicket,
    OrderRequest,
    OrderResult,
    PaymentConfirmation,
    PaymentFailure,
    PublishedEvent,
    PublishRequest,
)
from workflows.states import SagaStatus

ORDER_JSON = (
    '{"actor_id":"order-service","actor_type":"service","amount_minor":2900,"billing_cycle":"mont'
    'hly","channel":"web","correlation_id":"041de992-946e-5dd7-ac30-4b3f80ab2916","currency":"EUR'
    '","customer_id":"0b6f2e3a-9a41-4f0c-8a57-5c2de1f7a3b4","order_id":"7d0c5f0e-2d7b-4d3e-9d55-0'
    'a3c3a7e9b11","plan_id":"vm-standard-2","quantity":1,"region":"eu-west-1","tax_minor":551,"te'
    'nant_id":"acme","timings":{"compensation_windows_s":[2.0,4.0,8.0,16.0,30.0,30.0],"incident_'
    'deadline_s":2592000.0,"payment_timeout_s":3600.0,"provisioning_timeout_s":300.0}}'
)
# What builds before `operator-view` wrote (no incident deadline): still decodes, to the default.
ORDER_JSON_BEFORE_INCIDENTS = ORDER_JSON.replace('"incident_deadline_s":2592000.0,', "")

RESULT_JSON = (
    '{"events":["e1","e2"],"last_event_id":"e2","order_id":"7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e9b11"'
    ',"status":"compensated"}'
)

PUBLISH_CREATED_JSON = (
    '{"actor_id":"order-service","actor_type":"service","causation_id":null,"correlation_id":"041'
    'de992-946e-5dd7-ac30-4b3f80ab2916","data":{"billingCycle":"monthly","channel":"web","custome'
    'rId":"0b6f2e3a-9a41-4f0c-8a57-5c2de1f7a3b4","lines":[{"amount":{"amountMinor":2900,"currency'
    '":"EUR"},"planId":"vm-standard-2","quantity":1}],"orderId":"7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e'
    '9b11","region":"eu-west-1","subtotal":{"amountMinor":2900,"currency":"EUR"},"tax":{"amountMi'
    'nor":551,"currency":"EUR"},"total":{"amountMinor":3451,"currency":"EUR"}},"event_type":"orde'
    'r.created","occurred_at":"2026-12-01T10:00:00+00:00","step":"order-created","tenant_id":"acm'
    'e","workflow_id":"order-acme-7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e9b11"}'
)

PUBLISH_CANCELLED_JSON = (
    '{"actor_id":"order-service","actor_type":"service","causation_id":"3f0a1c55-3a8e-5b5c-9f43-8'
    'f3f4b8c0d21","correlation_id":"041de992-946e-5dd7-ac30-4b3f80ab2916","data":{"customerId":"0'
    'b6f2e3a-9a41-4f0c-8a57-5c2de1f7a3b4","note":null,"orderId":"7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e'
    '9b11","reason":"customer_request","resourcesToRelease":[]},"event_type":"order.cancelled","o'
    'ccurred_at":"2026-12-01T10:00:00+00:00","step":"cancelled","tenant_id":"acme","workflow_id":'
    '"order-acme-7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e9b11"}'
)

PUBLISH_COMPENSATION_FAILED_JSON = (
    '{"actor_id":"order-service","actor_type":"service","causation_id":"3f0a1c55-3a8e-5b5c-9f43-8'
    'f3f4b8c0d21","correlation_id":"041de992-946e-5dd7-ac30-4b3f80ab2916","data":{"completedSteps'
    '":[],"failedStep":"refund_payment","failedSteps":["refund_payment","deprovision_resources"],'
    '"orderId":"7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e9b11","reason":"undos failed: refund_payment, dep'
    'rovision_resources \\u2014 refund_payment: x; deprovision_resources: y","requiresManualAction'
    '":true},"event_type":"order.compensation-failed","occurred_at":"2026-12-01T10:00:00+00:00","'
    'step":"compensation-failed","tenant_id":"acme","workflow_id":"order-acme-7d0c5f0e-2d7b-4d3e-'
    '9d55-0a3c3a7e9b11"}'
)

INBOUND_PROVISIONING_FAILED_JSON = (
    '{"causation_id":"b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e","data":{"errorCode":"CAPACITY_EXHAUST'
    'ED","orderId":"6f1c2f0e-8a4b-4c1e-9d2a-3b7e5c9a1f01","partialResources":[{"kind":"database",'
    '"name":"orders-db","region":"eu-west-1","resourceId":"7d6c5b4a-3e2f-4a1b-8c9d-0e1f2a3b4c5d"}'
    '],"reason":"No capacity for VM-STD-4","region":"eu-west-1","retryable":false},"event_id":"5b'
    '0d6c1e-2f3a-4b5c-8d6e-7f8091a2b3c4","event_type":"provisioning.failed","occurred_at":"2025-0'
    '7-01T12:00:00+00:00","tenant_id":"acme-corp","version":"v1"}'
)

INBOUND_REFUND_COMPLETED_JSON = (
    '{"causation_id":"b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e","data":{"amount":{"amountMinor":9996,'
    '"currency":"EUR"},"orderId":"6f1c2f0e-8a4b-4c1e-9d2a-3b7e5c9a1f01","paymentId":"9a3d1e7c-5b2'
    'f-4e8a-b6c4-1f0d2e3a4b5c","refundId":"2a1b0c9d-8e7f-4a6b-9c5d-4e3f2a1b0c9d"},"event_id":"5b0'
    'd6c1e-2f3a-4b5c-8d6e-7f8091a2b3c4","event_type":"billing.refund-completed","occurred_at":"20'
    '25-07-01T12:00:00+00:00","tenant_id":"acme-corp","version":"v1"}'
)

ORDER = OrderRequest(
    tenant_id="acme",
    order_id="7d0c5f0e-2d7b-4d3e-9d55-0a3c3a7e9b11",
    customer_id="0b6f2e3a-9a41-4f0c-8a57-5c2de1f7a3b4",
    plan_id="vm-standard-2",
    region="eu-west-1",
    amount_minor=2900,
    tax_minor=551,
)
ASK = "3f0a1c55-3a8e-5b5c-9f43-8f3f4b8c0d21"
TWO_UNDOS_FAILED = (
    "undos failed: refund_payment, deprovision_resources — refund_payment: x; deprovision_resources: y"
)


def _publish(step: str, data: Payload, causation_id: str | None = None) -> PublishRequest:
    return PublishRequest(
        workflow_id=ORDER.workflow_id,
        step=step,
        event_type=_event_type(data),
        data=data,
        tenant_id=ORDER.tenant_id,
        correlation_id=ORDER.correlation_id,
        causation_id=causation_id,
        actor_id=ORDER.actor_id,
        actor_type=ORDER.actor_type,
        occurred_at="2026-12-01T10:00:00+00:00",
    )


def _event_type(data: Payload) -> str:
    return schemas.catalog.owner_of(type(data))[0].event_type


CASES: dict[str, tuple[Any, str]] = {
    "order-request": (ORDER, ORDER_JSON),
    "order-result": (
        OrderResult(order_id=ORDER.order_id, status=SagaStatus.COMPENSATED, events=["e1", "e2"],
                    last_event_id="e2"),
        RESULT_JSON,
    ),
    "publish-created": (_publish("order-created", ORDER.created_payload()), PUBLISH_CREATED_JSON),
    "publish-cancelled": (
        _publish("cancelled", events.cancelled(ORDER, OrderCancellationReason.CUSTOMER_REQUEST, None, []),
                 ASK),
        PUBLISH_CANCELLED_JSON,
    ),
    "publish-compensation-failed": (
        _publish(
            "compensation-failed",
            events.compensation_failed(
                ORDER,
                [CompensationStep.REFUND_PAYMENT, CompensationStep.DEPROVISION_RESOURCES],
                [],
                TWO_UNDOS_FAILED,
            ),
            ASK,
        ),
        PUBLISH_COMPENSATION_FAILED_JSON,
    ),
    "inbound-provisioning-failed": (
        inbound_event(example_event("provisioning.failed")), INBOUND_PROVISIONING_FAILED_JSON
    ),
    "inbound-refund-completed": (
        inbound_event(example_event("billing.refund-completed")), INBOUND_REFUND_COMPLETED_JSON
    ),
}


def _encode(value: object) -> bytes:
    return DATA_CONVERTER.payload_converter.to_payloads([value])[0].data


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_typed_value_encodes_to_the_previous_builds_bytes(name: str) -> None:
    value, expected = CASES[name]
    assert _encode(value) == expected.encode()


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_previous_builds_bytes_decode_to_the_typed_value(name: str) -> None:
    value, expected = CASES[name]
    payload = DATA_CONVERTER.payload_converter.to_payloads([value])[0]
    payload.data = expected.encode()
    decoded = DATA_CONVERTER.payload_converter.from_payloads([payload], [type(value)])[0]
    assert decoded == value
    if isinstance(value, (PublishRequest, InboundEvent)):
        assert isinstance(decoded.data, Payload) and type(decoded.data) is type(value.data)


def test_data_only_an_older_version_fits_stays_wire_data_for_the_outbound_bridge() -> None:
    """An activity the previous build scheduled with v1-shaped data: the fallback's input, untouched."""
    v1 = {"orderId": ORDER.order_id, "failedStep": "refund_payment", "completedSteps": [],
          "reason": "x", "requiresManualAction": True}
    request = PublishRequest(ORDER.workflow_id, "compensation-failed", "order.compensation-failed", v1,
                             ORDER.tenant_id, ORDER.correlation_id, None, "order-service", "service",
                             "2026-12-01T10:00:00+00:00")
    assert request.data == v1
    assert json.loads(_encode(request))["data"] == v1


_SIGNALS = {"domain_event": InboundEvent, "confirm_payment": PaymentConfirmation, "cancel": CancelRequest,
            "fail_payment": PaymentFailure}
_UPDATES = {"pay": PaymentConfirmation, "decline_payment": PaymentFailure, "request_cancel": CancelRequest,
            "retry": IncidentAction, "resolve": IncidentAction}
#: Each workflow type's input and result.
_RUN = {"OrderFulfillmentWorkflow": (OrderRequest, OrderResult),
        "OrderIncident": (IncidentTicket, IncidentDecision)}
#: What every history of a type holds at least (an incident calls no activity; a local activity's
#: marker records its result, not its input).
_HOLDS = {"OrderFulfillmentWorkflow": {OrderRequest, PublishedEvent, OrderResult},
          "OrderIncident": {IncidentTicket, IncidentAction, IncidentDecision}}
_ACTIVITIES = {"publish_event": (PublishRequest, PublishedEvent), "open_incident": (IncidentRequest, None),
               "close_incident": (IncidentClosure, None)}
# Fields the types gained after some histories were recorded: those come back with their defaults.
_LATER_FIELDS = {OrderRequest: {"timings"}, InboundEvent: {"tenant_id"}, IncidentRequest: {"failed_steps"}}
_LATER_TIMINGS = {"incident_deadline_s"}
HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))


def _recorded_payloads(history: WorkflowHistory) -> list[tuple[Any, type]]:
    """Every (payload, its type) the history holds: input, signals, activity inputs and results, result."""
    found: list[tuple[Any, type]] = []
    scheduled: dict[int, str] = {}
    run_input, run_result = _RUN[_workflow_type(history)]
    for event in history.events:
        if event.HasField("workflow_execution_started_event_attributes"):
            found.append((event.workflow_execution_started_event_attributes.input.payloads[0], run_input))
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            found.append((update.args.payloads[0], _UPDATES[update.name]))
        elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes
            found.append((child.input.payloads[0], IncidentTicket))
        elif event.HasField("child_workflow_execution_completed_event_attributes"):
            done_child = event.child_workflow_execution_completed_event_attributes
            found.append((done_child.result.payloads[0], IncidentDecision))
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            signal = event.workflow_execution_signaled_event_attributes
            found.append((signal.input.payloads[0], _SIGNALS[signal.signal_name]))
        elif event.HasField("activity_task_scheduled_event_attributes"):
            task = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = task.activity_type.name
            found.append((task.input.payloads[0], _ACTIVITIES[task.activity_type.name][0]))
        elif event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity" and "result" in marker.details:
                activity_type = json.loads(marker.details["data"].payloads[0].data)["activity_type"]
                found.append((marker.details["result"].payloads[0], _ACTIVITIES[activity_type][1]))
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            result_type = _ACTIVITIES[scheduled[done.scheduled_event_id]][1]
            if result_type is not None:
                found.append((done.result.payloads[0], result_type))
        elif event.HasField("workflow_execution_completed_event_attributes"):
            completed = event.workflow_execution_completed_event_attributes
            found.append((completed.result.payloads[0], run_result))
    return found


def _workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_every_recorded_payload_decodes_typed_and_encodes_back_to_its_bytes(path: Path) -> None:
    converter = DATA_CONVERTER.payload_converter
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    recorded = _recorded_payloads(history)
    assert {hint for _, hint in recorded} >= _HOLDS[_workflow_type(history)]
    for payload, hint in recorded:
        value = converter.from_payloads([payload], [hint])[0]
        assert isinstance(value, hint)
        if isinstance(value, InboundEvent):
            assert isinstance(value.data, Payload), (path.stem, value)
        if isinstance(value, PublishRequest) and not isinstance(value.data, Payload):
            # Scheduled by a build before the type's latest version: the outbound bridge's fallback.
            latest = schemas.catalog[value.event_type].latest_version
            assert envelope_for(value).version == latest, (path.stem, value)
        again = json.loads(converter.to_payloads([value])[0].data)
        original = json.loads(payload.data)
        assert set(again) - set(original) <= _LATER_FIELDS.get(hint, set()), (path.stem, hint)
        kept = {key: again[key] for key in original}
        if hint is OrderRequest and "timings" in original:
            assert set(kept["timings"]) - set(original["timings"]) <= _LATER_TIMINGS, path.stem
            kept["timings"] = {key: kept["timings"][key] for key in original["timings"]}
        assert kept == original, (path.stem, hint)
        if hint is not OrderRequest:  # the order's timings were sent as whole seconds: floats now, same value
            assert _compact(kept) == payload.data, (path.stem, hint)


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def test_an_order_written_before_incidents_decodes_with_the_default_deadline() -> None:
    converter = DATA_CONVERTER.payload_converter
    [payload] = converter.to_payloads([json.loads(ORDER_JSON_BEFORE_INCIDENTS)])
    order = converter.from_payloads([payload], [OrderRequest])[0]
    assert order.timings.incident_deadline_s == 30 * 24 * 3600.0


def test_a_converter_built_anew_reuses_the_schemas_the_process_built() -> None:
    """The worker builds a payload converter for every workflow run and two more for every workflow
    task: each must decode with the type adapters already built (an `OrderRequest`'s costs ~1 ms),
    and all of them must still write the same bytes."""
    first = DATA_CONVERTER.payload_converter_class()
    again = DATA_CONVERTER.payload_converter_class()
    [payload] = first.to_payloads([ORDER])
    assert again.from_payloads([payload], [OrderRequest]) == [ORDER]
    json_first, json_again = first.converters[b"json/plain"], again.converters[b"json/plain"]
    assert json_first is json_again
    assert json_first._type_adapter(OrderRequest) is json_again._type_adapter(OrderRequest)
    assert again.to_payloads([ORDER]) == [payload]
