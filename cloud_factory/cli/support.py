"""`cloud-factory support …`: tickets (Support service)."""

from __future__ import annotations

import uuid

import typer

import schemas
from cloud_factory.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Customer tickets (Support service).")

__all__ = ["app"]


def _commands():
    from services.common.commands import build_commands
    from services.support.commands import SupportCommands
    from services.support.tables import metadata

    return build_commands(
        get_settings(),
        "support",
        metadata,
        SupportCommands,
        [e.event_type for e in schemas.catalog.published_by("support")],
    )


def _run(action):
    try:
        return action()
    except (ValueError, LookupError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("open")
def open_ticket(
    tenant: str = typer.Option(..., "--tenant"),
    customer: uuid.UUID = typer.Option(..., "--customer"),  # noqa: B008 (typer idiom)
    subject: str = typer.Option(..., "--subject"),
    priority: str = typer.Option("normal", "--priority"),
    category: str = typer.Option("technical", "--category"),
    order: uuid.UUID | None = typer.Option(None, "--order"),  # noqa: B008 (typer idiom)
) -> None:
    """Open a ticket → support.ticket-created."""
    typer.echo(
        _run(
            lambda: _commands().open(
                tenant, customer, subject, priority=priority, category=category, order_id=order
            )
        )
    )


@app.command()
def assign(
    ticket_id: uuid.UUID,
    to: uuid.UUID = typer.Option(..., "--to"),  # noqa: B008 (typer idiom)
    team: str = typer.Option("cloud-ops", "--team"),
) -> None:
    """Assign a ticket → support.ticket-assigned."""
    _run(lambda: _commands().assign(ticket_id, to, team))
    typer.echo("assigned")


@app.command()
def reply(
    ticket_id: uuid.UUID,
    message: str = typer.Option(..., "--message"),
    author: str = typer.Option("agent", "--author", help="agent or customer"),
) -> None:
    """Reply on a ticket → support.ticket-replied."""
    typer.echo(_run(lambda: _commands().reply(ticket_id, author, message)))


@app.command()
def escalate(ticket_id: uuid.UUID, reason: str = typer.Option(..., "--reason")) -> None:
    """Move a ticket up a tier → support.ticket-escalated."""
    _run(lambda: _commands().escalate(ticket_id, reason))
    typer.echo("escalated")


@app.command()
def resolve(
    ticket_id: uuid.UUID,
    code: str = typer.Option("fixed", "--code"),
    summary: str = typer.Option(..., "--summary"),
) -> None:
    """Resolve a ticket → support.ticket-resolved."""
    _run(lambda: _commands().resolve(ticket_id, code, summary))
    typer.echo("resolved")


@app.command()
def reopen(ticket_id: uuid.UUID, reason: str = typer.Option(..., "--reason")) -> None:
    """Reopen a resolved ticket → support.ticket-reopened."""
    _run(lambda: _commands().reopen(ticket_id, reason))
    typer.echo("reopened")


@app.command()
def close(
    ticket_id: uuid.UUID,
    by: str = typer.Option("agent", "--by"),
    score: int | None = typer.Option(None, "--score", min=1, max=5),
) -> None:
    """Close a resolved ticket → support.ticket-closed."""
    _run(lambda: _commands().close(ticket_id, by, score))
    typer.echo("closed")
