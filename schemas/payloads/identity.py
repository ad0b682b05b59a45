"""Payloads of the Identity domain. Secrets (passwords, reset tokens, API keys) never travel in events:
only their ids and public prefixes do."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, Field

from schemas.payloads._base import EmailAddress, Payload, ShortText

__all__ = [
    "ApiKeyScope",
    "IdentityApiKeyCreatedV1",
    "IdentityApiKeyRevokedV1",
    "IdentityEmailVerifiedV1",
    "IdentityPasswordResetRequestedV1",
    "IdentityUserRegisteredV1",
]

Locale = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]


class IdentityUserRegisteredV1(Payload):
    user_id: UUID
    email: EmailAddress
    display_name: ShortText
    locale: Locale
    marketing_opt_in: bool


class IdentityEmailVerifiedV1(Payload):
    user_id: UUID
    email: EmailAddress


class IdentityPasswordResetRequestedV1(Payload):
    user_id: UUID
    email: EmailAddress
    reset_request_id: UUID
    expires_at: AwareDatetime


class ApiKeyScope(StrEnum):
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    BILLING_READ = "billing:read"
    RESOURCES_READ = "resources:read"
    RESOURCES_WRITE = "resources:write"


class IdentityApiKeyCreatedV1(Payload):
    api_key_id: UUID
    user_id: UUID
    name: ShortText
    prefix: Annotated[str, Field(pattern=r"^cfk_[a-z0-9]{6,8}$")]
    scopes: Annotated[list[ApiKeyScope], Field(min_length=1)]
    expires_on: dt.date | None = None


class IdentityApiKeyRevokedV1(Payload):
    api_key_id: UUID
    user_id: UUID
    revoked_by: UUID
    reason: ShortText
