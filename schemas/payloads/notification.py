"""Payloads of the Notification domain: the outcome of telling a customer about something."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.payloads._base import ErrorCode, Payload, ShortText

__all__ = ["NotificationChannel", "NotificationFailedV1", "NotificationSentV1"]

TemplateId = Annotated[str, Field(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*$", max_length=100)]
EventTypeName = Annotated[str, Field(pattern=r"^[a-z]+\.[a-z]+(-[a-z]+)*$", max_length=100)]


class NotificationChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    IN_APP = "in_app"


class NotificationSentV1(Payload):
    notification_id: UUID
    recipient_id: UUID
    channel: NotificationChannel
    template: TemplateId
    trigger_event_id: UUID
    trigger_event_type: EventTypeName


class NotificationFailedV1(Payload):
    notification_id: UUID
    recipient_id: UUID
    channel: NotificationChannel
    template: TemplateId
    trigger_event_id: UUID
    trigger_event_type: EventTypeName
    error_code: ErrorCode
    reason: ShortText
    attempts: Annotated[int, Field(ge=1, le=100)]
