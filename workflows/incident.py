"""`OrderIncidentWorkflow`: a failed compensation waiting for a person, as a row of its own.

A saga whose undo could not finish starts one as its child (`incident-<saga id>-<attempt>`) and waits
for its result. In the Web UI's default list it is a Running workflow of type `OrderIncident` with
its own summary — visible without any saved view or column set-up — and its page tells the person
what failed and which commands decide it. A person decides with an Update: `retry` (the saga runs the
failed undos again, newest first) or `resolve` with a note (the person fixed it by hand). Validators
refuse a second decision and a resolution without a note before anything is recorded. Nobody
deciding before the deadline ends it `expired`, and the saga ends `compensation_failed` as before.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import IncidentAction, IncidentDecision, IncidentTicket
    from workflows.metadata import INCIDENT_WORKFLOW_TYPE, undo_label, wait_summary

__all__ = ["MAX_NOTE", "OrderIncidentWorkflow"]

#: A resolution's note is read by people and carried in `order.failed`'s reason (at most 200
#: characters, with who decided and why the undo failed): longer would be cut there.
MAX_NOTE = 150


@workflow.defn(name=INCIDENT_WORKFLOW_TYPE)
class OrderIncidentWorkflow:
    """Waits (durably, up to the ticket's deadline) for one decision by a person."""

    @workflow.init
    def __init__(self, ticket: IncidentTicket) -> None:
        # The ticket is known before any Update is validated: a person who decides the moment the
        # saga names its incident is never told "not opened yet".
        self._ticket: IncidentTicket | None = ticket
        self._decision: IncidentDecision | None = None

    @workflow.run
    async def run(self, ticket: IncidentTicket) -> IncidentDecision:
        workflow.set_current_details(self._details())
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=timedelta(seconds=ticket.deadline_s),
                timeout_summary=wait_summary("a person to retry or resolve", ticket.deadline_s),
            )
        except TimeoutError:
            self._decision = IncidentDecision("expired", f"nobody decided within {ticket.deadline_s:g} s")
        assert self._decision is not None
        workflow.set_current_details(self._details())
        return self._decision

    # -------------------------------------------------------------- updates
    @workflow.update
    def retry(self, action: IncidentAction) -> str:
        self._decision = IncidentDecision("retry", action.note, action.by)
        workflow.set_current_details(self._details())
        return "the saga retries the failed undos, newest first"

    @retry.validator
    def _may_retry(self, action: IncidentAction) -> None:
        self._refuse_if_decided()

    @workflow.update
    def resolve(self, action: IncidentAction) -> str:
        self._decision = IncidentDecision("resolve", action.note.strip(), action.by)
        workflow.set_current_details(self._details())
        return "recorded as resolved by hand; the saga ends with order.failed"

    @resolve.validator
    def _may_resolve(self, action: IncidentAction) -> None:
        self._refuse_if_decided()
        if not action.note.strip():
            raise ValueError("resolve needs --note: say what was done by hand")
        if len(action.note) > MAX_NOTE:
            raise ValueError(f"the note has {len(action.note)} characters; at most {MAX_NOTE}")

    def _refuse_if_decided(self) -> None:
        if self._ticket is None:
            raise ValueError("the incident has not opened yet")
        if self._decision is not None:
            raise ValueError(f"the incident was already decided: {self._decision.action}")

    # -------------------------------------------------------------- queries
    @workflow.query
    def ticket(self) -> IncidentTicket | None:
        return self._ticket

    @workflow.query
    def decision(self) -> IncidentDecision | None:
        return self._decision

    def _details(self) -> str:
        """Markdown for the Web UI: what failed, what was undone, and how to decide."""
        ticket = self._ticket
        assert ticket is not None
        lines = [
            f"**Needs a person** — saga `{ticket.saga_workflow_id}`, order `{ticket.order_id}`, "
            f"tenant `{ticket.tenant_id}` (incident {ticket.attempt})",
            "",
            f"**Why:** {ticket.reason}",
            "",
            "| undo | state |",
            "| --- | --- |",
        ]
        lines += [f"| {undo_label(step)} | FAILED |" for step in ticket.failed_steps]
        lines += [f"| {undo_label(step)} | done |" for step in ticket.completed_steps]
        lines.append("")
        if self._decision is None:
            lines += [
                "**Decide:** `cloud-factory incident retry "
                f"{workflow.info().workflow_id}` or `cloud-factory incident resolve "
                f"{workflow.info().workflow_id} --note \"what was done\"`",
            ]
        else:
            decided = self._decision
            by = f" by {decided.by}" if decided.by else ""
            lines.append(f"**Decided:** {decided.action}{by}"
                         + (f" — {decided.note}" if decided.note else ""))
        return "\n".join(lines)
