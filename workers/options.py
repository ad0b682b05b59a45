"""Per-process worker options read from the environment (beyond the shared `Settings`).

`CF_ORDER_TASK_QUEUE` moves the saga to another Temporal task queue, `CF_WORKER_GROUP_SUFFIX`
appends to every consumer group id and `CF_WORKER_TENANT_PREFIX` restricts consumers to tenants
with that prefix, `CF_KAFKA_SESSION_TIMEOUT_MS` shortens how long a crashed consumer keeps its
partitions, `CF_KAFKA_MAX_POLL_INTERVAL_MS` how long one batch may take before the group hands its
partitions on (its commit is then refused: an INFO line, see `messaging.commits`) and
`CF_IDEMPOTENCY_LEASE_S` how long its in-progress idempotency keys block a
replacement (keep it above the slowest handler), `CF_CONSUMER_REPLICAS` how many consumers each
saga-path service runs (default: one per partition) — together they let a fleet (or a test) run
isolated from the default one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.common import TenantScope

__all__ = ["WorkerOptions"]


def _positive_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class WorkerOptions:
    task_queue: str = "cloud-factory-orders"
    group_suffix: str = ""
    tenant_prefix: str = ""
    session_timeout_ms: int | None = None
    max_poll_interval_ms: int | None = None
    lease_s: float | None = None
    replicas: int | None = None  # consumer threads per saga-path service (default: one per partition)

    @classmethod
    def from_env(cls) -> WorkerOptions:
        timeout = os.environ.get("CF_KAFKA_SESSION_TIMEOUT_MS")
        if timeout is not None and not timeout.isdigit():
            raise ValueError(f"CF_KAFKA_SESSION_TIMEOUT_MS must be milliseconds, not {timeout!r}")
        return cls(
            task_queue=os.environ.get("CF_ORDER_TASK_QUEUE") or "cloud-factory-orders",
            group_suffix=os.environ.get("CF_WORKER_GROUP_SUFFIX", ""),
            tenant_prefix=os.environ.get("CF_WORKER_TENANT_PREFIX", ""),
            session_timeout_ms=int(timeout) if timeout else None,
            max_poll_interval_ms=_positive_int("CF_KAFKA_MAX_POLL_INTERVAL_MS"),
            lease_s=float(os.environ["CF_IDEMPOTENCY_LEASE_S"])
            if os.environ.get("CF_IDEMPOTENCY_LEASE_S")
            else None,
            replicas=_positive_int("CF_CONSUMER_REPLICAS"),
        )

    @property
    def kafka_config(self) -> dict[str, object]:
        """Consumer overrides: a short session timeout hands a killed worker's partitions on sooner, a
        short poll interval a stuck one's."""
        config: dict[str, object] = {}
        if self.session_timeout_ms:
            config["session.timeout.ms"] = self.session_timeout_ms
        if self.max_poll_interval_ms:
            config["max.poll.interval.ms"] = self.max_poll_interval_ms
        return config

    @property
    def tuning(self) -> dict[str, object]:
        """Keyword arguments for the consumer builders."""
        return {"extra_config": self.kafka_config, "lease_s": self.lease_s}

    @property
    def scope(self) -> TenantScope:
        return TenantScope(self.tenant_prefix)
