"""Handlers tested without Kafka or PostgreSQL, on the in-memory transport (`messaging.testing`).

Every record goes through the consumer's own reading, dispatch and failure routing, so these tests
see what the Kafka consumer would decide: forged and wrongly signed records, stale replays, other
tenants' records and handler errors end as dead letters classified by `messaging.errors`, duplicates
run their handler once. The real handler here is the inbound bridge (`bridges.inbound.OrderBridge`),
whose only collaborator, the Temporal signaller, is replaced by a saga that records its signals.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

import schemas
from bridges.inbound import OrderBridge
from bridges.signaller import WorkflowNotFound
from bridges.worker import BRIDGED_EVENT_TYPES, ORDER_BRIDGE_GROUP
from messaging import HandlerContext, HandlerSpec
from messaging.errors import ErrorClass, PermissionDeniedError, TransientError
from messaging.idempotency import idempotency_key
from messaging.retry import RetryPolicy
from messaging.testing import Finish, InMemoryTransport
from schemas.examples import example_data
from services.common.emitter import Emitter
from services.common.scope import TenantScope
from services.common.tenancy import require_tenant
from workflows.contracts import AskBook, InboundEvent, correlation_id_for, order_workflow_id

ACTOR = schemas.Actor(id="unit", type=schemas.ActorType.SYSTEM)
NO_RETRIES = RetryPolicy(retries=0, initial=0.0, max=0.0)


def _data(event_type: str) -> dict[str, Any]:
    return example_data(event_type, schemas.catalog.require(event_type).latest_version)


def _event(event_type: str, *, tenant: str = "acme", correlation_id: uuid.UUID | None = None,
           causation_id: uuid.UUID | None = None, **data: Any) -> schemas.Envelope:
    entry = schemas.catalog.require(event_type)
    payload = {**_data(event_type), **data}
    return schemas.new_event(event_type, payload, tenant_id=tenant,
                             correlation_id=correlation_id or uuid.uuid4(),
                             producer=schemas.producer_name(entry.publisher), actor=ACTOR,
                             causation_id=causation_id)


class _Calls:
    """A handler that records what it was handed."""

    def __init__(self) -> None:
        self.seen: list[tuple[schemas.Envelope, HandlerContext]] = []

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> dict[str, str]:
        self.seen.append((envelope, context))
        return {"handled": str(envelope.event_id)}


# -- the consumer's checks -------------------------------------------------------------------------
def test_a_published_event_reaches_its_handler_with_the_consumers_context() -> None:
    transport = InMemoryTransport()
    handler = _Calls()
    consumer = transport.subscribe({"order.created": handler}, group="unit")
    envelope = _event("order.created")
    record = transport.publish(envelope)
    [(seen, context)] = handler.seen
    assert seen.event_id == envelope.event_id and seen.data == envelope.data
    assert context.signature.ok and context.signature.service is schemas.Service.ORDER
    assert context.topic == schemas.topic_for("order.created", env="test")
    assert context.offset == record.offset()
    assert context.idempotency_key == idempotency_key(envelope.event_id, envelope.correlation_id, "unit")
    assert context.handler == "unit" and context.attempt == 1 and context.trace_id is not None
    assert [o.finish for o in consumer.outcomes] == [Finish.HANDLED] and transport.dead_letters() == []


def test_a_forged_signature_is_dead_lettered_as_permission_and_never_handled() -> None:
    transport = InMemoryTransport()
    handler = _Calls()
    transport.subscribe({"order.created": handler}, group="unit")
    envelope = _event("order.created")
    value = schemas.encode(envelope)
    signed = transport.keyring.as_signer("order").sign(value, event_type="order.created")
    forged = value.replace(b'"tenantId":"acme"', b'"tenantId":"evil"')
    assert forged != value
    transport.publish_raw(schemas.topic_for("order.created", env="test"), value=forged, headers=signed)
    assert handler.seen == []
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.PERMISSION and letter.exception == "SignatureError"
    assert "mismatch" in letter.reason and letter.handler is None and letter.group == "unit"
    assert letter.value == forged and letter.attempts == 1  # kept whole, never retried


def test_a_key_the_consumer_does_not_know_is_refused_like_a_forgery() -> None:
    transport = InMemoryTransport()
    handler = _Calls()
    transport.subscribe({"order.created": handler}, group="unit")
    stranger = schemas.Keyring.parse(schemas.generate_entry("order", "elsewhere"))  # another installation's
    envelope = _event("order.created")
    value = schemas.encode(envelope)
    headers = stranger.as_signer("order").sign(value, event_type="order.created")
    transport.publish_raw(schemas.topic_for("order.created", env="test"), value=value, headers=headers)
    [letter] = transport.dead_letters()
    assert handler.seen == [] and letter.error_class is ErrorClass.PERMISSION
    assert "unknown_key" in letter.reason


def test_a_service_may_not_sign_what_another_publishes_nor_pass_off_its_record_as_theirs() -> None:
    transport = InMemoryTransport()
    handler = _Calls()
    transport.subscribe({"order.created": handler}, group="unit")
    envelope = _event("order.created")
    with pytest.raises(schemas.SignatureError, match="notification may not sign order.created"):
        transport.publish(envelope, signer="notification")  # the producer refuses, as the real one does
    value = schemas.encode(envelope)
    headers = transport.keyring.as_signer("notification").sign(value)  # a producer that skips the check
    transport.publish_raw(schemas.topic_for("order.created", env="test"), value=value, headers=headers)
    assert handler.seen == []
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.PERMISSION and letter.exception == "UnauthorizedSignerError"
    assert "signed by notification" in letter.reason


def test_a_record_signed_outside_the_replay_window_is_an_inconsistency() -> None:
    transport = InMemoryTransport()
    handler = _Calls()
    transport.subscribe({"order.created": handler}, group="unit", max_event_age_s=3600.0)
    value = schemas.encode(_event("order.created"))
    old = transport.keyring.as_signer("order").sign(value, signed_at_ms=int((time.time() - 7200) * 1000))
    transport.publish_raw(schemas.topic_for("order.created", env="test"), value=value, headers=old)
    [letter] = transport.dead_letters()
    assert handler.seen == [] and letter.error_class is ErrorClass.INCONSISTENCY
    assert "outside the 1.0 h window" in letter.reason


def test_an_undecodable_record_is_a_validation_dead_letter() -> None:
    transport = InMemoryTransport()
    transport.subscribe({"order.created": _Calls()}, group="unit")
    value = b'{"eventType":"order.created","version":"v3"}'
    headers = transport.keyring.as_signer("order").sign(value)
    transport.publish_raw(schemas.topic_for("order.created", env="test"), value=value, headers=headers)
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.VALIDATION and letter.handler is None


# -- duplicates, retries, handler errors -----------------------------------------------------------
def test_a_duplicate_runs_its_handler_once_unless_the_consumer_keeps_no_keys() -> None:
    transport = InMemoryTransport()
    once, every = _Calls(), _Calls()
    transport.subscribe({"order.created": once}, group="with-keys")
    transport.subscribe({"order.created": every}, group="no-keys", dedupe=False)
    envelope = _event("order.created")
    transport.publish(envelope)
    transport.publish(envelope)  # redelivered: the same event id and flow
    assert len(once.seen) == 1 and len(every.seen) == 2
    assert every.seen[0][1].idempotency_key is None
    transport.publish(envelope.model_copy(update={"event_id": uuid.uuid4()}))  # another event
    assert len(once.seen) == 2


def test_a_failed_transactional_handler_keeps_no_key_so_its_retry_runs() -> None:
    transport = InMemoryTransport()
    runs: list[int] = []

    def flaky(envelope: schemas.Envelope, context: HandlerContext) -> None:
        runs.append(context.attempt)
        assert context.db is None  # no database: a transactional handler opens its own
        if context.attempt == 1:
            raise TransientError("database restarting")

    spec = HandlerSpec(flaky, "tx", transactional=True)
    consumer = transport.subscribe({"order.created": spec}, group="unit")
    envelope = _event("order.created")
    transport.publish(envelope)
    assert runs == [1, 2] and consumer.outcomes[-1].finish is Finish.HANDLED
    assert consumer.outcomes[-1].attempts == 2
    transport.publish(envelope)
    assert runs == [1, 2]  # its key was kept with the successful run: the duplicate is skipped


def test_a_transient_error_is_retried_per_the_profile_then_dead_lettered() -> None:
    transport = InMemoryTransport()
    attempts: list[int] = []

    def unreachable(envelope: schemas.Envelope, context: HandlerContext) -> None:
        attempts.append(context.attempt)
        raise TransientError("gateway unreachable")

    transport.subscribe({"order.created": unreachable}, group="unit")
    transport.publish(_event("order.created"))
    retries = schemas.catalog.require("order.created").retry_profile
    from messaging.retry import PROFILES

    expected = PROFILES[retries].retries + 1
    assert attempts == list(range(1, expected + 1))
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.TRANSIENT and letter.attempts == expected
    assert letter.reason == "gateway unreachable" and letter.exception == "TransientError"


def test_an_unknown_exception_is_named_in_its_dead_letter() -> None:
    transport = InMemoryTransport()

    def broken(envelope: schemas.Envelope, context: HandlerContext) -> None:
        raise KeyError("lines")

    transport.subscribe({"order.created": HandlerSpec(broken, "broken")}, group="unit",
                        retry_policy=NO_RETRIES)
    transport.publish(_event("order.created"))
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.NOT_FOUND and letter.exception == "KeyError"
    assert letter.handler == "broken" and letter.topic == schemas.dlq_topic_for("order.created", env="test")


# -- tenants ---------------------------------------------------------------------------------------
class _FlowLedger:
    """A service's door in miniature: a flow belongs to the tenant of its first event."""

    def __init__(self) -> None:
        self.owners: dict[uuid.UUID, str] = {}
        self.written: list[uuid.UUID] = []

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        require_tenant(envelope.tenant_id, self.owners.get(envelope.correlation_id),
                       f"flow {envelope.correlation_id}")
        self.owners.setdefault(envelope.correlation_id, envelope.tenant_id)
        self.written.append(envelope.event_id)


