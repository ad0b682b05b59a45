"""Identity's commands: each writes Identity's own rows and queues the matching event in Identity's
outbox, in one transaction (the outbox relay publishes it). Used by `cloud-factory identity …`."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

import schemas
from services.common.commands import EntityCommands
from services.identity.tables import api_keys, users

__all__ = ["IdentityCommands", "NewApiKey"]


@dataclass(frozen=True)
class NewApiKey:
    api_key_id: uuid.UUID
    secret: str  # shown once, never stored


def _actor(user_id: uuid.UUID) -> schemas.Actor:
    return schemas.Actor(id=str(user_id), type=schemas.ActorType.USER)


class IdentityCommands(EntityCommands):
    flow_kind = "user"  # an API key's events belong to its user's flow

    def _user(self, conn: Connection, user_id: uuid.UUID) -> dict:
        return self._row(conn, users, user_id, missing=f"no user {user_id}")

    def _user_step(self, conn: Connection, user_id: uuid.UUID, *, tenant_id: str, previous: str | None,
                   step: str, event_type: str, data: dict[str, Any]) -> None:
        """One step of a user's own flow, acted by that user."""
        self._step(conn, users, user_id, step=step, event_type=event_type, tenant_id=tenant_id,
                   actor=_actor(user_id), previous=previous, data=data)

    def _key_step(self, conn: Connection, api_key_id: uuid.UUID, *, user_id: uuid.UUID, tenant_id: str,
                  actor: schemas.Actor, previous: str | None, step: str, event_type: str,
                  data: dict[str, Any]) -> None:
        """One step of an API key, recorded on the key's row, in its user's flow."""
        self._step(conn, api_keys, api_key_id, step=step, event_type=event_type, tenant_id=tenant_id,
                   actor=actor, previous=previous, flow_of=user_id, data=data)

    def register(
        self,
        tenant_id: str,
        email: str,
        display_name: str,
        *,
        locale: str = "en",
        marketing_opt_in: bool = False,
    ) -> uuid.UUID:
        user_id = uuid.uuid4()
        duplicate = f"email {email!r} is already registered for tenant {tenant_id!r}"
        with self._transaction(duplicate=duplicate) as conn:
            self._insert(conn, users, user_id=user_id, tenant_id=tenant_id, email=email,
                         display_name=display_name, locale=locale)
            self._user_step(
                conn,
                user_id,
                tenant_id=tenant_id,
                previous=None,
                step="registered",
                event_type="identity.user-registered",
                data={
                    "userId": user_id,
                    "email": email,
                    "displayName": display_name,
                    "locale": locale,
                    "marketingOptIn": marketing_opt_in,
                },
            )
        return user_id

    def verify_email(self, user_id: uuid.UUID) -> None:
        with self._transaction() as conn:
            user = self._user(conn, user_id)
            self._update(conn, users, user_id, email_verified=True)
            self._user_step(
                conn,
                user_id,
                tenant_id=user["tenant_id"],
                previous=user["last_event_id"],
                step="email-verified",
                event_type="identity.email-verified",
                data={"userId": user_id, "email": user["email"]},
            )

    def request_password_reset(self, user_id: uuid.UUID) -> uuid.UUID:
        request_id = uuid.uuid4()
        with self._transaction() as conn:
            user = self._user(conn, user_id)
            self._user_step(
                conn,
                user_id,
                tenant_id=user["tenant_id"],
                previous=user["last_event_id"],
                step=f"reset/{request_id}",
                event_type="identity.password-reset-requested",
                data={
                    "userId": user_id,
                    "email": user["email"],
                    "resetRequestId": request_id,
                    "expiresAt": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
                },
            )
        return request_id

    def create_api_key(self, user_id: uuid.UUID, name: str, scopes: list[str],
                       *, expires_on: dt.date | None = None) -> NewApiKey:
        """A new key; its event carries the secret's SHA-256 (never the secret) so the HTTP edge can
        check it without reading these tables."""
        key_id = uuid.uuid4()
        prefix = "cfk_" + secrets.token_hex(4)
        secret = f"{prefix}_{secrets.token_urlsafe(24)}"
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self._transaction() as conn:
            user = self._user(conn, user_id)
            self._insert(conn, api_keys, api_key_id=key_id, user_id=user_id, name=name, prefix=prefix,
                         secret_sha256=digest, scopes=scopes)
            self._key_step(
                conn,
                key_id,
                user_id=user_id,
                tenant_id=user["tenant_id"],
                actor=_actor(user_id),
                previous=user["last_event_id"],
                step=f"key/{key_id}",
                event_type="identity.api-key-created",
                data={
                    "apiKeyId": key_id,
                    "userId": user_id,
                    "name": name,
                    "prefix": prefix,
                    "scopes": scopes,
                    "expiresOn": expires_on,
                    "secretSha256": digest,
                },
            )
        return NewApiKey(key_id, secret)

    def revoke_api_key(self, api_key_id: uuid.UUID, revoked_by: uuid.UUID, reason: str) -> None:
        with self._transaction() as conn:
            key = self._row(conn, api_keys, api_key_id, missing=f"no API key {api_key_id}")
            if key["revoked_at"] is not None:
                raise ValueError(f"API key {api_key_id} is already revoked")
            user = self._user(conn, key["user_id"])
            self._update(conn, api_keys, api_key_id, revoked_at=dt.datetime.now(dt.UTC))
            self._key_step(
                conn,
                api_key_id,
                user_id=key["user_id"],
                tenant_id=user["tenant_id"],
                actor=_actor(revoked_by),
                previous=key["last_event_id"],
                step=f"key/{api_key_id}/revoked",
                event_type="identity.api-key-revoked",
                data={
                    "apiKeyId": api_key_id,
                    "userId": key["user_id"],
                    "revokedBy": revoked_by,
                    "reason": reason,
                },
            )
