"""Builds the messaging objects of a process from `Settings`, so every worker wires them alike."""

from __future__ import annotations

import schemas
from cloud_factory.settings import Settings
from messaging.producer import EventProducer
from messaging.topics import ensure_topics

__all__ = ["keyring_from", "producer_from", "signing_mode_from", "ensure_catalog_topics"]


def keyring_from(settings: Settings) -> schemas.Keyring:
    return schemas.Keyring.parse(settings.signing_keys)


def signing_mode_from(settings: Settings) -> schemas.SigningMode:
    return schemas.SigningMode(settings.signing_mode)


def producer_from(settings: Settings) -> EventProducer:
    return EventProducer(settings.bootstrap_servers, keyring_from(settings), env=settings.env)


def ensure_catalog_topics(settings: Settings, event_types: list[str] | None = None) -> list[str]:
    """Create the topic and DLQ topic of each event type (all of the catalog by default)."""
    types = event_types if event_types is not None else list(schemas.catalog)
    topics = []
    for event_type in types:
        topics += [schemas.topic_for(event_type, env=settings.env), schemas.dlq_topic_for(event_type, env=settings.env)]
    return ensure_topics(settings.bootstrap_servers, topics, partitions=settings.kafka_partitions)
