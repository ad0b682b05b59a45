"""The HTTP API on a free loopback port beside a `SagaHarness`, with Identity's outbox relayed, so a
test can create API keys the way a customer does and call the API with a real HTTP client."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass

import httpx

from core.settings import Settings
from edge.api.server import run_api
from services.common.commands import build_commands
from services.common.outbox_services import service_tables
from services.identity.commands import IdentityCommands, NewApiKey
from tests.support.saga_harness import SagaHarness
from workers.outbox import build_outbox_relay

__all__ = ["ApiHarness", "IssuedKey"]


@dataclass(frozen=True)
class IssuedKey:
    key: NewApiKey
    tenant_id: str
    user_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.secret}"}


class ApiHarness:
    def __init__(self, settings: Settings, tag: str | None = None) -> None:
        self.saga = SagaHarness(settings, tag)
        self.settings = settings
        self.base_url = ""
        self._stop = asyncio.Event()
        self._relay_stop = threading.Event()
        self._tasks: list[asyncio.Task] = []
        self._relay: threading.Thread | None = None
        tables = service_tables("identity")
        self.identity: IdentityCommands = build_commands(settings, "identity", tables.metadata, tables.outbox,
                                                         IdentityCommands)

    async def __aenter__(self) -> ApiHarness:
        await self.saga.__aenter__()
        relay = await asyncio.to_thread(build_outbox_relay, self.settings, "identity")
        self._relay = threading.Thread(target=relay.run, args=(self._relay_stop,), daemon=True)
        self._relay.start()
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.create_task(run_api(
            self.settings, self._stop, port=0, task_queue=self.saga.task_queue,
            group_id=f"edge-api-{self.saga.tag}", ready=bound.set_result)))
        port = await asyncio.wait_for(bound, 60)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._relay_stop.set()
        if self._relay is not None:
            await asyncio.to_thread(self._relay.join, 30)
        await self.saga.__aexit__(*exc)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    async def issue_key(self, tenant: str = "a", scopes: tuple[str, ...] = ("orders:write", "orders:read"),
                        *, usable_within_s: float = 60) -> IssuedKey:
        """A key created through Identity's commands, once the API's projection accepts it."""
        tenant_id = self.saga.tenant(tenant)
        user = await asyncio.to_thread(self.identity.register, tenant_id, f"{uuid.uuid4().hex[:8]}@example.com",
                                       "API test user")
        key = await asyncio.to_thread(self.identity.create_api_key, user, "tests", list(scopes))
        issued = IssuedKey(key, tenant_id, user)
        await self.wait_until(issued, lambda status: status != 401, within_s=usable_within_s)
        return issued

    async def wait_until(self, issued: IssuedKey, accept, *, within_s: float) -> float:
        """Seconds until a GET of an unknown order with `issued`'s key answers a status `accept`s."""
        started = time.monotonic()
        async with self.client() as http:
            while True:
                answer = await http.get(f"/v1/orders/{uuid.uuid4()}", headers=issued.headers)
                if accept(answer.status_code):
                    return time.monotonic() - started
                if time.monotonic() - started > within_s:
                    raise TimeoutError(f"the key still answers {answer.status_code} after {within_s} s: "
                                       f"{answer.text}")
                await asyncio.sleep(0.1)
