"""The seven domain services and the retry profile names the catalog assigns to event types.

The profiles' numbers (retries, backoff) are runtime behaviour and live in `messaging.retry`.
"""

from __future__ import annotations

from enum import Enum, StrEnum

__all__ = ["RetryProfile", "Service"]


class Service(StrEnum):
    """A domain service; also the namespace (`order.` …) of the event types it owns."""

    ORDER = "order"
    PROVISIONING = "provisioning"
    BILLING = "billing"
    NOTIFICATION = "notification"
    IDENTITY = "identity"
    PRODUCT = "product"
    SUPPORT = "support"


class RetryProfile(Enum):
    """How hard a consumer tries before dead-lettering an event.

    CRITICAL: money and infrastructure (payments, refunds, provisioning) — losing one costs real money.
    DEFAULT: order lifecycle and everything else. NON_CRITICAL: notification outcomes — a late or lost
    one is cheaper than blocking the partition.
    """

    CRITICAL = "critical"
    DEFAULT = "default"
    NON_CRITICAL = "non_critical"
