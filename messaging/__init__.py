"""The Kafka runtime under every service: signed ordered producer, at-least-once consumer, retry
profiles and error classes, dead-letter queue, file fallback, transactional outbox, PostgreSQL
idempotency keys.

The public API is what `__all__` lists, importable from `messaging` itself:

- `EventProducer` (and its `Delivery`), `EventConsumer` (`run_until_signalled`);
- what handlers see: `Handler`, `HandlerContext`, `HandlerSpec`;
- the error tree of `messaging.errors` (`MessagingError` and below) and `classify`, `ErrorClass`;
- `RetryPolicy`; `IdempotencyStore`;
- the wiring from `Settings` (for composition roots such as `workers/`): `producer_from`,
  `consumer_from`, `idempotency_from`, `ensure_catalog_topics`;
- `TopicReader`, the one reader of a topic range to its end (`PartitionRange`, `ReadTimeout`);
- `InMemoryTransport` (`messaging.testing`): handlers unit-tested without Kafka or PostgreSQL, through
  the consumer's own checks.

The names resolve on first use, so `import messaging` stays cheap (no Kafka client, no database
driver until something asks). The subpackages — `consumer/` (the consumer split by job), `dlq/`,
`fallback/`, `outbox/` — and the modules `idempotency`, `tables`, `topics`, `metrics`,
`signing_keys` are the runtime's inside, for the tools and tests that need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from messaging.consumer import EventConsumer, run_until_signalled
    from messaging.errors import (
        BrokerUnavailableError,
        ErrorClass,
        InconsistencyError,
        LeaseHeldError,
        MessagingError,
        NotFoundError,
        PermanentError,
        PermissionDeniedError,
        ProcessingError,
        PublishError,
        ResourceBusyError,
        RetryableError,
        TransientError,
        ValidationError,
        classify,
    )
    from messaging.handlers import Handler, HandlerContext, HandlerSpec
    from messaging.idempotency import IdempotencyStore
    from messaging.producer import Delivery, EventProducer
    from messaging.reader import PartitionRange, ReadTimeout, TopicReader
    from messaging.retry import RetryPolicy
    from messaging.testing import InMemoryTransport
    from messaging.wiring import consumer_from, ensure_catalog_topics, idempotency_from, producer_from

_EXPORTS = {
    "messaging.consumer": ("EventConsumer", "run_until_signalled"),
    "messaging.errors": (
        "BrokerUnavailableError", "ErrorClass", "InconsistencyError", "LeaseHeldError", "MessagingError",
        "NotFoundError", "PermanentError", "PermissionDeniedError", "ProcessingError", "PublishError",
        "ResourceBusyError", "RetryableError", "TransientError", "ValidationError", "classify",
    ),
    "messaging.handlers": ("Handler", "HandlerContext", "HandlerSpec"),
    "messaging.idempotency": ("IdempotencyStore",),
    "messaging.producer": ("Delivery", "EventProducer"),
    "messaging.reader": ("PartitionRange", "ReadTimeout", "TopicReader"),
    "messaging.retry": ("RetryPolicy",),
    "messaging.testing": ("InMemoryTransport",),
    "messaging.wiring": ("consumer_from", "ensure_catalog_topics", "idempotency_from", "producer_from"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "BrokerUnavailableError",
    "Delivery",
    "ErrorClass",
    "EventConsumer",
    "EventProducer",
    "Handler",
    "HandlerContext",
    "HandlerSpec",
    "IdempotencyStore",
    "InMemoryTransport",
    "InconsistencyError",
    "LeaseHeldError",
    "MessagingError",
    "NotFoundError",
    "PartitionRange",
    "PermanentError",
    "PermissionDeniedError",
    "ProcessingError",
    "PublishError",
    "ReadTimeout",
    "ResourceBusyError",
    "RetryPolicy",
    "RetryableError",
    "TopicReader",
    "TransientError",
    "ValidationError",
    "classify",
    "consumer_from",
    "ensure_catalog_topics",
    "idempotency_from",
    "producer_from",
    "run_until_signalled",
]


def __getattr__(name: str) -> Any:
    """Resolve a public name from its module on first use (then it is a plain module attribute)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'messaging' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
