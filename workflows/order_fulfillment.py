"""`OrderFulfillmentWorkflow`: one durable saga per order.

Deterministic by construction: no clock, randomness or I/O here; every side effect (publishing an
event, opening an incident) is an activity, and each published event's id is derived from the
workflow id and the step, so a retried activity never mints a second event. Behaviour changes go
behind `workflow.patched` so the histories under tests/histories/ keep replaying: the first release
(publish `order.created`, return) is kept verbatim for workflows without the `full-saga` marker;
compensation that stops at the first failed undo for workflows without `every-undo`; inbound events
applied unchecked (the first of each type, asked for or not) for workflows without `trusted-replies`;
each step published by a regular activity, and the search attributes and memo written at every
change of status, for workflows without `local-steps` (since: a local activity first, the regular one
only after it failed; the state written where the saga waits or ends).

The saga talks to the other services only through events: it publishes through the `publish_event`
activity and hears back through the `domain_event` signal, which the inbound bridge sends. It
applies an inbound event only when it answers one of its own open asks: its `causationId` is the id
of a request the saga published and still waits on (ids are derived from the step, so the saga knows
an ask's id before publishing it), its type is an answer to that request (`REPLIES`) and its tenant
is the saga's. Anything else is recorded in the timeline as ignored; the bridge dead-letters it first.

Its memory, signals and queries are `workflows.saga_state.SagaState`; this class is the behaviour.
Event data is built as `schemas` payload models (`workflows.events`); activities are scheduled by
method reference (`workflows.ports`). Neither changes a command: the same activities are scheduled
with the same names, options and wire JSON, so no patch guards this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import schemas
    from schemas import Money, Payload
    from schemas.payloads._base import ResourceRef
    from schemas.payloads.billing import BillingRefundFailedV1
    from schemas.payloads.order import CompensationStep, FailureStage, OrderCancellationReason
    from schemas.payloads.provisioning import ProvisioningCompletedV3, ProvisioningFailedV1
    from workflows import events
    from workflows.contracts import (
        REPLIES,
        CompensationEntry,
        InboundEvent,
        IncidentClosure,
        IncidentDecision,
        IncidentRequest,
        IncidentTicket,
        OrderRequest,
        OrderResult,
        PaymentFailure,
        PublishedEvent,
        PublishRequest,
        TimelineEntry,
        step_event_id,
    )
    from workflows.incident import OrderIncidentWorkflow
    from workflows.metadata import (
        incident_summary,
        incident_workflow_id,
        open_incident_summary,
        publish_summary,
        wait_summary,
        window_summary,
    )
    from workflows.ports import IncidentPort, PublishingPort
    from workflows.saga_state import (
        PATCH_LOCAL_STEPS,
        PATCH_OPERATOR_VIEW,
        PATCH_TRUSTED_REPLIES,
        SA_CORRELATION_ID,
        SA_ORDER_STATUS,
        SA_ORDER_STEP,
        SA_TENANT_ID,
        SagaState,
    )
    from workflows.states import SagaStatus, SagaStep

__all__ = [
    "ORDER_TASK_QUEUE",
    "PATCH_EVERY_UNDO",
    "PATCH_FULL_SAGA",
    "PATCH_LOCAL_STEPS",
    "PATCH_OPERATOR_VIEW",
    "PATCH_TRUSTED_REPLIES",
    "OrderFulfillmentWorkflow",
    "SA_CORRELATION_ID",
    "SA_ORDER_STATUS",
    "SA_ORDER_STEP",
    "SA_TENANT_ID",
]

ORDER_TASK_QUEUE = "cloud-factory-orders"
PATCH_FULL_SAGA = "full-saga"
# After a failed undo, still try every remaining one (newest first) and name every failure.
PATCH_EVERY_UNDO = "every-undo"
_PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)
# Compensation must finish: retry forever-ish with 2 s → 4 s → 8 s → 16 s → 30 s cap.
_COMPENSATION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)
# `local-steps`: a step's local publish is tried once; a failure (Kafka refused within the producer's
# delivery timeout) hands the step to the regular activity, which Temporal retries in plain view.
_ONE_LOCAL_TRY = RetryPolicy(maximum_attempts=1)
# How a local activity's failure reaches the workflow: the activity's own error, bare (a regular
# activity's comes wrapped in ActivityError), or its timeout.
_LOCAL_FAILURES = (ActivityError, ApplicationError, ActivityTimeout)
_PUBLISH_TIMEOUT = timedelta(seconds=60)

_REFUND_DONE = "billing.refund-completed"
_PROV_DONE = "provisioning.completed"
_PROV_FAILED = "provisioning.failed"

P = TypeVar("P", bound=Payload)
Undone = tuple[bool, str, str]  # (confirmed, the last event of the undo, why it failed)
Failures = list[tuple[CompensationStep, str]]  # (undo, why it failed), in the order they failed
_ASK_NAMES = MappingProxyType({"refund-requested": "refund", "cancelled": "release"})


@dataclass
class _Compensation:
    """Why the saga compensates: what the final events say once every undo is done."""

    stage: FailureStage
    error_code: str
    reason: str
    by_customer: bool
    cancel_reason: OrderCancellationReason
    refunded: Money | None = None


def _failures_reason(failures: list[tuple[CompensationStep, str]]) -> str:
    """One undo's reason as it was; several: the step names first, so a cut to ShortText keeps them."""
    if len(failures) == 1:
        return failures[0][1]
    names = ", ".join(step for step, _ in failures)
    details = "; ".join(f"{step}: {why}" for step, why in failures)
    return f"undos failed: {names} — {details}"


