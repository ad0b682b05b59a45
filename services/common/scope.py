"""Tenant scoping: a worker may serve only some tenants (tenant sharding, isolated test runs).

An event outside the scope is acknowledged without side effects, exactly as if another shard had
taken it; the default scope serves every tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import schemas
from messaging.consumer import HandlerContext
from messaging.handlers import HandlerSpec

__all__ = ["ALL_TENANTS", "TenantScope", "scoped"]

Handler = Callable[[schemas.Envelope, HandlerContext], None]


@dataclass(frozen=True)
class TenantScope:
    """Serve tenants whose id starts with `prefix` ('' = all tenants)."""

    prefix: str = ""

    def serves(self, tenant_id: str) -> bool:
        return tenant_id.startswith(self.prefix)


ALL_TENANTS = TenantScope()


def scoped(handler: Handler | HandlerSpec, scope: TenantScope) -> Handler | HandlerSpec:
    """`handler`, skipping events of tenants outside `scope` (a spec keeps its name and mode)."""
    if not scope.prefix:
        return handler
    if isinstance(handler, HandlerSpec):
        return HandlerSpec(_only_in(handler.handler, scope), handler.name, handler.transactional)
    return _only_in(handler, scope)


def _only_in(handler: Handler, scope: TenantScope) -> Handler:
    def run(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if scope.serves(envelope.tenant_id):
            handler(envelope, context)

    return run
