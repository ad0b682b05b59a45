"""The outbound bridge: one workflow step becomes one signed, enveloped domain event on Kafka.

The event id is derived from (workflow id, step), so Temporal's activity retries re-send the same
event instead of minting a second one; consumers deduplicate on it.

The saga hands over the payload model of the type's latest version and the event is encoded as that
version. A retry runs with the input recorded when the activity was scheduled, so after a deploy
that adds a version an activity scheduled by the previous build still carries the older shape (as
plain wire data, see `PublishRequest`): such data is validated as the newest older version it fits
and upcast, as the DLQ redrive does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import pydantic_core
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

import schemas
from messaging.producer import EventProducer
from workflows.contracts import PublishedEvent, PublishRequest
from workflows.contracts import step_event_id as workflow_step_event_id

__all__ = ["PRODUCER_NAME", "OutboundBridge", "envelope_for", "step_event_id"]

PRODUCER_NAME = schemas.producer_name(schemas.Service.ORDER)  # the saga publishes as Order


def step_event_id(workflow_id: str, step: str) -> uuid.UUID:
    """The event id of one workflow step: a retried activity re-sends the same event."""
    return uuid.UUID(workflow_step_event_id(workflow_id, step))


def envelope_for(request: PublishRequest) -> schemas.Envelope:
    """The envelope of `request`'s step, as the latest version of its type; `ContractError` when
    the data fits no version (the latest version's error: that is the shape the saga means)."""
    try:
        return _build(request, request.data)
    except schemas.ContractError:
        older = _as_older_version(request.event_type, request.data)
        if older is None:
            raise
    return schemas.upcast(_build(request, older))


class OutboundBridge:
    """Publishes saga steps through the process's producer; the publish activity's whole body."""

    def __init__(self, producer: EventProducer) -> None:
        self.producer = producer

    def publish(self, request: PublishRequest) -> PublishedEvent:
        """Publish `request`'s event; a contract or signing failure is non-retryable (no retry fixes it)."""
        try:
            envelope = envelope_for(request)
        except schemas.ContractError as exc:
            raise ApplicationError(
                f"{request.event_type} for step {request.step!r} breaks the contract: {exc}",
                type="ContractError",
                non_retryable=True,
            ) from exc
        try:
            delivery = self.producer.publish(envelope)
        except schemas.SignatureError as exc:
            # This worker may not sign that type (or has no Order key).
            raise ApplicationError(f"cannot sign {request.event_type}: {exc}", type="SignatureError",
                                   non_retryable=True) from exc
        activity.logger.info(
            "published %s %s to %s[%d]@%d",
            envelope.event_type,
            envelope.event_id,
            delivery.topic,
            delivery.partition,
            delivery.offset,
        )
        return PublishedEvent(
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
        )


def _build(request: PublishRequest, data: schemas.Payload | Mapping[str, Any]) -> schemas.Envelope:
    return schemas.new_event(
        request.event_type,
        data,
        tenant_id=request.tenant_id,
        correlation_id=uuid.UUID(request.correlation_id),
        causation_id=uuid.UUID(request.causation_id) if request.causation_id else None,
        actor=schemas.Actor(id=request.actor_id, type=schemas.ActorType(request.actor_type)),
        producer=PRODUCER_NAME,
        event_id=step_event_id(request.workflow_id, request.step),
        occurred_at=dt.datetime.fromisoformat(request.occurred_at),
    )


def _as_older_version(event_type: str, data: schemas.Payload | Mapping[str, Any]) -> schemas.Payload | None:
    """`data` as the newest older payload version it validates against (payloads are closed, so only
    data of that exact shape fits), or None: then the latest version's error stands."""
    entry = schemas.catalog.get(event_type)
    if entry is None or not isinstance(data, Mapping):
        return None
    try:
        raw = pydantic_core.to_json(dict(data))
    except pydantic_core.PydanticSerializationError:
        return None
    for version in reversed(entry.versions[:-1]):
        try:
            return entry.payloads[version].model_validate_json(raw)
        except ValidationError:
            continue
    return None
