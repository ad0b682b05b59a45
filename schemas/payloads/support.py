"""Payloads of the Support domain: customer tickets. Message bodies stay in Support; events carry a
short preview at most."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.payloads._base import Payload, ShortText

__all__ = [
    "ClosedBy",
    "ReplyAuthor",
    "ResolutionCode",
    "SupportTicketAssignedV1",
    "SupportTicketClosedV1",
    "SupportTicketCreatedV1",
    "SupportTicketEscalatedV1",
    "SupportTicketReopenedV1",
    "SupportTicketRepliedV1",
    "SupportTicketResolvedV1",
    "TicketCategory",
    "TicketPriority",
]

Tier = Annotated[int, Field(ge=1, le=3)]


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketCategory(StrEnum):
    BILLING = "billing"
    TECHNICAL = "technical"
    ACCOUNT = "account"
    PROVISIONING = "provisioning"


class SupportTicketCreatedV1(Payload):
    ticket_id: UUID
    customer_id: UUID
    subject: ShortText
    priority: TicketPriority
    category: TicketCategory
    order_id: UUID | None = None


class SupportTicketAssignedV1(Payload):
    ticket_id: UUID
    assignee_id: UUID
    team: Annotated[str, Field(pattern=r"^[a-z]+(-[a-z]+)*$", max_length=64)]
    tier: Tier


class ReplyAuthor(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


class SupportTicketRepliedV1(Payload):
    ticket_id: UUID
    reply_id: UUID
    customer_id: UUID
    author: ReplyAuthor
    preview: Annotated[str, Field(min_length=1, max_length=280)]


class SupportTicketEscalatedV1(Payload):
    ticket_id: UUID
    from_tier: Tier
    to_tier: Tier
    reason: ShortText


class ResolutionCode(StrEnum):
    FIXED = "fixed"
    ANSWERED = "answered"
    DUPLICATE = "duplicate"
    WONT_FIX = "wont_fix"


class SupportTicketResolvedV1(Payload):
    ticket_id: UUID
    customer_id: UUID
    resolution_code: ResolutionCode
    summary: ShortText


class SupportTicketReopenedV1(Payload):
    ticket_id: UUID
    customer_id: UUID
    reason: ShortText


class ClosedBy(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    AUTO = "auto"


class SupportTicketClosedV1(Payload):
    ticket_id: UUID
    closed_by: ClosedBy
    satisfaction_score: Annotated[int, Field(ge=1, le=5)] | None = None