def test_a_foreign_tenants_record_naming_a_flow_is_refused_at_once_and_writes_nothing() -> None:
    transport = InMemoryTransport()
    ledger = _FlowLedger()
    transport.subscribe({"order.created": ledger}, group="unit")
    flow = uuid.uuid4()
    mine = _event("order.created", tenant="acme", correlation_id=flow)
    transport.publish(mine)
    transport.publish(_event("order.created", tenant="globex", correlation_id=flow))  # validly signed
    assert ledger.written == [mine.event_id]
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.PERMISSION and letter.exception == PermissionDeniedError.__name__
    assert "belongs to tenant 'acme'" in letter.reason and letter.attempts == 1


def test_a_tenant_scoped_consumer_leaves_other_tenants_records_alone() -> None:
    transport = InMemoryTransport()
    handler = _Calls()
    consumer = transport.subscribe({"order.created": handler}, group="unit",
                                   accept=TenantScope("acme").record_filter)
    transport.publish(_event("order.created", tenant="globex"))
    transport.publish(_event("order.created", tenant="acme-eu"))
    assert [e.tenant_id for e, _ in handler.seen] == ["acme-eu"]
    assert [o.served for o in consumer.outcomes] == [False, True] and transport.dead_letters() == []


# -- a real handler: the inbound bridge ------------------------------------------------------------
class _Saga:
    """The Temporal side of the bridge: the asks it waits on, the signals it got."""

    def __init__(self, workflow_id: str, book: AskBook) -> None:
        self.workflow_id = workflow_id
        self.book = book
        self.signals: list[InboundEvent] = []
        self.finished = False

    def query(self, workflow_id: str, query: str, *, timeout: float, result_type: type) -> AskBook:
        assert (query, result_type) == ("asks", AskBook)
        if workflow_id != self.workflow_id or self.finished:
            raise WorkflowNotFound(workflow_id)
        return self.book

    def signal(self, workflow_id: str, signal: str, arg: InboundEvent) -> None:
        if workflow_id != self.workflow_id or self.finished:
            raise WorkflowNotFound(workflow_id)
        assert signal == "domain_event"
        self.signals.append(arg)


