"""The inbound bridge: the events Order subscribes to become `domain_event` signals of the saga.

The consumer runtime has already verified the signature, checked that the signer is the event type's
publisher, decoded and upcast the event. The bridge finds the workflow from the event (tenant + order
id → workflow id), checks that its correlationId is that flow's and that it answers one of the
saga's open asks (its `causationId` is the id of a request the saga published and still waits on,
and its type answers that request — the `asks` query), then signals it. A late answer to an ask the
saga no longer waits on (a repeated ask answered twice) is signalled too — the saga records it in
its timeline as ignored — and acknowledged quietly when the saga has finished. Anything else is an
`InconsistencyError` naming the mismatch, dead-lettered at once; an event for no workflow at all is a
`NotFoundError`. When the saga cannot answer the query (no saga worker in time, or a saga of an
earlier release), the bridge signals anyway — a signal is durable while a worker is away — and the
workflow applies the same check itself, recording a refused event in its timeline as ignored.
The workflow ignores an event id it has seen, so redelivery is harmless.
"""

from __future__ import annotations

import logging

import schemas
from bridges.signaller import QueryUnavailable, WorkflowNotFound, WorkflowSignaller
from messaging import HandlerContext
from messaging.errors import InconsistencyError, NotFoundError
from workflows.contracts import AskBook, InboundEvent, correlation_id_for, order_workflow_id

__all__ = ["OrderBridge", "inbound_event"]

log = logging.getLogger(__name__)


def inbound_event(envelope: schemas.Envelope) -> InboundEvent:
    """The `domain_event` signal of a verified, upcast envelope: its payload model as it is."""
    return InboundEvent(
        event_id=str(envelope.event_id),
        event_type=envelope.event_type,
        version=envelope.version,
        data=envelope.data,
        causation_id=str(envelope.causation_id) if envelope.causation_id else None,
        occurred_at=envelope.occurred_at.isoformat(),
        tenant_id=envelope.tenant_id,
    )


class OrderBridge:
    """Consumer handler for every event type in `bridges.worker.BRIDGED_EVENT_TYPES`."""

    def __init__(self, signaller: WorkflowSignaller, *, query_timeout: float = 5.0) -> None:
        self.signaller = signaller
        self.query_timeout = query_timeout

    def __call__(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        workflow_id = order_workflow_id(envelope.tenant_id, str(envelope.data.order_id))
        if correlation_id_for(workflow_id) != str(envelope.correlation_id):
            raise InconsistencyError(
                f"correlationId {envelope.correlation_id} is not the flow of {workflow_id} "
                f"(tenant {envelope.tenant_id}, order {envelope.data.order_id})")
        late = False
        try:
            late = self._check_answers_an_ask(workflow_id, envelope)
            self.signaller.signal(workflow_id, "domain_event", inbound_event(envelope))
        except WorkflowNotFound as exc:
            if late:  # the saga finished after its ask was answered once already: a duplicate
                log.info("%s %s answers a closed ask of the finished %s: nothing to do",
                         envelope.event_type, envelope.event_id, workflow_id)
                return
            raise NotFoundError(str(exc)) from exc
        log.info("signalled %s with %s %s", workflow_id, envelope.event_type, envelope.event_id)

    def _check_answers_an_ask(self, workflow_id: str, envelope: schemas.Envelope) -> bool:
        """Raise InconsistencyError unless `envelope` answers one of the saga's asks; True when the ask
        is closed already (a late duplicate answer, which the saga will ignore)."""
        try:
            book: AskBook = self.signaller.query(workflow_id, "asks", timeout=self.query_timeout,
                                                 result_type=AskBook)
        except QueryUnavailable as exc:
            log.warning("cannot ask %s what it waits for (%s); signalling, the saga checks it itself",
                        workflow_id, exc)
            return False
        if not book.checking:
            return False  # a saga of an earlier release: it applies what it gets, as it always did
        causation = str(envelope.causation_id) if envelope.causation_id else None
        if causation is not None and envelope.event_type in book.closed.get(causation, ()):
            log.info("%s %s answers closed ask %s of %s: the saga records it as ignored",
                     envelope.event_type, envelope.event_id, causation, workflow_id)
            return True
        answers = book.open.get(causation or "")
        if answers is None:
            waiting = ", ".join(sorted(book.open)) or "nothing"
            raise InconsistencyError(
                f"{envelope.event_type} {envelope.event_id} answers {causation}, which is not a request "
                f"{workflow_id} waits on (it waits on: {waiting})")
        if envelope.event_type not in answers:
            raise InconsistencyError(
                f"{envelope.event_type} {envelope.event_id} cannot answer request {causation} of "
                f"{workflow_id} (expected {' or '.join(answers)})")
        return False
