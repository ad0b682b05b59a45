"""What every domain service shares: deterministic event ids, an emitter, tenant scoping."""

from services.common.emitter import Emitter, service_event_id
from services.common.scope import ALL_TENANTS, TenantScope

__all__ = ["ALL_TENANTS", "Emitter", "TenantScope", "service_event_id"]