def _bridged(tenant: str = "acme") -> tuple[InMemoryTransport, _Saga, schemas.Envelope]:
    """A transport with the bridge subscribed, a saga of one order waiting on its provisioning ask."""
    order_id = str(uuid.uuid4())
    workflow_id = order_workflow_id(tenant, order_id)
    ask = _event("order.provisioning-started", tenant=tenant,
                 correlation_id=uuid.UUID(correlation_id_for(workflow_id)), orderId=order_id)
    saga = _Saga(workflow_id, AskBook(open={str(ask.event_id): ["provisioning.completed",
                                                                 "provisioning.failed"]}))
    transport = InMemoryTransport()
    bridge = OrderBridge(saga)  # type: ignore[arg-type] - the signaller's two calls
    transport.subscribe(dict.fromkeys(BRIDGED_EVENT_TYPES, bridge), group=ORDER_BRIDGE_GROUP)
    return transport, saga, ask


def _answer(ask: schemas.Envelope, event_type: str = "provisioning.completed",
            **changes: Any) -> schemas.Envelope:
    publisher = schemas.catalog.require(event_type).publisher
    answer = schemas.derive_event(ask, event_type, {**_data(event_type), "orderId": str(ask.data.order_id)},
                                  actor=ACTOR, producer=schemas.producer_name(publisher))
    return answer.model_copy(update=changes)


