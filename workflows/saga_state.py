"""What one saga knows and tells: its state, the signals that feed it, the queries that read it, and
the search attributes and memo that mirror it.

`OrderFulfillmentWorkflow` (the saga's behaviour, in `workflows.order_fulfillment`) extends it; this
half issues no commands but search-attribute and memo upserts and the `trusted-replies` marker, all
exactly as before the split. Signals only record what arrived: an inbound event is applied (kept for
the waiting code) when it answers one of the saga's open asks, of its tenant; anything else goes into
the timeline as ignored.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from schemas.payloads._base import ResourceRef
    from schemas.payloads.order import CompensationStep
    from workflows.asks import OpenAsks
    from workflows.contracts import (
        AskBook,
        CancelRequest,
        CompensationEntry,
        InboundEvent,
        OrderRequest,
        OrderResult,
        OrderSnapshot,
        PaymentConfirmation,
        PaymentFailure,
        TimelineEntry,
    )
    from workflows.states import FINAL_STATUSES, FINAL_STEPS, SagaStatus, SagaStep

__all__ = [
    "PATCH_TRUSTED_REPLIES",
    "SA_CORRELATION_ID",
    "SA_ORDER_STATUS",
    "SA_ORDER_STEP",
    "SA_TENANT_ID",
    "SagaState",
]

# Apply only answers to the saga's own open asks, of its tenant (the release of per-service keys).
PATCH_TRUSTED_REPLIES = "trusted-replies"

SA_CORRELATION_ID = SearchAttributeKey.for_keyword("CorrelationId")
SA_TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
SA_ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_ORDER_STEP = SearchAttributeKey.for_keyword("OrderStep")


class SagaState:
    """The saga's memory and its faces to the outside; `OrderFulfillmentWorkflow` is its behaviour."""

    def __init__(self) -> None:
        self._order: OrderRequest | None = None
        self._status = SagaStatus.PENDING
        self._step = SagaStep.START
        self._timeline: list[TimelineEntry] = []
        self._payment: PaymentConfirmation | None = None
        self._payment_failure: PaymentFailure | None = None
        self._cancel: CancelRequest | None = None
        self._inbound: dict[str, InboundEvent] = {}
        self._seen: dict[str, None] = {}
        self._stack: list[CompensationEntry] = []
        self._completed: list[CompensationStep] = []
        self._resources: list[ResourceRef] = []
        self._failure: str | None = None
        self._memo_stack: list[CompensationStep] | None = None
        self._trusted: bool | None = None  # decided once, on first need: see `_trusting`
        self._asks = OpenAsks()

    # -------------------------------------------------------------- helpers
    def _require_order(self) -> OrderRequest:
        assert self._order is not None, "the saga has not started"
        return self._order

    async def _set(self, status: SagaStatus, step: SagaStep) -> None:
        """Status and step into search attributes; the memo only when the stack changed or at the end.

        Every upsert is a history event and a visibility write, so the saga writes the memo (summary,
        status, compensation stack) only when it says something new to a reader of the Web UI.
        """
        self._status, self._step = status, step
        workflow.upsert_search_attributes([SA_ORDER_STATUS.value_set(status), SA_ORDER_STEP.value_set(step)])
        stack = [entry.step for entry in reversed(self._stack)]
        if stack == self._memo_stack and step not in FINAL_STEPS:
            return
        self._memo_stack = stack
        order = self._require_order()
        workflow.upsert_memo(
            {
                "summary": f"order {order.order_id} ({order.plan_id}, {order.region}) "
                f"for tenant {order.tenant_id}",
                "status": status,
                "step": step,
                "compensationStack": stack,
            }
        )

    def _trusting(self) -> bool:
        """Whether inbound events are checked against the open asks (`trusted-replies`), decided by the
        first code that needs it — `run`, or a `domain_event` delivered before `run` started, which
        must not slip in unchecked."""
        if self._trusted is None:
            self._trusted = workflow.patched(PATCH_TRUSTED_REPLIES)
        return self._trusted

    def _refusal(self, event: InboundEvent) -> str | None:
        """Why `event` is not applied (None: it answers an open ask of this saga's tenant)."""
        order = self._order
        if order is None:
            return "the saga has not started: no ask is open"
        if event.tenant_id is not None and event.tenant_id != order.tenant_id:
            return f"tenant {event.tenant_id} is not the saga's tenant {order.tenant_id}"
        return self._asks.refusal(event)

    def _result(self, last_event_id: str) -> OrderResult:
        order = self._require_order()
        return OrderResult(
            order_id=order.order_id,
            status=self._status,
            events=[e.event_id for e in self._timeline if e.direction == "out"],
            last_event_id=last_event_id,
        )

    # -------------------------------------------------------------- signals
    @workflow.signal
    def confirm_payment(self, payment: PaymentConfirmation) -> None:
        if self._payment is None and self._payment_failure is None:
            self._payment = payment

    @workflow.signal
    def fail_payment(self, failure: PaymentFailure) -> None:
        if self._payment is None and self._payment_failure is None:
            self._payment_failure = failure

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        if self._cancel is None and self._status not in FINAL_STATUSES:
            self._cancel = request

    @workflow.signal
    def domain_event(self, event: InboundEvent) -> None:
        """From the inbound bridge; a redelivered event (same id) is ignored."""
        if event.event_id in self._seen:
            return
        refusal = self._refusal(event) if self._trusting() else None
        if refusal is not None:
            self._timeline.append(
                TimelineEntry(
                    "in",
                    event.event_type,
                    event.event_id,
                    workflow.now().isoformat(),
                    event.causation_id,
                    ignored=refusal,
                )
            )
            workflow.logger.warning("ignored %s %s: %s", event.event_type, event.event_id, refusal)
            return  # not "seen": a genuine event with the same id may still come
        self._seen[event.event_id] = None
        self._timeline.append(
            TimelineEntry(
                "in", event.event_type, event.event_id, workflow.now().isoformat(), event.causation_id
            )
        )
        self._inbound.setdefault(event.event_type, event)

    # -------------------------------------------------------------- queries
    @workflow.query
    def status(self) -> OrderSnapshot:
        order = self._order
        return OrderSnapshot(
            order_id=order.order_id if order else "",
            tenant_id=order.tenant_id if order else "",
            correlation_id=order.correlation_id if order else "",
            status=self._status,
            step=self._step,
            compensation_stack=list(reversed(self._stack)),
            completed_compensations=list(self._completed),
            resources=list(self._resources),
            failure=self._failure,
        )

    @workflow.query
    def compensation_stack(self) -> list[CompensationEntry]:
        """What is still owed, the next undo first."""
        return list(reversed(self._stack))

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        return list(self._timeline)

    @workflow.query
    def asks(self) -> AskBook:
        """Open asks (event id → the event types that may answer it) and closed ones: what the bridge
        checks an inbound event against."""
        return self._asks.book(checking=bool(self._trusted))
