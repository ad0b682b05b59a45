"""The tenant check at every service's door: an event acts only on rows of its own tenant.

A flow's rows (an order's resources, a payment, the messages of a flow) belong to the tenant of the
event that created them. A validly signed event of another tenant naming such a flow — by order,
payment, refund key or correlationId — is refused as a `PermissionDeniedError` (the consumer
dead-letters it at once) before anything is written, sent or emitted. The tenant compared is the
one in the signed envelope, never a header.
"""

from __future__ import annotations

from messaging.errors import PermissionDeniedError

__all__ = ["require_tenant"]


def require_tenant(event_tenant: str, owner_tenant: str | None, what: str) -> None:
    """Raise unless `owner_tenant` (the tenant of the existing rows of `what`; None when there are
    none yet) is `event_tenant`."""
    if owner_tenant is not None and owner_tenant != event_tenant:
        raise PermissionDeniedError(
            f"an event of tenant {event_tenant!r} names {what}, which belongs to tenant {owner_tenant!r}; "
            "nothing was done"
        )
