"""`cloud-factory outbox …`: the transactional outboxes of Identity, Product, Support and Notification.

Relays publish them (`cloud-factory worker <service>`) and purge published rows past the retention
on their own; `purge` does the same on demand, e.g. before a relay ran for a while.
"""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The services' transactional outboxes.")


@app.callback()
def outbox() -> None:
    """The services' transactional outboxes (rows waiting for Kafka, and those already sent)."""


@app.command()
def purge(
    service: list[str] = typer.Option(
        [], "--service", help="identity, product, support or notification; repeat it; default: all."
    ),
    older_than_h: float | None = typer.Option(
        None, "--older-than-h", min=0, help="Retention in hours (default: CF_OUTBOX_RETENTION_H)."
    ),
) -> None:
    """Delete rows published longer ago than the retention; pending rows always stay."""
    import datetime as dt

    from core.db import engine_for, ensure_schema
    from core.settings import get_settings
    from messaging.outbox import purge_published
    from services.common.outbox_services import OUTBOX_SERVICES, service_tables

    settings = get_settings()
    hours = settings.outbox_retention_h if older_than_h is None else older_than_h
    try:
        chosen = [(name, service_tables(name)) for name in service or OUTBOX_SERVICES]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--service'") from None
    engine = engine_for(settings.dsn)
    for name, tables in chosen:
        ensure_schema(engine, tables.metadata)
        purged = purge_published(engine, tables.outbox, dt.timedelta(hours=hours))
        typer.echo(f"{name}: {purged} row(s) published over {hours:g} h ago deleted")
