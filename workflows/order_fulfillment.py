"""`OrderFulfillmentWorkflow`: one durable saga per order.

Deterministic by construction: no clock, randomness or I/O here; every side effect (publishing an
event, opening an incident) is an activity, and each published event's id is derived from the
workflow id and the step, so a retried activity never mints a second event. Behaviour changes go
behind `workflow.patched` so the histories under tests/histories/ keep replaying: the first release
(publish `order.created`, return) is kept verbatim for workflows without the `full-saga` marker;
compensation that stops at the first failed undo for workflows without `every-undo`; inbound events
applied unchecked (the first of each type, asked for or not) for workflows without `trusted-replies`.

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
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import schemas
    from schemas import Payload
    from schemas.payloads._base import ResourceRef
    from schemas.payloads.billing import BillingRefundFailedV1
    from schemas.payloads.order import CompensationStep, FailureStage, OrderCancellationReason
    from schemas.payloads.provisioning import ProvisioningCompletedV3, ProvisioningFailedV1
    from workflows import events
    from workflows.contracts import (
        REPLIES,
        CompensationEntry,
        InboundEvent,
        IncidentRequest,
        OrderRequest,
        OrderResult,
        PaymentFailure,
        PublishedEvent,
        PublishRequest,
        TimelineEntry,
        step_event_id,
    )
    from workflows.ports import IncidentPort, PublishingPort
    from workflows.saga_state import (
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

_REFUND_DONE = "billing.refund-completed"
_PROV_DONE = "provisioning.completed"
_PROV_FAILED = "provisioning.failed"

P = TypeVar("P", bound=Payload)
Undone = tuple[bool, str, str]  # (confirmed, the last event of the undo, why it failed)


def _failures_reason(failures: list[tuple[CompensationStep, str]]) -> str:
    """One undo's reason as it was; several: the step names first, so a cut to ShortText keeps them."""
    if len(failures) == 1:
        return failures[0][1]
    names = ", ".join(step for step, _ in failures)
    details = "; ".join(f"{step}: {why}" for step, why in failures)
    return f"undos failed: {names} — {details}"


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
        self._order = order
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
            await workflow.wait_condition(
                lambda: bool(self._payment or self._payment_failure or self._cancel),
                timeout=timedelta(seconds=timings.payment_timeout_s),
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
            await workflow.wait_condition(
                lambda: _PROV_DONE in self._inbound or _PROV_FAILED in self._inbound,
                timeout=timedelta(seconds=order.timings.provisioning_timeout_s),
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
        will_release = any(
            e.step == CompensationStep.DEPROVISION_RESOURCES and e.resources != [] for e in self._stack
        )
        if by_customer and not will_release:
            notice = await self._publish(
                "cancelled", self._cancelled_payload(cancel_reason, []), last, compensation=True
            )
            last = notice.event_id
        refunded = None
        failures: list[tuple[CompensationStep, str]] = []  # (step, why), in the order they failed
        for entry in list(reversed(self._stack)):  # newest first
            ok, last, why = await self._undo(entry, cancel_reason, by_customer, last)
            if entry.step == CompensationStep.REFUND_PAYMENT:
                refunded = order.total if ok else None
            if ok:
                self._stack = [owed for owed in self._stack if owed is not entry]
                self._completed.append(entry.step)
                continue
            failures.append((entry.step, why))
            if not workflow.patched(PATCH_EVERY_UNDO):
                break  # the first release gave up at the first failed undo
        if failures:
            return await self._compensation_failed(failures, last)
        if self._completed:
            done = await self._publish(
                "compensation-completed",
                events.compensation_completed(order, self._completed, refunded),
                last,
                compensation=True,
            )
            last = done.event_id
        if by_customer:
            await self._set(SagaStatus.CANCELLED, SagaStep.DONE)
            return self._result(last)
        failed = await self._publish(
            "failed",
            events.failed(order, stage=stage, error_code=error_code, reason=reason, compensated=True),
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
    ) -> Undone:
        """Run one undo: (confirmed, the last event of it, why it failed)."""
        await self._set(SagaStatus.COMPENSATING, SagaStep.undoing(entry.step))
        if entry.step != CompensationStep.DEPROVISION_RESOURCES:
            return await self._refund(by_customer, cause_id)
        if entry.resources == []:
            return True, cause_id, ""  # nothing was created, nothing to release
        return await self._deprovision(entry, cancel_reason, cause_id)

    async def _deprovision(
        self, entry: CompensationEntry, reason: OrderCancellationReason, cause_id: str
    ) -> Undone:
        """Ask with `order.cancelled` until `provisioning.deprovisioned` confirms the release."""
        resources = list(reversed(entry.resources or []))
        answer, last = await self._ask_until_confirmed(
            "cancelled", lambda: self._cancelled_payload(reason, resources), cause_id
        )
        if answer is None:
            return False, last, "deprovisioning was never confirmed"
        return True, answer.event_id, ""

    async def _refund(self, by_customer: bool, cause_id: str) -> Undone:
        """Ask with `billing.refund-requested` (one idempotency key for every ask) until Billing answers."""
        order, payment = self._require_order(), self._payment
        assert payment is not None
        answer, last = await self._ask_until_confirmed(
            "refund-requested",
            lambda: events.refund_requested(order, payment, by_customer=by_customer),
            cause_id,
        )
        if answer is None:
            return False, last, "the refund was never confirmed"
        if answer.event_type == _REFUND_DONE:
            return True, answer.event_id, ""
        failure = _data(answer, BillingRefundFailedV1)
        return False, answer.event_id, f"refund failed: {failure.error_code} {failure.reason}"

    async def _ask_until_confirmed(
        self, step: str, ask: Callable[[], Payload], cause_id: str
    ) -> tuple[InboundEvent | None, str]:
        """Publish an undo's ask and wait one compensation window for an answer; ask again (`step#2`,
        `step#3`, …) after each window that passes unanswered.

        Returns the answer (the first of `REPLIES` that arrived, in their order) or None once the last
        window passed, and the id of the last ask published. The ask's data is built anew for every
        ask, so each carries what the saga knows by then.
        """
        ask_type = _event_type(ask())
        answers = REPLIES[ask_type]
        last = cause_id
        for attempt, window in enumerate(self._require_order().timings.compensation_windows_s, start=1):
            asked = await self._publish(
                step if attempt == 1 else f"{step}#{attempt}", ask(), cause_id, compensation=True, ask=True
            )
            last = asked.event_id
            try:
                await workflow.wait_condition(
                    lambda: any(answer in self._inbound for answer in answers),
                    timeout=timedelta(seconds=window),
                )
            except TimeoutError:
                continue
            self._asks.close(ask_type)
            return next(self._inbound[answer] for answer in answers if answer in self._inbound), last
        self._asks.close(ask_type)
        return None, last

    async def _compensation_failed(
        self, failures: list[tuple[CompensationStep, str]], cause_id: str
    ) -> OrderResult:
        """Every failed undo goes to a person: the event (v2: `failedSteps`, the first also in
        `failedStep`) and the incident name each one, the reason says why, and what was undone.

        Only the activity's input gains `failedSteps` (the publish activity encodes the latest
        version): the commands are the same, so no `workflow.patched` guard is needed."""
        order = self._require_order()
        step = failures[0][0]
        failed_steps = [failed for failed, _ in failures]
        why = _failures_reason(failures)
        self._failure = why
        failed_comp = await self._publish(
            "compensation-failed",
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
                failed_step=step,
                completed_steps=list(self._completed),
                reason=why,
                failed_steps=list(failed_steps),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_COMPENSATION_RETRY,
        )
        stage = FailureStage.BILLING if step == CompensationStep.REFUND_PAYMENT else FailureStage.PROVISIONING
        failed = await self._publish(
            "failed",
            events.failed(
                order, stage=stage, error_code="COMPENSATION_FAILED", reason=why, compensated=False
            ),
            failed_comp.event_id,
        )
        await self._set(SagaStatus.COMPENSATION_FAILED, SagaStep.MANUAL_REVIEW)
        return self._result(failed.event_id)

    # -------------------------------------------------------------- helpers
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
        published = await workflow.execute_activity_method(
            PublishingPort.publish_event,
            PublishRequest(
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
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_COMPENSATION_RETRY if compensation else _PUBLISH_RETRY,
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

