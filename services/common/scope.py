"""Tenant scoping: a worker may serve only some tenants (tenant sharding, isolated test runs).

A record outside the scope is acknowledged without side effects, exactly as if another shard had
taken it: the consumer asks `TenantScope.accepts` after verifying and decoding the record (only the
signed value decides, never a header) and before any idempotency key, transaction or handler.
Shards are separate consumer groups, each reading every record. The default scope serves every
tenant and filters nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import schemas

__all__ = ["ALL_TENANTS", "TenantScope"]


@dataclass(frozen=True)
class TenantScope:
    """Serve tenants whose id starts with `prefix` ('' = all tenants)."""

    prefix: str = ""

    def serves(self, tenant_id: str) -> bool:
        return tenant_id.startswith(self.prefix)

    def accepts(self, envelope: schemas.Envelope) -> bool:
        """The consumer's record filter (`EventConsumer(accept=...)`)."""
        return envelope.tenant_id.startswith(self.prefix)

    @property
    def record_filter(self) -> Callable[[schemas.Envelope], bool] | None:
        """`accepts`, or None when every tenant is served (nothing to filter)."""
        return self.accepts if self.prefix else None


ALL_TENANTS = TenantScope()
