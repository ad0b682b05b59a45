"""Pure pieces of the saga and its services: ids, plans, scoping, notification templates, fail points."""

from __future__ import annotations

import uuid

import pytest

import schemas
from cloud_factory.faults import FAIL_POINTS
from schemas.examples import example_event
from services.common import TenantScope, service_event_id
from services.notification.rendering import SUBJECTS, render
from services.order.api import new_order
from workflows.contracts import OrderRequest, PublishRequest, correlation_id_for, order_workflow_id
from workflows.plans import RESOURCE_STEPS, resources_for_plan


def test_every_customer_facing_event_has_a_template_and_renders() -> None:
    subscribed = {entry.event_type for entry in schemas.catalog.subscriptions("notification")}
    assert subscribed == set(SUBJECTS)
    for event_type in sorted(subscribed):
        messages = render(example_event(event_type))
        assert [m.channel for m in messages] == ["email", "in_app"], event_type
        assert all(m.subject and len(m.subject) <= 200 for m in messages), event_type
        assert len({m.subject for m in messages}) == 1


def test_subjects_differ_per_event_type() -> None:
    subjects = {event_type: render(example_event(event_type))[0].subject for event_type in SUBJECTS}
    assert len(set(subjects.values())) == len(subjects)


def test_releasing_nothing_tells_the_customer_so() -> None:
    event = example_event("provisioning.deprovisioned")
    assert event.data.resources and render(event)[0].subject.startswith("Released ")
    empty = event.model_copy(update={"data": event.data.model_copy(update={"resources": []})})
    subject = render(empty)[0].subject
    assert subject == f"Nothing was created for order {event.data.order_id}, so nothing had to be released"


def test_correlation_id_is_a_pure_function_of_the_workflow_id() -> None:
    order = OrderRequest(
        tenant_id="acme",
        order_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        plan_id="vm-small-1",
        region="eu-west-1",
        amount_minor=900,
    )
    assert order.workflow_id == order_workflow_id("acme", order.order_id)
    assert order.correlation_id == correlation_id_for(order.workflow_id)
    assert correlation_id_for(order_workflow_id("other", order.order_id)) != order.correlation_id


def test_service_event_ids_are_stable_uuid4_shaped_and_distinct() -> None:
    first = service_event_id("provisioning", "order-1/completed")
    assert first == service_event_id("provisioning", "order-1/completed")
    assert first.version == 4
    assert first != service_event_id("billing", "order-1/completed")
    assert first != service_event_id("provisioning", "order-2/completed")


def test_plans_create_network_disk_vps_in_order() -> None:
    specs = resources_for_plan("vm-large-4")
    assert [s.name for s in specs] == list(RESOURCE_STEPS) == ["network", "disk", "vps"]
    assert specs[-1].sku == "VM-LARGE-4"
    with pytest.raises(ValueError, match="plan_id"):
        resources_for_plan("Not A Plan")


def test_tenant_scope() -> None:
    assert TenantScope().serves("anyone")
    assert TenantScope("demo-").serves("demo-acme") and not TenantScope("demo-").serves("acme")


def test_new_order_prices_and_validates() -> None:
    order = new_order("acme", "vm-standard-2")
    assert (order.amount_minor, order.tax_minor) == (2900, 551)
    assert order.created_payload().total == schemas.Money(amount_minor=3451, currency="EUR")
    with pytest.raises(ValueError, match="tenant"):
        new_order("", "vm-standard-2")
    assert set(FAIL_POINTS) >= {"payment", "network", "disk", "vps", "refund"}


class _RecordingSignaller:
    """Stands in for Temporal in this pure test of the mapping (the real path runs on the stack)."""

    def __init__(self, asks: dict[str, list[str]] | None = None, closed: dict[str, list[str]] | None = None,
                 finished: bool = False, checking: bool = True) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.asks, self.closed, self.finished, self.checking = asks, closed or {}, finished, checking

    def signal(self, workflow_id: str, signal: str, arg: object) -> None:
        from bridges.signaller import WorkflowNotFound

        if self.finished:
            raise WorkflowNotFound(f"no running workflow {workflow_id}")
        self.calls.append((workflow_id, signal, arg))

    def query(self, workflow_id: str, query: str, *, timeout: float, result_type: type) -> object:
        from bridges.signaller import QueryUnavailable
        from workflows.contracts import AskBook

        assert query == "asks" and result_type is AskBook
        if self.asks is None:
            raise QueryUnavailable("no saga worker answered")
        return AskBook(open=self.asks, closed=self.closed, checking=self.checking)


