"""The envelope: the metadata every domain event carries around its typed payload.

`Envelope` is the public type. The codec decodes into per-(type, version) subclasses whose
`eventType`/`version` are literals and whose `data` is the exact payload class, so a single JSON parse
validates everything; those subclasses are still `Envelope`s.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import (
    UUID4,
    AwareDatetime,
    Field,
    SerializeAsAny,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from schemas.payloads._base import Payload, WireModel

__all__ = ["Actor", "ActorType", "Envelope", "EVENT_TYPE_PATTERN", "UUID4_PATTERN", "VERSION_PATTERN"]

EVENT_TYPE_PATTERN = r"^[a-z]+\.[a-z]+(-[a-z]+)*$"
VERSION_PATTERN = r"^v[1-9][0-9]{0,3}$"
#: The hyphenated UUID the producers write, as `UUID4` decodes it: version 4, RFC 9562 variant (8, 9, a, b).
UUID4_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"

# pydantic names this `"format": "uuid4"`, which no JSON Schema validator knows (so it checks nothing):
# declare the standard `uuid` format plus the version-4 pattern instead.
EventId = Annotated[UUID4, WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID4_PATTERN})]

ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=64)]
TenantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class ActorType(StrEnum):
    """Who caused an event: a person, a service acting on its own, the platform, or an API key."""

    USER = "user"
    SERVICE = "service"
    SYSTEM = "system"
    API_KEY = "api_key"


class Actor(WireModel):
    """The principal on whose behalf an event was published (audit trail, notification targeting)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S(.*\S)?$")]
    type: ActorType


class Envelope(WireModel):
    """One domain event: routing and tracing metadata plus `data`, the typed payload.

    `version` is the payload schema version (``v3``), not the topic's major version. `causation_id` is
    the `event_id` of the event that caused this one and is None only for the first event of a flow;
    `correlation_id` is shared by every event of a flow and is the Kafka record key.
    """

    event_id: Annotated[EventId, Field(description="UUIDv4, unique per event; consumers deduplicate on it.")]
    event_type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
    tenant_id: TenantId
    correlation_id: UUID
    causation_id: UUID | None
    actor: Actor
    occurred_at: Annotated[AwareDatetime, Field(description="RFC 3339, UTC.")]
    producer: ServiceName
    data: SerializeAsAny[Payload]

    @model_validator(mode="after")
    def _normalise_and_check(self) -> Envelope:
        # One Python hook per decode (this runs on every consumed record): UTC normalisation, and for a
        # bare `Envelope(...)` the catalog check that typed subclasses already guarantee structurally.
        if self.occurred_at.utcoffset():
            self.__dict__["occurred_at"] = self.occurred_at.astimezone(dt.UTC)
        if type(self) is not Envelope:
            return self
        from schemas.definitions import catalog

        entry = catalog.require(self.event_type, field="eventType")
        expected = entry.payload_model(self.version, field="version")
        if type(self.data) is not expected:
            got = type(self.data).__name__
            raise ValueError(f"data is a {got}, {self.event_type} {self.version} needs {expected.__name__}")
        return self
