"""What one saga knows and tells: its state, the signals that feed it, the queries that read it, and
the search attributes and memo that mirror it.

`OrderFulfillmentWorkflow` (the saga's behaviour, in `workflows.order_fulfillment`) extends it; this
half issues no commands but search-attribute and memo upserts and the `trusted-replies` marker, all
exactly as before the split. Signals only record what arrived: an inbound event is applied (kept for
the waiting code) when it answers one of the saga's open asks, of its tenant; anything else goes into
the timeline as ignored.

A person's commands are Updates (`pay`, `decline_payment`, `request_cancel`): their validators refuse
what the saga can no longer do (pay twice, pay a cancelled order, cancel a delivered one) before
anything is recorded, so the caller hears the reason. The signals they replace stay for the clients
and histories of earlier releases; the bridge keeps `domain_event` (events are fire-and-forget).
The current details (Markdown in the Web UI) are rewritten on every change of status or undo.
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
        CompensationView,
        InboundEvent,
        OrderRequest,
        OrderResult,
        OrderSnapshot,
        PaymentConfirmation,
        PaymentFailure,
        TimelineEntry,
    )
    from workflows.metadata import outcome_line, undo_label
    from workflows.states import ENDED_STATUSES, FINAL_STATUSES, FINAL_STEPS, SagaStatus, SagaStep

__all__ = [
    "PATCH_LOCAL_STEPS",
    "PATCH_OPERATOR_VIEW",
    "PATCH_TRUSTED_REPLIES",
    "SA_CORRELATION_ID",
    "SA_ORDER_STATUS",
    "SA_ORDER_STEP",
    "SA_TENANT_ID",
    "SagaState",
]

# Apply only answers to the saga's own open asks, of its tenant (the release of per-service keys).
PATCH_TRUSTED_REPLIES = "trusted-replies"
# The operator's release: a failed compensation opens an `OrderIncident` child and waits for a person;
# the memo always carries the compensation (also when nothing is owed) and states the outcome.
PATCH_OPERATOR_VIEW = "operator-view"
# The speed release: each step's event goes out by a local activity inside the saga's own workflow
# task (no activity task through the server and back), and the search attributes and memo are
# written where the saga waits or ends — the only states a reader of the Web UI can ever see.
PATCH_LOCAL_STEPS = "local-steps"
_TAKES_PAYMENT = frozenset({SagaStatus.PENDING, SagaStatus.CREATED, SagaStatus.AWAITING_PAYMENT})

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
        self._operator = False  # `operator-view`, decided at the start of `run`
        self._undo_states: dict[CompensationStep, str] = {}  # for the current details
        self._incident_id: str | None = None
        self._incident_started = False
        self._refund_round = 0  # refunds Billing declined: a person's retry asks under a new key
        self._memo_said: tuple[object, ...] | None = None
        self._local = False  # `local-steps`, decided at the start of `run`
        self._indexed: tuple[SagaStatus, SagaStep] | None = None  # the status and step last upserted

    # -------------------------------------------------------------- helpers
    def _require_order(self) -> OrderRequest:
        assert self._order is not None, "the saga has not started"
        return self._order

    async def _set(self, status: SagaStatus, step: SagaStep) -> None:
        """Status and step into search attributes; the memo only when it says something new.

        Every upsert is a history event and a visibility write, so the saga writes the memo (summary,
        status, compensation) only when it says something new to a reader of the Web UI. Before
        `operator-view` that was a change of the stack or the end; since, also a change of status or
        incident, and the compensation is a mapping (Temporal drops a memo key whose value is `[]`).
        Since `local-steps` both wait for `_mirror`, where the saga next waits or ends.
        """
        self._status, self._step = status, step
        if self._local:
            self._show()  # the current details are no command: always up to date
            return
        workflow.upsert_search_attributes([SA_ORDER_STATUS.value_set(status), SA_ORDER_STEP.value_set(step)])
        self._show()
        self._write_memo(status, step)

    def _mirror(self) -> None:
        """`local-steps`: write what changed into the search attributes and memo, once, where the saga
        waits or ends. A workflow task's upserts become visible together when it completes, so the
        states the saga passes through within one task were never seen by anyone; the first mirror
        also indexes the saga by correlation id and tenant."""
        if not self._local:
            return
        order = self._require_order()
        attributes = []
        if self._indexed is None:
            attributes += [
                SA_CORRELATION_ID.value_set(order.correlation_id),
                SA_TENANT_ID.value_set(order.tenant_id),
            ]
        if self._indexed != (self._status, self._step):
            attributes += [SA_ORDER_STATUS.value_set(self._status), SA_ORDER_STEP.value_set(self._step)]
            self._indexed = (self._status, self._step)
        if attributes:
            workflow.upsert_search_attributes(attributes)
        self._write_memo(self._status, self._step)

    def _write_memo(self, status: SagaStatus, step: SagaStep) -> None:
        stack = [entry.step for entry in reversed(self._stack)]
        order = self._require_order()
        if not self._operator:
            if stack == self._memo_stack and step not in FINAL_STEPS:
                return
            self._memo_stack = stack
            workflow.upsert_memo(
                {
                    "summary": f"order {order.order_id} ({order.plan_id}, {order.region}) "
                    f"for tenant {order.tenant_id}",
                    "status": status,
                    "step": step,
                    "compensationStack": stack,
                }
            )
            return
        said = (tuple(stack), tuple(self._completed), status, self._incident_id)
        if said == self._memo_said and step not in FINAL_STEPS:
            return
        self._memo_said = said
        workflow.upsert_memo(
            {
                "summary": outcome_line(order, status),
                "status": status,
                "step": step,
                "compensation": {"owed": [str(s) for s in stack], "done": [str(s) for s in self._completed]},
                "incident": self._incident_id,  # None removes the key once the incident closed
            }
        )

    def _show(self) -> None:
        """Rewrite the current details (Markdown): status, step, each undo's state, outcome, incident."""
        order = self._order
        if order is None:
            return
        lines = [f"**{outcome_line(order, self._status)}**", "",
                 f"status `{self._status}` · step `{self._step}`"]
        undos = {entry.step: "owed" for entry in reversed(self._stack)}
        undos.update({step: "done" for step in self._completed})
        undos.update(self._undo_states)
        if undos:
            lines += ["", "| compensation (next undo first) | state |", "| --- | --- |"]
            lines += [f"| {undo_label(step)} | {state} |" for step, state in undos.items()]
        if self._failure and self._status not in (SagaStatus.DELIVERED, SagaStatus.CANCELLED):
            lines += ["", f"**Failure:** {self._failure}"]
        if self._incident_id is not None:
            lines += [
                "",
                f"**Waiting for a person:** incident `{self._incident_id}` — "
                f"`cloud-factory incident retry {self._incident_id}` or "
                f"`cloud-factory incident resolve {self._incident_id} --note \"…\"`",
            ]
        workflow.set_current_details("\n".join(lines))

    def _undo_state(self, step: CompensationStep, state: str) -> None:
        self._undo_states[step] = state
        self._show()

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
        self._mirror()  # the end: what the saga ended as
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

    # -------------------------------------------------------------- updates
    @workflow.update
    def pay(self, payment: PaymentConfirmation) -> str:
        """A person (or the checkout) reports the payment; refused once it cannot be taken."""
        self._payment = payment
        return "payment recorded"

    @pay.validator
    def _may_pay(self, payment: PaymentConfirmation) -> None:
        self._refuse_payment()

    @workflow.update
    def decline_payment(self, failure: PaymentFailure) -> str:
        """The payment was declined; the order ends without provisioning."""
        self._payment_failure = failure
        return "payment failure recorded"

    @decline_payment.validator
    def _may_decline(self, failure: PaymentFailure) -> None:
        self._refuse_payment()

    @workflow.update
    def request_cancel(self, request: CancelRequest) -> str:
        """The customer cancels; the saga undoes what was done (a provisioning in flight settles first)."""
        self._cancel = request
        return f"cancel recorded at {self._status}; the saga undoes what was done"

    @request_cancel.validator
    def _may_cancel(self, request: CancelRequest) -> None:
        if self._cancel is not None:
            raise ValueError("the order is already being cancelled")
        if self._status == SagaStatus.DELIVERED:
            raise ValueError("the order was delivered: it can no longer be cancelled")
        if self._status == SagaStatus.COMPENSATION_FAILED and self._incident_id is not None:
            raise ValueError(
                f"the order waits for a person (an undo failed): decide incident {self._incident_id} instead"
            )
        if self._status in ENDED_STATUSES:
            raise ValueError(f"the order has ended ({self._status}): nothing to cancel")
        if self._status == SagaStatus.COMPENSATING:
            raise ValueError("the order is already being compensated")

    def _refuse_payment(self) -> None:
        if self._payment is not None:
            raise ValueError("the order is already paid")
        if self._payment_failure is not None:
            raise ValueError("the order's payment already failed")
        if self._cancel is not None:
            raise ValueError("the order was cancelled: it takes no payment")
        if self._status not in _TAKES_PAYMENT:
            raise ValueError(f"the order is {self._status}: it takes no payment")

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
            incident_id=self._incident_id if self._incident_started else None,
        )

    @workflow.query
    def compensation_stack(self) -> list[CompensationEntry]:
        """What is still owed, the next undo first."""
        return list(reversed(self._stack))

    @workflow.query
    def compensation(self) -> CompensationView:
        """The compensation as an object (owed, done, each undo's state), also when nothing is owed."""
        owed = list(reversed(self._stack))
        summary = (("owed, next first: " + ", ".join(entry.step for entry in owed)) if owed
                   else "nothing is owed")
        if self._completed:
            summary += "; done: " + ", ".join(self._completed)
        return CompensationView(
            owed=owed,
            done=list(self._completed),
            states={str(step): state for step, state in self._undo_states.items()},
            owed_count=len(owed),
            summary=summary,
        )

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        return list(self._timeline)

    @workflow.query
    def asks(self) -> AskBook:
        """Open asks (event id → the event types that may answer it) and closed ones: what the bridge
        checks an inbound event against."""
        return self._asks.book(checking=bool(self._trusted))
