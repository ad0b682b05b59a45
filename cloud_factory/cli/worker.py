"""`cloud-factory worker KIND`: run workers in the foreground until SIGTERM/SIGINT.

The kinds are offered from `cloud_factory.choices` (import-free); the workers themselves, and
everything they pull in, are imported once one is started.
"""

from __future__ import annotations

import typer

from cloud_factory.choices import WorkerKindChoice

app = typer.Typer(help="Run workers (saga, bridge, services, outbox relays, all) until SIGTERM.")


@app.callback(invoke_without_command=True)
def worker(
    kind: WorkerKindChoice = typer.Argument(  # noqa: B008 (typer idiom)
        ..., help="Which worker to run; `all` runs every kind in one process."),
) -> None:
    """Start the worker(s); replicas may run anywhere (Temporal task queue / Kafka consumer group)."""
    import logging

    from core.logs import configure_logging
    from core.settings import get_settings
    from workers.kinds import WorkerKind
    from workers.runner import run_workers

    configure_logging()
    logging.getLogger(__name__).info("starting %s worker(s)", kind.value)
    run_workers(WorkerKind(kind.value), get_settings())
