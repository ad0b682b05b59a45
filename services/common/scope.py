"""Tenant scoping: a worker may serve only some tenants (tenant sharding, isolated test runs).

An event outside the scope is acknowledged without side effects, exactly as if another shard had
taken it; the default scope serves every tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import schemas
from messaging.consumer import HandlerContext

__all__ = ["ALL_TENANTS", "TenantScope", "scoped"]

Handler = Callable[[schemas.Envelope, HandlerContext], None]


@dataclass(frozen=True)
class TenantScope:
    """Serve tenants whose id starts with `prefix` ('' = all tenants)."""

    prefix: str = ""

    def serves(self, tenant_id: str) -> bool:
        return tenant_id.startswith(self.prefix)


ALL_TENANTS = TenantScope()


def scoped(handler: Handler, scope: TenantScope) -> Handler:
    """`handler`, skipping events of tenants outside `scope`."""
    if not scope.prefix:
        return handler

    def run(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if scope.serves(envelope.tenant_id):
            handler(envelope, context)

    return run