def _provisioning_completed(tenant: str, order_id: str, correlation: str) -> schemas.Envelope:
    return schemas.new_event(
        "provisioning.completed",
        {
            "orderId": order_id,
            "attempts": 1,
            "endpoints": [],
            "resources": [
                {"resourceId": str(uuid.uuid4()), "kind": "vm", "region": "eu-west-1", "name": "vps"}
            ],
        },
        tenant_id=tenant,
        correlation_id=correlation,
        causation_id=uuid.uuid4(),
        actor=schemas.Actor(id="provisioning-service", type=schemas.ActorType.SERVICE),
        producer="provisioning-service",
    )


def test_bridge_signals_the_workflow_of_the_flow_with_the_wire_payload() -> None:
    from bridges.inbound import OrderBridge

    order_id = str(uuid.uuid4())
    workflow_id = order_workflow_id("acme", order_id)
    envelope = _provisioning_completed("acme", order_id, correlation_id_for(workflow_id))
    signaller = _RecordingSignaller({str(envelope.causation_id): ["provisioning.completed",
                                                                  "provisioning.failed"]})
    OrderBridge(signaller)(envelope, None)  # type: ignore[arg-type]
    [(target, signal, event)] = signaller.calls
    assert (target, signal) == (workflow_id, "domain_event")
    assert event.event_id == str(envelope.event_id) and event.causation_id == str(envelope.causation_id)
    assert str(event.data.order_id) == order_id and event.data.resources[0].name == "vps"
    assert event.tenant_id == "acme"


def test_bridge_refuses_a_reply_to_no_open_ask_or_of_the_wrong_type() -> None:
    from bridges.inbound import OrderBridge
    from messaging.errors import InconsistencyError

    order_id = str(uuid.uuid4())
    envelope = _provisioning_completed("acme", order_id,
                                       correlation_id_for(order_workflow_id("acme", order_id)))
    other_ask = str(uuid.uuid4())
    for asks, message in (({}, "waits on: nothing"), ({other_ask: ["billing.refund-completed"]}, other_ask),
                          ({str(envelope.causation_id): ["billing.refund-completed"]}, "cannot answer")):
        signaller = _RecordingSignaller(asks)
        with pytest.raises(InconsistencyError, match=message):
            OrderBridge(signaller)(envelope, None)  # type: ignore[arg-type]
        assert signaller.calls == []


def test_a_late_answer_to_a_closed_ask_is_signalled_and_quiet_once_the_saga_finished() -> None:
    """A repeated ask answered twice: the second answer is a duplicate, not an attack (no DLQ)."""
    from bridges.inbound import OrderBridge
    from messaging.errors import InconsistencyError

    order_id = str(uuid.uuid4())
    envelope = _provisioning_completed("acme", order_id,
                                       correlation_id_for(order_workflow_id("acme", order_id)))
    closed = {str(envelope.causation_id): ["provisioning.completed", "provisioning.failed"]}
    running = _RecordingSignaller({}, closed=closed)
    OrderBridge(running)(envelope, None)  # type: ignore[arg-type]
    assert len(running.calls) == 1  # the saga records it in its timeline as ignored
    OrderBridge(_RecordingSignaller({}, closed=closed, finished=True))(envelope, None)  # type: ignore[arg-type]
    wrong_type = {str(envelope.causation_id): ["billing.refund-completed"]}
    with pytest.raises(InconsistencyError):  # a closed ask, but not one this type could answer
        OrderBridge(_RecordingSignaller({}, closed=wrong_type))(envelope, None)  # type: ignore[arg-type]
    with pytest.raises(InconsistencyError):  # not an answer to any ask of the saga: the DLQ's
        OrderBridge(_RecordingSignaller({}, finished=True))(envelope, None)  # type: ignore[arg-type]


