"""Per-process worker options read from the environment (beyond the shared `Settings`).

`CF_ORDER_TASK_QUEUE` moves the saga to another Temporal task queue, `CF_WORKER_GROUP_SUFFIX`
appends to every consumer group id and `CF_WORKER_TENANT_PREFIX` restricts consumers to tenants
with that prefix — together they let a fleet (or a test) run isolated from the default one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.common import TenantScope

__all__ = ["WorkerOptions"]


@dataclass(frozen=True)
class WorkerOptions:
    task_queue: str = "cloud-factory-orders"
    group_suffix: str = ""
    tenant_prefix: str = ""

    @classmethod
    def from_env(cls) -> WorkerOptions:
        return cls(task_queue=os.environ.get("CF_ORDER_TASK_QUEUE") or "cloud-factory-orders",
                   group_suffix=os.environ.get("CF_WORKER_GROUP_SUFFIX", ""),
                   tenant_prefix=os.environ.get("CF_WORKER_TENANT_PREFIX", ""))

    def group(self, base: str) -> str:
        return f"{base}{self.group_suffix}"

    @property
    def scope(self) -> TenantScope:
        return TenantScope(self.tenant_prefix)