def _stage_of(undo: CompensationStep) -> FailureStage:
    """Where a failed compensation failed: Billing's refund, or Provisioning's release."""
    return FailureStage.BILLING if undo == CompensationStep.REFUND_PAYMENT else FailureStage.PROVISIONING


def _ask_number(step: str) -> int:
    """Which ask of an undo a step is (`refund-requested#3` → 3; the first has no suffix)."""
    return int(step.rsplit("#", 1)[1]) if "#" in step else 1


def _event_type(data: Payload) -> str:
    """The event type whose payload `data` is (each payload class belongs to one catalog entry)."""
    return schemas.catalog.owner_of(type(data))[0].event_type


def _data(event: InboundEvent, model: type[P]) -> P:
    """`event`'s payload as `model`: the bridge delivers the latest version, checked by the contract."""
    assert isinstance(event.data, model), f"{event.event_type} {event.version} is not {model.__name__}"
    return event.data


@workflow.defn
class OrderFulfillmentWorkflow(SagaState):
    """The saga's behaviour: the forward path, its failure paths and the compensation."""

    # ------------------------------------------------------------------ run
    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        if not workflow.patched(PATCH_FULL_SAGA):
            return await self._first_release(order)
        self._trusting()
        self._operator = workflow.patched(PATCH_OPERATOR_VIEW)
        self._local = workflow.patched(PATCH_LOCAL_STEPS)
        self._order = order
        if not self._local:  # since `local-steps` the first `_mirror` indexes the saga
            workflow.upsert_search_attributes(
                [
                    SA_CORRELATION_ID.value_set(order.correlation_id),
                    SA_TENANT_ID.value_set(order.tenant_id),
                    SA_ORDER_STATUS.value_set(SagaStatus.CREATED),
                    SA_ORDER_STEP.value_set(SagaStep.ORDER_CREATED),
                ]
            )
        self._status, self._step = SagaStatus.CREATED, SagaStep.ORDER_CREATED
        created = await self._publish("order-created", order.created_payload(), None)
        await self._set(SagaStatus.AWAITING_PAYMENT, SagaStep.AWAITING_PAYMENT)
        return await self._after_created(order, created.event_id)

    async def _first_release(self, order: OrderRequest) -> OrderResult:
        """The original workflow (kept for histories recorded before the full saga)."""
        workflow.upsert_search_attributes(
            [
                SA_CORRELATION_ID.value_set(order.correlation_id),
                SA_TENANT_ID.value_set(order.tenant_id),
                SA_ORDER_STATUS.value_set(SagaStatus.CREATED),
            ]
        )
        self._order = order
        created = await self._publish("order-created", order.created_payload(), None)
        self._status = SagaStatus.CREATED
        return self._result(created.event_id)

    async def _after_created(self, order: OrderRequest, created_id: str) -> OrderResult:
        timings = order.timings
        try:
            await self._wait(
                lambda: bool(self._payment or self._payment_failure or self._cancel),
                timings.payment_timeout_s,
                wait_summary("the payment", timings.payment_timeout_s),
            )
        except TimeoutError:
            self._payment_failure = PaymentFailure("PAYMENT_TIMEOUT", "no payment arrived in time")
        if self._payment_failure is not None and self._payment is None:
            return await self._payment_failed(order, self._payment_failure, created_id)
        if self._payment is None:
            return await self._cancelled(FailureStage.VALIDATION, created_id)
        paid = await self._publish(
            "payment-confirmed", events.payment_confirmed(order, self._payment), created_id
        )
        self._stack.append(CompensationEntry(CompensationStep.REFUND_PAYMENT, "order.payment-confirmed"))
        await self._set(SagaStatus.PAID, SagaStep.PAYMENT_CONFIRMED)
        if self._cancel is not None:
            return await self._cancelled(FailureStage.PAYMENT, paid.event_id)
        return await self._provision(order, paid.event_id)

    async def _provision(self, order: OrderRequest, paid_id: str) -> OrderResult:
        started = await self._publish(
            "provisioning-started", events.provisioning_started(order), paid_id, ask=True
        )
        entry = CompensationEntry(CompensationStep.DEPROVISION_RESOURCES, "order.provisioning-started", None)
        self._stack.append(entry)
        await self._set(SagaStatus.PROVISIONING, SagaStep.AWAITING_PROVISIONING)
        # A cancel during provisioning waits for it to settle, so the undo knows what exists.
        try:
            await self._wait(
                lambda: _PROV_DONE in self._inbound or _PROV_FAILED in self._inbound,
                order.timings.provisioning_timeout_s,
                wait_summary("provisioning", order.timings.provisioning_timeout_s),
            )
        except TimeoutError:
            self._asks.close("order.provisioning-started")
            return await self._compensate(
                stage=FailureStage.PROVISIONING,
                error_code="PROVISIONING_TIMEOUT",
                reason="provisioning did not answer in time",
                cause_id=started.event_id,
                by_customer=False,
            )
        self._asks.close("order.provisioning-started")
        if _PROV_FAILED in self._inbound and _PROV_DONE not in self._inbound:
            failed = self._inbound[_PROV_FAILED]
            failure = _data(failed, ProvisioningFailedV1)
            entry.resources = list(failure.partial_resources)
            return await self._compensate(
                stage=FailureStage.PROVISIONING,
                error_code=failure.error_code,
                reason=failure.reason,
                cause_id=failed.event_id,
                by_customer=False,
            )
        completed = self._inbound[_PROV_DONE]
        self._resources = list(_data(completed, ProvisioningCompletedV3).resources)
        entry.resources = list(self._resources)
        if self._cancel is not None:
            return await self._cancelled(FailureStage.PROVISIONING, completed.event_id)
        return await self._deliver(order, completed.event_id)

    async def _deliver(self, order: OrderRequest, completed_id: str) -> OrderResult:
        fulfilled = await self._publish("fulfilled", events.fulfilled(order, self._resources), completed_id)
        await self._set(SagaStatus.FULFILLED, SagaStep.FULFILLED)
        if self._cancel is not None:
            return await self._cancelled(FailureStage.PROVISIONING, fulfilled.event_id)
        delivered = await self._publish(
            "service-delivered", events.service_delivered(order, self._resources), fulfilled.event_id
        )
        self._stack.clear()
        await self._set(SagaStatus.DELIVERED, SagaStep.DONE)
        return self._result(delivered.event_id)

    # --------------------------------------------------------- failure paths
    async def _payment_failed(
        self, order: OrderRequest, failure: PaymentFailure, cause_id: str
    ) -> OrderResult:
        self._failure = failure.reason
        failed = await self._publish(
            "failed",
            events.failed(
                order,
                stage=FailureStage.PAYMENT,
                error_code=failure.error_code,
                reason=failure.reason,
                compensated=False,
            ),
            cause_id,
        )
        await self._set(SagaStatus.PAYMENT_FAILED, SagaStep.DONE)
        return self._result(failed.event_id)

    async def _cancelled(self, stage: FailureStage, cause_id: str) -> OrderResult:
        """The customer cancelled while the saga was at `stage`: undo what was done, end `cancelled`."""
        return await self._compensate(
            stage=stage, error_code="CANCELLED", reason="cancelled", cause_id=cause_id, by_customer=True
        )

    async def _compensate(
        self, *, stage: FailureStage, error_code: str, reason: str, cause_id: str, by_customer: bool
    ) -> OrderResult:
        """Undo what was done, newest first; a customer cancel ends `cancelled`, a failure `compensated`."""
        order = self._require_order()
        if not by_customer:
            self._failure = reason
        await self._set(SagaStatus.COMPENSATING, SagaStep.COMPENSATION_STARTED)
        last = cause_id
        if self._stack:
            started = await self._publish(
                "compensation-started",
                events.compensation_started(order, stage, [entry.step for entry in reversed(self._stack)]),
                last,
                compensation=True,
            )
            last = started.event_id
        if by_customer:
            cancel_reason = OrderCancellationReason.CUSTOMER_REQUEST
        elif stage == FailureStage.PROVISIONING:
            cancel_reason = OrderCancellationReason.OUT_OF_CAPACITY
        else:
            cancel_reason = OrderCancellationReason.ADMINISTRATIVE
        why = _Compensation(stage, error_code, reason, by_customer, cancel_reason)
        will_release = any(
            e.step == CompensationStep.DEPROVISION_RESOURCES and e.resources != [] for e in self._stack
        )
        if by_customer and not will_release:
            notice = await self._publish(
                "cancelled", self._cancelled_payload(cancel_reason, []), last, compensation=True
            )
            last = notice.event_id
        failures, last = await self._undo_owed(why, last, retry=0)
        if not failures:
            return await self._compensated(why, last)
        if not self._operator:
            return await self._compensation_failed(failures, last)
        return await self._wait_for_a_person(why, failures, last)

    async def _undo_owed(self, why: _Compensation, cause_id: str, *, retry: int) -> tuple[Failures, str]:
        """Run every owed undo, newest first; (the ones that failed, the last event published).

        A confirmed undo leaves the stack; a failed one stays owed (for a person's retry). Before
        `every-undo`, the first failure ended the round."""
        order = self._require_order()
        last = cause_id
        failures: Failures = []
        for entry in list(reversed(self._stack)):  # newest first
            ok, last, failure = await self._undo(entry, why.cancel_reason, why.by_customer, last, retry=retry)
            if entry.step == CompensationStep.REFUND_PAYMENT:
                why.refunded = order.total if ok else None
            if ok:
                self._stack = [owed for owed in self._stack if owed is not entry]
                self._completed.append(entry.step)
                self._undo_state(entry.step, "done")
                continue
            failures.append((entry.step, failure))
            self._undo_state(entry.step, f"FAILED: {failure}")
            if not workflow.patched(PATCH_EVERY_UNDO):
                break  # the first release gave up at the first failed undo
        return failures, last

    async def _compensated(self, why: _Compensation, last: str) -> OrderResult:
        """Every undo is done: say so, then end `cancelled` (the customer's) or `compensated`."""
        order = self._require_order()
        if self._completed:
            done = await self._publish(
                "compensation-completed",
                events.compensation_completed(order, self._completed, why.refunded),
                last,
                compensation=True,
            )
            last = done.event_id
        if why.by_customer:
            await self._set(SagaStatus.CANCELLED, SagaStep.DONE)
            return self._result(last)
        failed = await self._publish(
            "failed",
            events.failed(order, stage=why.stage, error_code=why.error_code, reason=why.reason,
                          compensated=True),
            last,
        )
        await self._set(SagaStatus.COMPENSATED, SagaStep.DONE)
        return self._result(failed.event_id)

    async def _undo(
        self,
        entry: CompensationEntry,
        cancel_reason: OrderCancellationReason,
        by_customer: bool,
        cause_id: str,
        *,
        retry: int = 0,
    ) -> Undone:
        """Run one undo: (confirmed, the last event of it, why it failed)."""
        await self._set(SagaStatus.COMPENSATING, SagaStep.undoing(entry.step))
        self._undo_state(entry.step, "running" if retry == 0 else f"running (retry {retry})")
        if entry.step != CompensationStep.DEPROVISION_RESOURCES:
            return await self._refund(by_customer, cause_id, retry)
        if entry.resources == []:
            return True, cause_id, ""  # nothing was created, nothing to release
        return await self._deprovision(entry, cancel_reason, cause_id, retry)

    async def _deprovision(
        self, entry: CompensationEntry, reason: OrderCancellationReason, cause_id: str, retry: int
    ) -> Undone:
        """Ask with `order.cancelled` until `provisioning.deprovisioned` confirms the release."""
        resources = list(reversed(entry.resources or []))
        answer, last = await self._ask_until_confirmed(
            "cancelled", lambda: self._cancelled_payload(reason, resources), cause_id, retry
        )
        if answer is None:
            return False, last, "deprovisioning was never confirmed"
        return True, answer.event_id, ""

    async def _refund(self, by_customer: bool, cause_id: str, retry: int) -> Undone:
        """Ask with `billing.refund-requested` (one idempotency key for every ask) until Billing answers.

        A person's retry after Billing declined asks under a new key (that refund failed, no money
        moved); after a refund that was never confirmed it keeps the key, so Billing answers with
        what it did rather than paying out twice."""
        order, payment = self._require_order(), self._payment
        assert payment is not None
        round_ = self._refund_round
        answer, last = await self._ask_until_confirmed(
            "refund-requested",
            lambda: events.refund_requested(order, payment, by_customer=by_customer, round_=round_),
            cause_id,
            retry,
        )
        if answer is None:
            return False, last, "the refund was never confirmed"
        if answer.event_type == _REFUND_DONE:
            return True, answer.event_id, ""
        failure = _data(answer, BillingRefundFailedV1)
        self._refund_round += 1
        return False, answer.event_id, f"refund failed: {failure.error_code} {failure.reason}"

    async def _ask_until_confirmed(
        self, step: str, ask: Callable[[], Payload], cause_id: str, retry: int = 0
    ) -> tuple[InboundEvent | None, str]:
        """Publish an undo's ask and wait one compensation window for an answer; ask again (`step#2`,
        `step#3`, …) after each window that passes unanswered.

        Returns the answer (the first of `REPLIES` that arrived, in their order) or None once the last
        window passed, and the id of the last ask published. The ask's data is built anew for every
        ask, so each carries what the saga knows by then. A person's retry `n` asks as `step@retryn`
        (new event ids), forgetting the answers of the earlier round first.
        """
        ask_type = _event_type(ask())
        answers = REPLIES[ask_type]
        if retry:
            step = f"{step}@retry{retry}"
            for answer in answers:
                self._inbound.pop(answer, None)
        last = cause_id
        windows = self._require_order().timings.compensation_windows_s
        for attempt, window in enumerate(windows, start=1):
            asked = await self._publish(
                step if attempt == 1 else f"{step}#{attempt}", ask(), cause_id, compensation=True, ask=True
            )
            last = asked.event_id
            try:
                await self._wait(
                    lambda: any(answer in self._inbound for answer in answers),
                    window,
                    window_summary(_ASK_NAMES.get(step.split("@")[0], step), attempt, len(windows), window),
                )
            except TimeoutError:
                continue
            self._asks.close(ask_type)
            return next(self._inbound[answer] for answer in answers if answer in self._inbound), last
        self._asks.close(ask_type)
        return None, last

    async def _record_failure(
        self, failures: Failures, cause_id: str, *, retry: int, key: CompensationStep | None = None
    ) -> PublishedEvent:
        """`order.compensation-failed` naming every failed undo, and the incident row for a person.

        The row is keyed by the saga's first failed undo (`key`, also on a person's retry that failed
        again), so one saga has one row, updated with each round's failures and closed once.

        Only the activity's input gains `failedSteps` (the publish activity encodes the latest
        version): the commands are the same, so no `workflow.patched` guard is needed."""
        order = self._require_order()
        failed_steps = [failed for failed, _ in failures]
        why = _failures_reason(failures)
        self._failure = why
        failed_comp = await self._publish(
            "compensation-failed" if retry == 0 else f"compensation-failed@retry{retry}",
            events.compensation_failed(order, failed_steps, self._completed, why),
            cause_id,
            compensation=True,
        )
        await workflow.execute_activity_method(
            IncidentPort.open_incident,
            IncidentRequest(
                workflow_id=workflow.info().workflow_id,
                tenant_id=order.tenant_id,
                order_id=order.order_id,
                correlation_id=order.correlation_id,
                failed_step=key or failed_steps[0],
                completed_steps=list(self._completed),
                reason=why,
                failed_steps=list(failed_steps),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_COMPENSATION_RETRY,
            summary=open_incident_summary(failed_steps),
        )
        return failed_comp

    async def _compensation_failed(self, failures: Failures, cause_id: str) -> OrderResult:
        """Before `operator-view`: every failed undo goes to a person as an incident row, and the saga
        ends `compensation_failed` (the event and the incident name each failed undo)."""
        order = self._require_order()
        step = failures[0][0]
        failed_comp = await self._record_failure(failures, cause_id, retry=0)
        stage = _stage_of(step)
        failed = await self._publish(
            "failed",
            events.failed(
                order, stage=stage, error_code="COMPENSATION_FAILED", reason=_failures_reason(failures),
                compensated=False,
            ),
            failed_comp.event_id,
        )
        await self._set(SagaStatus.COMPENSATION_FAILED, SagaStep.MANUAL_REVIEW)
        return self._result(failed.event_id)

    async def _wait_for_a_person(self, why: _Compensation, failures: Failures, cause_id: str) -> OrderResult:
        """An undo failed: open the incident and wait for a person (an `OrderIncident` child).

        `retry` runs the owed undos again, newest first — done, the saga ends as if nothing had
        failed (`order.compensation-completed`, then `order.failed` or `cancelled`); failed again, the
        next incident opens. `resolve` records the person's fix and ends `resolved_manually` with
        `order.failed`; nobody deciding before the deadline ends it `compensation_failed`. The
        incident row is closed with the decision (left open when it expired)."""
        order = self._require_order()
        first_step = failures[0][0]
        retry = 0
        while True:
            failed_comp = await self._record_failure(failures, cause_id, retry=retry, key=first_step)
            decision = await self._incident(failures, attempt=retry + 1)
            cause_id = failed_comp.event_id
            if decision.action == "retry":
                retry += 1
                await self._set(SagaStatus.COMPENSATING, SagaStep.COMPENSATION_STARTED)
                failures, last = await self._undo_owed(why, cause_id, retry=retry)
                if failures:
                    cause_id = last
                    continue
                await self._close_incident(first_step, "retried", decision)
                self._failure = why.reason if not why.by_customer else None
                return await self._compensated(why, last)
            reason = _failures_reason(failures)
            status = SagaStatus.COMPENSATION_FAILED
            if decision.action == "resolve":
                reason = f"resolved by hand ({decision.by}): {decision.note}; {reason}"
                status = SagaStatus.RESOLVED_MANUALLY
                await self._close_incident(first_step, "resolved", decision)
            stage = _stage_of(failures[0][0])
            failed = await self._publish(
                "failed",
                events.failed(order, stage=stage, error_code="COMPENSATION_FAILED", reason=reason,
                              compensated=False),
                cause_id,
            )
            self._failure = reason
            await self._set(status, SagaStep.DONE)
            return self._result(failed.event_id)

    async def _incident(self, failures: Failures, *, attempt: int) -> IncidentDecision:
        """Start the incident that waits for a person and wait for their decision."""
        order = self._require_order()
        failed_steps = [failed for failed, _ in failures]
        saga_id = workflow.info().workflow_id
        ticket = IncidentTicket(
            saga_workflow_id=saga_id,
            order_id=order.order_id,
            tenant_id=order.tenant_id,
            attempt=attempt,
            failed_steps=failed_steps,
            completed_steps=list(self._completed),
            reason=_failures_reason(failures),
            deadline_s=order.timings.incident_deadline_s,
        )
        self._incident_id = incident_workflow_id(saga_id, attempt)
        await self._set(SagaStatus.COMPENSATION_FAILED, SagaStep.MANUAL_REVIEW)
        self._mirror()  # the saga waits for a person from here
        incident = await workflow.start_child_workflow(
            OrderIncidentWorkflow.run,
            ticket,
            id=self._incident_id,
            static_summary=incident_summary(order, failed_steps),
            static_details=f"Saga `{saga_id}` could not undo: {ticket.reason}. "
            "Retry the undos once the cause is fixed, or resolve with a note saying what was done by hand.",
            search_attributes=TypedSearchAttributes(
                [
                    SA_CORRELATION_ID.value_set(order.correlation_id),
                    SA_TENANT_ID.value_set(order.tenant_id),
                    SA_ORDER_STATUS.value_set(SagaStatus.COMPENSATION_FAILED),
                ]
            ),
            parent_close_policy=ParentClosePolicy.TERMINATE,
        )
        self._incident_started = True  # from now on a person's Update finds it (`status.incident_id`)
        decision = await incident
        self._incident_id, self._incident_started = None, False
        return decision

    async def _close_incident(self, step: CompensationStep, resolution: str,
                              decision: IncidentDecision) -> None:
        await workflow.execute_activity_method(
            IncidentPort.close_incident,
            IncidentClosure(
                workflow_id=workflow.info().workflow_id,
                failed_step=step,
                resolution=resolution,
                note=decision.note,
                by=decision.by,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_COMPENSATION_RETRY,
            summary=f"close incident ({resolution}) → Order (orders.incidents)",
        )

    # -------------------------------------------------------------- helpers
    async def _wait(self, condition: Callable[[], bool], timeout_s: float, summary: str) -> None:
        """Wait for `condition` (TimeoutError after `timeout_s`), the state mirrored first when it
        waits at all: a reader sees the saga where it waits."""
        if not condition():
            self._mirror()
        timeout = timedelta(seconds=timeout_s)
        await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)

    async def _publish_locally(self, request: PublishRequest, summary: str) -> PublishedEvent | None:
        """`local-steps`: one try by a local activity, in this workflow task; None when it failed.

        The step's event id is derived from the step, so the regular activity that takes over sends
        the same event again at most (consumers drop the duplicate by its id)."""
        try:
            return await workflow.execute_local_activity_method(
                PublishingPort.publish_event,
                request,
                start_to_close_timeout=_PUBLISH_TIMEOUT,
                retry_policy=_ONE_LOCAL_TRY,
                summary=summary,
            )
        except _LOCAL_FAILURES as failed:
            why = failed.cause or failed
            workflow.logger.warning("%s: the local publish failed (%s); retried as an activity", summary, why)
            return None

    def _cancelled_payload(
        self, reason: OrderCancellationReason, resources: list[ResourceRef]
    ) -> Payload:
        """`order.cancelled`; the customer's note only on a customer's cancel."""
        customer = reason == OrderCancellationReason.CUSTOMER_REQUEST
        note = self._cancel.note if self._cancel is not None and customer else None
        return events.cancelled(self._require_order(), reason, note, resources)

    async def _publish(
        self,
        step: str,
        data: Payload,
        causation_id: str | None,
        *,
        compensation: bool = False,
        ask: bool = False,
    ) -> PublishedEvent:
        """Publish one step's event (its type is the one `data` is the payload of); an `ask` is
        registered (by its derived id) before it goes out, so its answer always finds it open."""
        order = self._require_order()
        event_type = _event_type(data)
        if ask and self._trusting():
            self._asks.open(step_event_id(workflow.info().workflow_id, step), event_type)
        request = PublishRequest(
            workflow_id=workflow.info().workflow_id,
            step=step,
            event_type=event_type,
            data=data,
            tenant_id=order.tenant_id,
            correlation_id=order.correlation_id,
            causation_id=causation_id,
            actor_id=order.actor_id,
            actor_type=order.actor_type,
            occurred_at=workflow.now().isoformat(),
        )
        summary = publish_summary(event_type, _ask_number(step))
        published = await self._publish_locally(request, summary) if self._local else None
        if published is None:
            published = await workflow.execute_activity_method(
                PublishingPort.publish_event,
                request,
                start_to_close_timeout=_PUBLISH_TIMEOUT,
                retry_policy=_COMPENSATION_RETRY if compensation else _PUBLISH_RETRY,
                summary=summary,
            )
        self._timeline.append(
            TimelineEntry(
                "out",
                published.event_type,
                published.event_id,
                workflow.now().isoformat(),
                causation_id,
                published.topic,
                published.partition,
                published.offset,
            )
        )
        return published

