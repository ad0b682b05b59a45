"""The HTTP API in this process, the way the demo and the tests use it: Identity's outbox relayed (so
API keys reach the API as events), the API on a free loopback port, keys issued through Identity's
own commands and usable once the API's projection has them."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from core.settings import Settings
from edge.api.server import run_api
from services.common.commands import build_commands
from services.common.outbox_services import service_tables
from services.identity.commands import IdentityCommands, NewApiKey
from workers.outbox import build_outbox_relay

__all__ = ["FrontDoor", "IssuedKey"]


@dataclass(frozen=True)
class IssuedKey:
    key: NewApiKey
    tenant_id: str
    user_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.secret}"}


class FrontDoor:
    """`async with FrontDoor(settings, task_queue=…, group_id=…)`: the API and Identity's relay run
    until the block ends; `base_url` is where the API listens."""

    def __init__(self, settings: Settings, *, task_queue: str | None = None,
                 group_id: str | None = None) -> None:
        self.settings, self.task_queue = settings, task_queue
        self.group_id = group_id or f"edge-api-{uuid.uuid4().hex[:8]}"
        self.base_url = ""
        self._stop = asyncio.Event()
        self._relay_stop = threading.Event()
        self._task: asyncio.Task | None = None
        self._relay: threading.Thread | None = None
        tables = service_tables("identity")
        self.identity: IdentityCommands = build_commands(settings, "identity", tables.metadata, tables.outbox,
                                                         IdentityCommands)

    async def __aenter__(self) -> FrontDoor:
        relay = await asyncio.to_thread(build_outbox_relay, self.settings, "identity")
        self._relay = threading.Thread(target=relay.run, args=(self._relay_stop,), name="identity-relay",
                                       daemon=True)
        self._relay.start()
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(run_api(self.settings, self._stop, port=0,
                                                 task_queue=self.task_queue, group_id=self.group_id,
                                                 ready=bound.set_result))
        done, _ = await asyncio.wait({self._task, bound}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            await self._task  # it failed to start: its error, not a timeout
        if not bound.done():
            raise TimeoutError("the API did not start listening within 60 s")
        self.base_url = f"http://127.0.0.1:{bound.result()}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._relay_stop.set()
        if self._relay is not None:
            await asyncio.to_thread(self._relay.join, 30)

    def client(self, **options: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30, **options)  # type: ignore[arg-type]

    async def issue_key(self, tenant_id: str, scopes: tuple[str, ...] = ("orders:write", "orders:read"),
                        *, usable_within_s: float = 60) -> IssuedKey:
        """A user and a key of `tenant_id` created through Identity, once the API accepts the key."""
        user = await asyncio.to_thread(self.identity.register, tenant_id,
                                       f"api-{uuid.uuid4().hex[:8]}@example.com", "API user")
        key = await asyncio.to_thread(self.identity.create_api_key, user, "order API", list(scopes))
        issued = IssuedKey(key, tenant_id, user)
        await self.wait_until(issued, lambda status: status != 401, within_s=usable_within_s)
        return issued

    async def wait_until(self, issued: IssuedKey, accept: Callable[[int], bool], *, within_s: float) -> float:
        """Seconds until a GET of an unknown order with `issued`'s key answers a status `accept`s."""
        started = time.monotonic()
        async with self.client() as http:
            while True:
                answer = await http.get(f"/v1/orders/{uuid.uuid4()}", headers=issued.headers)
                if accept(answer.status_code):
                    return time.monotonic() - started
                if time.monotonic() - started > within_s:
                    raise TimeoutError(f"API key {issued.key.api_key_id} still answers {answer.status_code} "
                                       f"after {within_s:g} s: {answer.json().get('detail')}")
                await asyncio.sleep(0.1)
