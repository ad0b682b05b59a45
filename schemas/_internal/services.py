"""The seven domain services, the edge processes beside them, and the retry profile names the catalog
assigns to event types.

The profiles' numbers (retries, backoff) are runtime behaviour and live in `messaging.retry`.
"""

from __future__ import annotations

from enum import Enum, StrEnum

__all__ = ["EdgeProcess", "RetryProfile", "Service"]


class Service(StrEnum):
    """A domain service; also the namespace (`order.` …) of the event types it owns."""

    ORDER = "order"
    PROVISIONING = "provisioning"
    BILLING = "billing"
    NOTIFICATION = "notification"
    IDENTITY = "identity"
    PRODUCT = "product"
    SUPPORT = "support"


class EdgeProcess(StrEnum):
    """A process at the platform's edge, serving outsiders: it reads domain events (a projection of its
    own), publishes none and owns no event type. It is no eighth domain service: the pub/sub matrix of
    the seven leaves it out, and the catalog lists it apart (`CatalogEntry.edge_consumers`)."""

    API = "api"
    """The HTTP order API (`cloud-factory worker api`): its API keys are a projection of Identity's
    key events; it starts sagas through Temporal, never by publishing."""


class RetryProfile(Enum):
    """How hard a consumer tries before dead-lettering an event.

    CRITICAL: money and infrastructure (payments, refunds, provisioning) — losing one costs real money.
    DEFAULT: order lifecycle and everything else. NON_CRITICAL: notification outcomes — a late or lost
    one is cheaper than blocking the partition.
    """

    CRITICAL = "critical"
    DEFAULT = "default"
    NON_CRITICAL = "non_critical"
