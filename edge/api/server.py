"""`cloud-factory worker api`: the HTTP API (uvicorn) and its key projection's consumer in one process.

The projection's consumer runs in a thread (confluent-kafka is blocking) in the group `edge-api`;
uvicorn serves the app on the asyncio loop. Both stop when `stop` is set: uvicorn finishes the
requests in hand, the consumer its batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import uvicorn

from core.db import engine_for, ensure_schema
from core.settings import Settings
from core.temporal import connect_client
from edge.api.app import ApiConfig, create_app
from edge.api.keys import API_KEY_GROUP, KeyProjection, metadata
from messaging import consumer_from, idempotency_from

__all__ = ["run_api"]

log = logging.getLogger(__name__)


def _projection(settings: Settings, stop: threading.Event, group_id: str) -> None:
    from core.tracing import configure_tracing

    configure_tracing("api")
    engine = engine_for(settings.dsn)
    consumer = consumer_from(settings, group_id=group_id, handlers=KeyProjection(engine).handlers(),
                             idempotency=idempotency_from(settings))
    consumer.run(stop, poll_timeout=0.2)


async def run_api(settings: Settings, stop: asyncio.Event, *, port: int | None = None,
                  task_queue: str | None = None, group_id: str = API_KEY_GROUP,
                  ready: Callable[[int], None] | None = None) -> None:
    """Serve until `stop`; `ready(port)` once listening (port 0 picks a free one)."""
    from core.tracing import configure_tracing

    configure_tracing("api")
    engine = engine_for(settings.dsn)
    await asyncio.to_thread(ensure_schema, engine, metadata)
    thread_stop = threading.Event()
    consumer = threading.Thread(target=_projection, args=(settings, thread_stop, group_id), name="api-keys",
                                daemon=False)
    consumer.start()
    config = ApiConfig(engine=engine, connect=lambda: connect_client(settings),
                       rate_per_s=settings.api_rate_per_s, burst=settings.api_burst,
                       max_body_bytes=settings.api_max_body_bytes, key_cache_s=settings.api_key_cache_s)
    if task_queue:
        config.task_queue = task_queue
    server = uvicorn.Server(uvicorn.Config(
        create_app(config), host=settings.api_host, port=settings.api_port if port is None else port,
        log_config=None, access_log=False, lifespan="on", server_header=False,
        h11_max_incomplete_event_size=16384))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                await serving
                raise RuntimeError("the API could not listen on "
                                   f"{settings.api_host}:{port or settings.api_port}")
            await asyncio.sleep(0.05)
        sockets = [sock for listening in server.servers for sock in listening.sockets]
        if not sockets:  # a stop signal reached uvicorn before the port was announced: just finish
            await serving
            return
        bound = sockets[0].getsockname()[1]
        log.info("order API listening on http://%s:%s", settings.api_host, bound)
        if ready:
            ready(bound)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving
    finally:
        thread_stop.set()
        await asyncio.to_thread(consumer.join)
