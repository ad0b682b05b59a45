"""Builds the messaging objects of a process from `Settings`, so every worker wires them alike.

This is the composition helper the roots (`workers/`, the CLI, the tests) call; it is the only part
of `messaging` that reads settings — the runtime itself is handed its stores. `consumer_from` is the
one way services build consumers: topics of the handled event types (and their DLQ topics) are
created when missing, the DLQ producer has the file fallback, idempotency keys, the values of DLQ
references and parked records live in the settings' PostgreSQL.

A process's long-running parts share their producers: `shared_producer_from` keeps one per (settings,
signing service, spool or not), so a worker running every kind holds a few producers rather than one
(with its threads and connections) per consumer, replica and relay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import schemas
from core.db import engine_for
from core.settings import Settings
from messaging.consumer import EventConsumer
from messaging.dlq.route import DeadLetterRoute
from messaging.fallback.spool import FallbackSpool
from messaging.handlers import HandlerEntry
from messaging.idempotency import IdempotencyStore
from messaging.producer import EventProducer
from messaging.retry import PolicyLookup, RetryPolicy
from messaging.signing_keys import load_keyring
from messaging.topics import TopicLayout, ensure_topics

__all__ = [
    "consumer_from",
    "ensure_catalog_topics",
    "fallback_dir_from",
    "idempotency_from",
    "keyring_from",
    "producer_from",
    "shared_producer_from",
    "signing_mode_from",
    "spool_from",
    "topic_layout_from",
]


def keyring_from(settings: Settings, service: schemas.Service | str | None = None) -> schemas.Keyring:
    """Every key of the process (they all verify); with `service`, bound to sign as that service."""
    ring = load_keyring(settings)
    return ring.as_signer(service) if service is not None else ring


def topic_layout_from(settings: Settings) -> TopicLayout:
    """Partitions and replicas of the topics this process creates (`CF_KAFKA_*` settings)."""
    return TopicLayout(partitions=settings.kafka_partitions,
                       replication_factor=settings.replication_factor,
                       min_insync_replicas=settings.min_insync_replicas)


def signing_mode_from(settings: Settings) -> schemas.SigningMode:
    return schemas.SigningMode(settings.signing_mode)


def fallback_dir_from(settings: Settings) -> Path:
    """`CF_FALLBACK_DIR`, else `<state dir>/fallback`."""
    return settings.spool_dir


def spool_from(settings: Settings) -> FallbackSpool:
    return FallbackSpool(fallback_dir_from(settings))


def producer_from(settings: Settings, *, service: schemas.Service | str | None = None, fallback: bool = True,
                  delivery_timeout_ms: int = 30_000, extra_config: dict[str, object] | None = None,
                  replay_in_background: bool = True) -> EventProducer:
    """A producer signing as `service` (it may publish only that service's event types); without a
    service it only re-publishes records that are signed already (DLQ, spool replay, outbox relay).
    With `fallback` (default) records survive a Kafka outage in the spool.

    Temporal activities pass `fallback=False` and let Temporal's activity retries cover an outage
    instead (see the README).
    """
    return EventProducer(settings.bootstrap_servers, keyring_from(settings, service), env=settings.env,
                         delivery_timeout_ms=delivery_timeout_ms, extra_config=extra_config,
                         spool=spool_from(settings) if fallback else None,
                         layout=topic_layout_from(settings), replay_in_background=replay_in_background,
                         client_id=f"{service or 'republish'}-producer")


_shared: dict[tuple[str, str | None, bool], EventProducer] = {}
_shared_lock = threading.Lock()


def shared_producer_from(settings: Settings, *, service: schemas.Service | str | None = None,
                         fallback: bool = True) -> EventProducer:
    """`producer_from(settings, service=service, fallback=fallback)`, one per process: the producer is
    thread-safe and signs as its one service, so every part of the process publishing as that service
    (or re-publishing signed records, without one) with the same settings may use the same."""
    key = (settings.model_dump_json(), None if service is None else str(getattr(service, "value", service)),
           fallback)
    with _shared_lock:
        producer = _shared.get(key)
        if producer is None:
            producer = _shared[key] = producer_from(settings, service=service, fallback=fallback)
        return producer


def idempotency_from(settings: Settings, *, lease_s: float | None = None) -> IdempotencyStore:
    """The idempotency keys in the settings' PostgreSQL; `lease_s` (default `DEFAULT_LEASE_S`) is how
    long an in-progress key blocks another consumer after its holder stopped renewing it."""
    if lease_s:
        return IdempotencyStore(engine_for(settings.dsn), lease=lease_s)
    return IdempotencyStore(engine_for(settings.dsn))


def consumer_from(settings: Settings, *, group_id: str, handlers: Mapping[str, HandlerEntry],
                  handler_name: str | None = None, topics: Iterable[str] | None = None,
                  dlq_producer: EventProducer | None = None, idempotency: bool | IdempotencyStore = True,
                  retry_policy: RetryPolicy | PolicyLookup | None = None, batch_size: int = 500,
                  create_topics: bool = True, extra_config: dict[str, object] | None = None,
                  accept: Callable[[schemas.Envelope], bool] | None = None) -> EventConsumer:
    """A consumer in `group_id` for the event types in `handlers` (topics derived from the catalog);
    `accept` filters the records it serves (see `EventConsumer`). `idempotency`: a store to use, True
    for one in the settings' database (`idempotency_from`), False for none."""
    event_types = list(handlers)
    topic_list = (list(topics) if topics is not None
                  else [schemas.topic_for(t, env=settings.env) for t in event_types])
    if create_topics:
        ensure_catalog_topics(settings, event_types)
    store = idempotency if isinstance(idempotency, IdempotencyStore) else (
        idempotency_from(settings) if idempotency else None)
    dlq = dlq_producer or shared_producer_from(settings)
    return EventConsumer(
        settings.bootstrap_servers, group_id=group_id, topics=topic_list, handlers=handlers,
        keyring=keyring_from(settings), signing_mode=signing_mode_from(settings),
        dlq_producer=dlq, extra_config=extra_config,
        handler_name=handler_name, idempotency=store, retry_policy=retry_policy, batch_size=batch_size,
        accept=accept, max_event_age_s=settings.max_event_age_h * 3600,
        dead_letters=DeadLetterRoute(dlq, engine_for(settings.dsn)),
        park_after_s=settings.dlq_park_after_s, stuck_after_s=settings.partition_stuck_after_s,
    )


def ensure_catalog_topics(settings: Settings, event_types: list[str] | None = None) -> list[str]:
    """Create the topic and DLQ topic of each event type (all of the catalog by default)."""
    types = event_types if event_types is not None else list(schemas.catalog)
    topics = []
    for event_type in types:
        topics += [schemas.topic_for(event_type, env=settings.env),
                   schemas.dlq_topic_for(event_type, env=settings.env)]
    return ensure_topics(settings.bootstrap_servers, topics, layout=topic_layout_from(settings))
