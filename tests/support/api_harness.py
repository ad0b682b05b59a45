"""The HTTP API on a free loopback port beside a `SagaHarness` (its task queue, its tenants), so a
test can create API keys the way a customer does and call the API with a real HTTP client."""

from __future__ import annotations

from cloud_factory.front_door import FrontDoor, IssuedKey
from core.settings import Settings
from tests.support.saga_harness import SagaHarness

__all__ = ["ApiHarness", "IssuedKey"]


class ApiHarness(FrontDoor):
    def __init__(self, settings: Settings, tag: str | None = None) -> None:
        self.saga = SagaHarness(settings, tag)
        super().__init__(settings, task_queue=self.saga.task_queue, group_id=f"edge-api-{self.saga.tag}")

    async def __aenter__(self) -> ApiHarness:
        await self.saga.__aenter__()
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        await self.saga.__aexit__(*exc)

    async def issue_key(self, tenant: str = "a", scopes: tuple[str, ...] = ("orders:write", "orders:read"),
                        *, usable_within_s: float = 60) -> IssuedKey:
        return await super().issue_key(self.saga.tenant(tenant), scopes, usable_within_s=usable_within_s)
