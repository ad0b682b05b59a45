"""Where records go: topic names, DLQ names and the record key.

`cloud-factory.{env}.{eventType}.v{major}`. The major is the *topic* generation, not the payload
version: every payload version of a type shares one topic so that per-correlationId ordering survives
schema upgrades. The record key is the correlation id, so a flow's events share a partition.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from schemas._internal.envelope import EVENT_TYPE_PATTERN, Envelope
from schemas._internal.errors import ContractError
from schemas._internal.services import Service
from schemas.definitions import catalog

__all__ = [
    "DLQ_SUFFIX",
    "TOPIC_PREFIX",
    "TopicName",
    "all_topics",
    "dlq_topic_for",
    "dlq_topic_of",
    "dlq_topics_pattern",
    "is_dlq_topic",
    "message_key",
    "parse_topic",
    "subscription_topics",
    "topic_for",
]

TOPIC_PREFIX = "cloud-factory"
DLQ_SUFFIX = ".dlq"
_ENV = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_TOPIC = re.compile(
    rf"^{re.escape(TOPIC_PREFIX)}\.(?P<env>[a-z][a-z0-9-]{{0,30}})\."
    rf"(?P<type>{EVENT_TYPE_PATTERN[1:-1]})\.v(?P<major>[1-9][0-9]*)(?P<dlq>\.dlq)?$"
)


class TopicName(NamedTuple):
    env: str
    event_type: str
    major: int
    dlq: bool


def topic_for(event_type: str, env: str = "dev", major: int = 1) -> str:
    """``topic_for("order.fulfilled") == "cloud-factory.dev.order.fulfilled.v1"``."""
    catalog.require(event_type, field="eventType")
    if not isinstance(env, str) or not _ENV.match(env):
        raise ContractError(f"environment must match {_ENV.pattern}", field="env")
    if isinstance(major, bool) or not isinstance(major, int) or major < 1:
        raise ContractError("major must be a positive integer", field="major")
    return f"{TOPIC_PREFIX}.{env}.{event_type}.v{major}"


def dlq_topic_for(event_type: str, env: str = "dev", major: int = 1) -> str:
    """The dead-letter topic of `topic_for(...)`: same name plus ``.dlq``."""
    return dlq_topic_of(topic_for(event_type, env, major))


def dlq_topic_of(topic: str) -> str:
    """The dead-letter topic of any topic name (a DLQ topic is its own: dead letters do not nest)."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


def is_dlq_topic(topic: str, env: str | None = None) -> bool:
    """Whether `topic` is a dead-letter topic (of environment `env`, when given)."""
    prefix = f"{TOPIC_PREFIX}.{env}." if env is not None else ""
    return topic.endswith(DLQ_SUFFIX) and topic.startswith(prefix)


def dlq_topics_pattern(env: str) -> str:
    """A subscription regex matching every DLQ topic of `env` (`is_dlq_topic(topic, env)`)."""
    return f"^{TOPIC_PREFIX}\\.{re.escape(env)}\\..*{re.escape(DLQ_SUFFIX)}$"


def parse_topic(topic: str) -> TopicName:
    """Inverse of `topic_for`/`dlq_topic_for` (DLQ tooling, metrics labels)."""
    match = _TOPIC.match(topic) if isinstance(topic, str) else None
    if match is None:
        raise ContractError("not a cloud-factory topic name", field="topic")
    return TopicName(match["env"], match["type"], int(match["major"]), bool(match["dlq"]))


def all_topics(env: str = "dev", *, dlq: bool = True, major: int = 1) -> list[str]:
    """Every topic the platform needs in `env` (for creating them), in catalog order."""
    topics: list[str] = []
    for event_type in catalog:
        topics.append(topic_for(event_type, env, major))
        if dlq:
            topics.append(dlq_topic_for(event_type, env, major))
    return topics


def subscription_topics(service: Service | str, env: str = "dev", major: int = 1) -> list[str]:
    """The topics `service`'s consumer group subscribes to."""
    return [topic_for(e.event_type, env, major) for e in catalog.subscriptions(service)]


def message_key(envelope: Envelope) -> bytes:
    """Kafka record key: the correlation id, so one flow's events stay ordered on one partition."""
    return str(envelope.correlation_id).encode()
