"""`cloud-factory worker KIND`: run workers in the foreground until SIGTERM/SIGINT.

The kinds are offered from `cloud_factory.choices` (import-free); the workers themselves, and
everything they pull in, are imported once one is started.

Before starting, the servers the kinds need must answer: a worker started without them would retry
forever, its threads logging each attempt (or dying with a traceback) while the process looks
alive. So a missing server is one line and exit 1 within seconds; once running, a worker rides out
outages as before (retries, the spool, Temporal's activity retries).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cloud_factory.choices import WorkerKindChoice

if TYPE_CHECKING:
    from core.settings import Settings
    from workers.kinds import WorkerKind

HELP = "Run workers (saga, bridge, services, outbox relays, the HTTP API, all) until SIGTERM."


def _require_servers(kinds: set[WorkerKind], settings: Settings) -> None:
    """Kafka and PostgreSQL for every kind but the saga (consumers, idempotency keys, outboxes),
    Temporal for the saga and the bridge (which signals sagas)."""
    import asyncio

    from cloud_factory.cli.errors import require_kafka
    from core.db import engine_for
    from core.temporal import connect_client
    from workers.kinds import WorkerKind

    if kinds - {WorkerKind.SAGA}:
        require_kafka()
        with engine_for(settings.dsn).connect():
            pass
    if kinds & {WorkerKind.SAGA, WorkerKind.BRIDGE, WorkerKind.API}:
        asyncio.run(connect_client(settings))


def worker(
    kind: WorkerKindChoice = typer.Argument(
        ..., help="Which worker to run; `all` runs every kind but `api` in one process."),
    port: int | None = typer.Option(None, "--port", min=0, max=65535,
                                    help="api: the port to listen on (default CF_API_PORT, 8000)."),
    processes: int = typer.Option(1, "--processes", min=1, max=64,
                                  help="Run N processes of the kind under a supervisor that keeps N "
                                       "running (not for api)."),
) -> None:
    """Start the worker(s); replicas may run anywhere (Temporal task queue / Kafka consumer group).

    A plain command (not a group), so options may follow the kind: `worker api --port 8000`."""
    import logging

    from core.logs import configure_logging
    from core.settings import get_settings
    from workers.kinds import EVERY_KIND, WorkerKind
    from workers.state_dir import require_writable
    from workers.supervisor import follow_supervisor

    settings = get_settings()
    chosen = WorkerKind(kind.value)
    if port is not None and chosen is not WorkerKind.API:
        raise typer.BadParameter("--port is for `worker api` only", param_hint="--port")
    if processes > 1 and chosen is WorkerKind.API:
        raise typer.BadParameter("not for `worker api` (one process listens on a port); run one API "
                                 "process per port behind a load balancer", param_hint="--processes")
    follow_supervisor()
    require_writable(settings.state_dir, settings.spool_dir)
    _require_servers(set(EVERY_KIND) if chosen is WorkerKind.ALL else {chosen}, settings)
    configure_logging()
    if processes > 1:
        raise typer.Exit(_supervise(chosen, processes, settings))
    from workers.runner import run_workers

    logging.getLogger(__name__).info("starting %s worker(s)", kind.value)
    run_workers(chosen, settings, api_port=port)


def _supervise(kind: WorkerKind, processes: int, settings: Settings) -> int:
    """N children running `worker KIND`; saga-path consumers split the partitions among them (unless
    CF_CONSUMER_REPLICAS says how many each runs)."""
    import os
    import sys

    from workers.supervisor import Supervisor, replicas_per_process

    env = dict(os.environ)
    env.setdefault("CF_CONSUMER_REPLICAS", str(replicas_per_process(settings.kafka_partitions, processes)))
    command = [sys.executable, "-m", "cloud_factory", "worker", kind.value]
    return Supervisor(command, processes, env, name=f"{kind.value} worker").run()