def test_a_saga_started_before_the_check_gets_its_answers_as_before() -> None:
    """Sagas in flight at the upgrade register no asks: their empty book must not refuse their replies."""
    from bridges.inbound import OrderBridge

    order_id = str(uuid.uuid4())
    envelope = _provisioning_completed("acme", order_id,
                                       correlation_id_for(order_workflow_id("acme", order_id)))
    signaller = _RecordingSignaller({}, checking=False)
    OrderBridge(signaller)(envelope, None)  # type: ignore[arg-type]
    assert len(signaller.calls) == 1


def test_bridge_signals_when_the_saga_cannot_answer_and_leaves_the_check_to_it() -> None:
    from bridges.inbound import OrderBridge

    order_id = str(uuid.uuid4())
    envelope = _provisioning_completed("acme", order_id,
                                       correlation_id_for(order_workflow_id("acme", order_id)))
    signaller = _RecordingSignaller(None)
    OrderBridge(signaller)(envelope, None)  # type: ignore[arg-type]
    assert len(signaller.calls) == 1


def test_bridge_refuses_an_event_whose_correlation_is_not_its_flow() -> None:
    from bridges.inbound import OrderBridge
    from messaging.errors import InconsistencyError

    signaller = _RecordingSignaller({})
    order_id = str(uuid.uuid4())
    envelope = _provisioning_completed("acme", order_id, str(uuid.uuid4()))
    with pytest.raises(InconsistencyError, match="is not the flow of"):
        OrderBridge(signaller)(envelope, None)  # type: ignore[arg-type]
    assert signaller.calls == []


def _compensation_failed_request(data: dict) -> PublishRequest:
    """The saga's publish input for `order.compensation-failed`, as a given build scheduled it."""
    return PublishRequest(
        workflow_id="order-acme-1",
        step="compensation-failed",
        event_type="order.compensation-failed",
        data=data,
        tenant_id="acme",
        correlation_id=correlation_id_for("order-acme-1"),
        causation_id=str(uuid.uuid4()),
        actor_id="order-service",
        actor_type="service",
        occurred_at="2025-02-11T08:14:07+00:00",
    )


_V1_SHAPED = {
    "orderId": str(uuid.uuid4()),
    "failedStep": "deprovision_resources",
    "completedSteps": ["refund_payment"],
    "reason": "deprovisioning was never confirmed",
    "requiresManualAction": True,
}


def test_publish_encodes_the_latest_version_with_every_failed_step() -> None:
    from bridges.outbound import envelope_for, step_event_id

    data = {**_V1_SHAPED, "failedSteps": ["deprovision_resources", "refund_payment"], "completedSteps": []}
    envelope = envelope_for(_compensation_failed_request(data))
    assert envelope.version == "v2" == schemas.catalog["order.compensation-failed"].latest_version
    assert [s.value for s in envelope.data.failed_steps] == ["deprovision_resources", "refund_payment"]
    assert envelope.event_id == step_event_id("order-acme-1", "compensation-failed")


def test_publish_upcasts_the_older_shape_a_previous_build_scheduled() -> None:
    """A retry after a deploy runs with the input the old build recorded: still published, as v2."""
    from bridges.outbound import envelope_for, step_event_id

    envelope = envelope_for(_compensation_failed_request(dict(_V1_SHAPED)))
    assert envelope.version == "v2"
    assert [s.value for s in envelope.data.failed_steps] == ["deprovision_resources"]
    assert [s.value for s in envelope.data.completed_steps] == ["refund_payment"]
    assert envelope.event_id == step_event_id("order-acme-1", "compensation-failed")  # same event
    assert str(envelope.correlation_id) == correlation_id_for("order-acme-1")


def test_publish_rejects_data_that_fits_no_version_with_the_latest_versions_error() -> None:
    from bridges.outbound import envelope_for

    data = {**_V1_SHAPED, "failedSteps": ["refund_payment"]}  # v2-shaped, first failure mismatched
    with pytest.raises(schemas.ContractError, match="start with failedStep"):
        envelope_for(_compensation_failed_request(data))
    with pytest.raises(schemas.ContractError) as info:
        envelope_for(_compensation_failed_request({**_V1_SHAPED, "reason": ""}))
    # Old-shaped but invalid as v1 too: the error is the latest version's, not v1's.
    assert info.value.field == "data.failedSteps" and "more problem" in info.value.reason
