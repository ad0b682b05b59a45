"""Payloads of the Identity domain. Secrets (passwords, reset tokens, API keys) never travel in events:
only their ids, public prefixes and — for API keys, from `identity.api-key-created` v2 — a SHA-256 of
the secret, so the HTTP edge can check a presented key without asking Identity. An API key's secret
is 192 random bits, so its hash cannot be turned back into the key."""

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
    "IdentityApiKeyCreatedV2",
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


class IdentityApiKeyCreatedV2(Payload):
    """v2 carries the key's secret as a hash (event-carried state for the HTTP edge). `secret_sha256`
    is None only for keys announced by a v1 producer: the edge knows them but cannot check them."""

    api_key_id: UUID
    user_id: UUID
    name: ShortText
    prefix: Annotated[str, Field(pattern=r"^cfk_[a-z0-9]{6,8}$")]
    scopes: Annotated[list[ApiKeyScope], Field(min_length=1)]
    expires_on: dt.date | None = None
    secret_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None


class IdentityApiKeyRevokedV1(Payload):
    api_key_id: UUID
    user_id: UUID
    revoked_by: UUID
    reason: ShortText
