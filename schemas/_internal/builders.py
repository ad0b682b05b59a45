"""Builders for new events, so producers never hand-assemble envelopes.

`derive_event` copies tenant and correlation from the event being handled and sets causation to its id:
a handler cannot forget them. `data` may be a payload instance (its class decides the version) or a
mapping validated against the latest version.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from schemas._internal.catalog import Catalog, CatalogEntry
from schemas._internal.envelope import Actor, Envelope
from schemas._internal.errors import ContractError
from schemas._internal.problems import contract_error_from
from schemas.payloads._base import Payload

__all__ = ["EventFactory"]

M = TypeVar("M", bound=BaseModel)


class EventFactory:
    """`new_event` / `derive_event` bound to one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def new_event(
        self,
        event_type: str,
        data: Payload | Mapping[str, Any],
        *,
        tenant_id: str,
        correlation_id: uuid.UUID | str,
        actor: Actor | Mapping[str, Any],
        producer: str,
        causation_id: uuid.UUID | str | None = None,
        event_id: uuid.UUID | str | None = None,
        occurred_at: dt.datetime | None = None,
    ) -> Envelope:
        """A validated envelope for `event_type`; raises `ContractError` naming the bad field.

        Pass `event_id`/`occurred_at` explicitly where randomness and clocks are off limits (Temporal
        workflow code); otherwise a fresh UUIDv4 and the current UTC time are used.
        """
        entry = self._catalog.require(event_type, field="eventType")
        version, payload = self._payload(entry, data)
        try:
            return entry.envelopes[version](
                event_id=_uuid(event_id, "eventId") if event_id is not None else uuid.uuid4(),
                event_type=event_type,
                version=version,
                tenant_id=tenant_id,
                correlation_id=_uuid(correlation_id, "correlationId"),
                causation_id=_uuid(causation_id, "causationId") if causation_id is not None else None,
                actor=actor if isinstance(actor, Actor) else _from_mapping(Actor, actor, "actor"),
                occurred_at=occurred_at if occurred_at is not None else dt.datetime.now(dt.UTC),
                producer=producer,
                data=payload,
            )
        except ValidationError as exc:
            raise contract_error_from(exc, python_names=True) from None

    def derive_event(
        self,
        parent: Envelope,
        event_type: str,
        data: Payload | Mapping[str, Any],
        *,
        actor: Actor | Mapping[str, Any],
        producer: str,
        event_id: uuid.UUID | str | None = None,
        occurred_at: dt.datetime | None = None,
    ) -> Envelope:
        """An event caused by `parent`: same tenant and correlation, causation = `parent.event_id`."""
        if not isinstance(parent, Envelope):
            raise ContractError(f"parent must be an Envelope, got {type(parent).__name__}")
        return self.new_event(
            event_type,
            data,
            tenant_id=parent.tenant_id,
            correlation_id=parent.correlation_id,
            causation_id=parent.event_id,
            actor=actor,
            producer=producer,
            event_id=event_id,
            occurred_at=occurred_at,
        )

    def _payload(self, entry: CatalogEntry, data: Payload | Mapping[str, Any]) -> tuple[str, Payload]:
        if isinstance(data, Payload):
            try:
                owner, version = self._catalog.owner_of(type(data))
            except KeyError:
                raise ContractError(f"{type(data).__name__} is not a catalog payload", field="data") from None
            if owner is not entry:
                raise ContractError(
                    f"{type(data).__name__} belongs to {owner.event_type}, not {entry.event_type}",
                    field="data",
                )
            return version, data
        if isinstance(data, Mapping):
            return entry.latest_version, _from_mapping(entry.latest_payload, data, "data")
        raise ContractError(
            f"data must be a payload model or a mapping, got {type(data).__name__}", field="data"
        )


def _from_mapping(model: type[M], value: Mapping[str, Any], field: str) -> M:
    """Validate a Python mapping as if it had arrived as JSON (UUIDs/dates may be objects or strings)."""
    try:
        raw = pydantic_core.to_json(dict(value))
        return model.model_validate_json(raw)
    except ValidationError as exc:
        inner = contract_error_from(exc)
        raise ContractError(inner.reason, field=f"{field}.{inner.field}" if inner.field else field) from None
    except pydantic_core.PydanticSerializationError as exc:
        raise ContractError(f"not JSON-serialisable: {exc}", field=field) from None


def _uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ContractError("not a valid UUID", field=field) from None
