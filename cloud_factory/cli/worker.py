"""`cloud-factory worker KIND`: run workers in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import logging

import typer

from core.logs import configure_logging
from core.settings import get_settings
from workers.kinds import WorkerKind
from workers.runner import run_workers

app = typer.Typer(help="Run workers (saga, bridge, services, outbox relays, all) until SIGTERM.")


@app.callback(invoke_without_command=True)
def worker(
    kind: WorkerKind = typer.Argument(..., help="Which worker to run; `all` runs every kind in one process."),  # noqa: B008 (typer idiom)
) -> None:
    """Start the worker(s); replicas may run anywhere (Temporal task queue / Kafka consumer group)."""
    configure_logging()
    logging.getLogger(__name__).info("starting %s worker(s)", kind.value)
    run_workers(kind, get_settings())
