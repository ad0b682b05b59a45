"""Support's commands: a ticket's life in Support's tables, each step announced as an event of the
ticket's flow (correlationId from the ticket id, causation = the ticket's previous event)."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection

import schemas
from services.common.commands import EntityCommands
from services.support.tables import replies, tickets

__all__ = ["SupportCommands"]


class SupportCommands(EntityCommands):
    flow_kind = "ticket"

    def _ticket(self, conn: Connection, ticket_id: uuid.UUID, *,
                states: tuple[str, ...] | None = None) -> dict:
        """The ticket, locked for this command; refused unless it is in one of `states`."""
        row = self._row(conn, tickets, ticket_id, missing=f"no ticket {ticket_id}", lock=True)
        if states is not None and row["state"] not in states:
            raise ValueError(f"ticket {ticket_id} is {row['state']}; this needs it {' or '.join(states)}")
        return row

    def _ticket_step(self, conn: Connection, ticket: dict, step: str, event_type: str, data: dict,
                     actor: schemas.Actor) -> None:
        """One step of the ticket's flow, caused by its previous event."""
        self._step(conn, tickets, ticket["ticket_id"], step=step, event_type=event_type,
                   tenant_id=ticket["tenant_id"], actor=actor, previous=ticket["last_event_id"], data=data)

    @staticmethod
    def _customer(customer_id: uuid.UUID) -> schemas.Actor:
        return schemas.Actor(id=str(customer_id), type=schemas.ActorType.USER)

    _agent = schemas.Actor(id="support-desk", type=schemas.ActorType.USER)

    def open(
        self,
        tenant_id: str,
        customer_id: uuid.UUID,
        subject: str,
        *,
        priority: str = "normal",
        category: str = "technical",
        order_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        ticket_id = uuid.uuid4()
        with self._transaction() as conn:
            self._insert(conn, tickets, ticket_id=ticket_id, tenant_id=tenant_id, customer_id=customer_id,
                         subject=subject, priority=priority, category=category, order_id=order_id,
                         state="open")
            ticket = self._ticket(conn, ticket_id)
            self._ticket_step(
                conn,
                ticket,
                "created",
                "support.ticket-created",
                {
                    "ticketId": ticket_id,
                    "customerId": customer_id,
                    "subject": subject,
                    "priority": priority,
                    "category": category,
                    "orderId": order_id,
                },
                self._customer(customer_id),
            )
        return ticket_id

    def assign(self, ticket_id: uuid.UUID, assignee_id: uuid.UUID, team: str = "cloud-ops") -> None:
        with self._transaction() as conn:
            ticket = self._ticket(conn, ticket_id, states=("open", "reopened"))
            self._update(conn, tickets, ticket_id, assignee_id=assignee_id)
            self._ticket_step(
                conn,
                ticket,
                f"assigned/{assignee_id}",
                "support.ticket-assigned",
                {"ticketId": ticket_id, "assigneeId": assignee_id, "team": team, "tier": ticket["tier"]},
                self._agent,
            )

    def reply(self, ticket_id: uuid.UUID, author: str, body: str) -> uuid.UUID:
        reply_id = uuid.uuid4()
        with self._transaction() as conn:
            ticket = self._ticket(conn, ticket_id, states=("open", "reopened"))
            self._insert(conn, replies, reply_id=reply_id, ticket_id=ticket_id, author=author, body=body)
            actor = self._customer(ticket["customer_id"]) if author == "customer" else self._agent
            self._ticket_step(
                conn,
                ticket,
                f"reply/{reply_id}",
                "support.ticket-replied",
                {
                    "ticketId": ticket_id,
                    "replyId": reply_id,
                    "customerId": ticket["customer_id"],
                    "author": author,
                    "preview": body[:280],
                },
                actor,
            )
        return reply_id

    def escalate(self, ticket_id: uuid.UUID, reason: str) -> None:
        with self._transaction() as conn:
            ticket = self._ticket(conn, ticket_id, states=("open", "reopened"))
            if ticket["tier"] >= 3:
                raise ValueError(f"ticket {ticket_id} is already at the top tier")
            self._update(conn, tickets, ticket_id, tier=ticket["tier"] + 1)
            self._ticket_step(
                conn,
                ticket,
                f"escalated/{ticket['tier'] + 1}",
                "support.ticket-escalated",
                {
                    "ticketId": ticket_id,
                    "fromTier": ticket["tier"],
                    "toTier": ticket["tier"] + 1,
                    "reason": reason,
                },
                self._agent,
            )

    def resolve(self, ticket_id: uuid.UUID, code: str, summary: str) -> None:
        with self._transaction() as conn:
            ticket = self._ticket(conn, ticket_id, states=("open", "reopened"))
            self._update(conn, tickets, ticket_id, state="resolved")
            self._ticket_step(
                conn,
                ticket,
                f"resolved/{ticket['reopen_count']}",
                "support.ticket-resolved",
                {
                    "ticketId": ticket_id,
                    "customerId": ticket["customer_id"],
                    "resolutionCode": code,
                    "summary": summary,
                },
                self._agent,
            )

    def reopen(self, ticket_id: uuid.UUID, reason: str) -> None:
        with self._transaction() as conn:
            ticket = self._ticket(conn, ticket_id, states=("resolved",))
            self._update(conn, tickets, ticket_id, state="reopened", reopen_count=ticket["reopen_count"] + 1)
            self._ticket_step(
                conn,
                ticket,
                f"reopened/{ticket['reopen_count'] + 1}",
                "support.ticket-reopened",
                {"ticketId": ticket_id, "customerId": ticket["customer_id"], "reason": reason},
                self._customer(ticket["customer_id"]),
            )

    def close(self, ticket_id: uuid.UUID, closed_by: str = "agent", satisfaction: int | None = None) -> None:
        with self._transaction() as conn:
            ticket = self._ticket(conn, ticket_id, states=("resolved",))
            self._update(conn, tickets, ticket_id, state="closed")
            self._ticket_step(
                conn,
                ticket,
                "closed",
                "support.ticket-closed",
                {"ticketId": ticket_id, "closedBy": closed_by, "satisfactionScore": satisfaction},
                self._agent,
            )