def test_the_bridge_signals_the_saga_with_an_answer_to_its_open_ask() -> None:
    transport, saga, ask = _bridged()
    answer = _answer(ask)
    transport.publish(answer)
    [signal] = saga.signals
    assert signal.event_id == str(answer.event_id) and signal.causation_id == str(ask.event_id)
    assert signal.data == answer.data and signal.tenant_id == "acme" and transport.dead_letters() == []


def test_an_answer_emitted_by_a_service_travels_on_to_the_bridge() -> None:
    """A handler emits through the services' `Emitter` onto the transport; the bridge hears it."""
    transport, saga, ask = _bridged()
    emitter = Emitter(transport.producer("provisioning"), "provisioning")  # type: ignore[arg-type]

    def provision(envelope: schemas.Envelope, context: HandlerContext) -> None:
        data = _data("provisioning.completed")
        emitter.derive(envelope, "provisioning.completed", {**data, "orderId": str(envelope.data.order_id)},
                       key=f"{envelope.data.order_id}/completed")

    # Without keys of its own (as after they expired), so a redelivered ask runs it again.
    transport.subscribe({"order.provisioning-started": provision}, group="provisioning", dedupe=False)
    transport.publish(ask)
    [completed] = transport.events("provisioning.completed")
    assert completed.producer == "provisioning-service" and completed.causation_id == ask.event_id
    assert [s.event_id for s in saga.signals] == [str(completed.event_id)]
    transport.publish(ask)  # redelivered: the service re-emits the same event id, the bridge skips it
    first, again = transport.events("provisioning.completed")
    assert again.event_id == first.event_id and len(saga.signals) == 1
    with pytest.raises(ValueError, match="needs a producer signing as provisioning"):
        Emitter(transport.producer("billing"), "provisioning")  # type: ignore[arg-type]


def test_the_bridge_dead_letters_an_answer_of_another_flow_as_an_inconsistency() -> None:
    transport, saga, ask = _bridged()
    transport.publish(_answer(ask, correlation_id=uuid.uuid4()))
    [letter] = transport.dead_letters()
    assert saga.signals == [] and letter.error_class is ErrorClass.INCONSISTENCY
    assert "is not the flow of" in letter.reason and letter.handler == ORDER_BRIDGE_GROUP


def test_the_bridge_refuses_another_tenants_answer_to_this_tenants_order() -> None:
    transport, saga, ask = _bridged(tenant="acme")
    transport.publish(_answer(ask, tenant_id="globex"))  # validly signed, names acme's order and flow
    [letter] = transport.dead_letters()
    assert saga.signals == [] and letter.error_class is ErrorClass.INCONSISTENCY


def test_the_bridge_refuses_an_answer_to_an_ask_the_saga_never_made() -> None:
    transport, saga, ask = _bridged()
    transport.publish(_answer(ask, causation_id=uuid.uuid4()))
    transport.publish(_answer(ask, "provisioning.deprovisioned"))  # the ask's id, not its answer type
    assert saga.signals == []
    reasons = [letter.reason for letter in transport.dead_letters()]
    assert "which is not a request" in reasons[0] and "cannot answer request" in reasons[1]
    assert {letter.error_class for letter in transport.dead_letters()} == {ErrorClass.INCONSISTENCY}


def test_the_bridge_reports_an_answer_for_no_saga_as_not_found() -> None:
    transport, saga, ask = _bridged()
    saga.finished = True
    transport.publish(_answer(ask))
    [letter] = transport.dead_letters()
    assert letter.error_class is ErrorClass.NOT_FOUND and letter.exception == "NotFoundError"
