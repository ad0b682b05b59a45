"""`cloud-factory support …`: tickets (Support service)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import typer

from cloud_factory.cli._outbox_commands import WAIT, OutboxCommandRunner

if TYPE_CHECKING:
    from services.support.commands import SupportCommands

app = typer.Typer(no_args_is_help=True, help="Customer tickets (Support service).")

__all__ = ["app"]

_run: OutboxCommandRunner[SupportCommands] = OutboxCommandRunner("support", "SupportCommands")


@app.command("open")
def open_ticket(
    tenant: str = typer.Option(..., "--tenant"),
    customer: uuid.UUID = typer.Option(..., "--customer"),
    subject: str = typer.Option(..., "--subject"),
    priority: str = typer.Option("normal", "--priority"),
    category: str = typer.Option("technical", "--category"),
    order: uuid.UUID | None = typer.Option(None, "--order"),
    wait: bool = WAIT,
) -> None:
    """Open a ticket → support.ticket-created."""
    typer.echo(
        _run(
            wait,
            lambda c: c.open(tenant, customer, subject, priority=priority, category=category, order_id=order),
        )
    )


@app.command()
def assign(
    ticket_id: uuid.UUID,
    to: uuid.UUID = typer.Option(..., "--to"),
    team: str = typer.Option("cloud-ops", "--team"),
    wait: bool = WAIT,
) -> None:
    """Assign a ticket → support.ticket-assigned."""
    _run(wait, lambda c: c.assign(ticket_id, to, team))
    typer.echo("assigned")


@app.command()
def reply(
    ticket_id: uuid.UUID,
    message: str = typer.Option(..., "--message"),
    author: str = typer.Option("agent", "--author", help="agent or customer"),
    wait: bool = WAIT,
) -> None:
    """Reply on a ticket → support.ticket-replied."""
    typer.echo(_run(wait, lambda c: c.reply(ticket_id, author, message)))


@app.command()
def escalate(ticket_id: uuid.UUID, reason: str = typer.Option(..., "--reason"), wait: bool = WAIT) -> None:
    """Move a ticket up a tier → support.ticket-escalated."""
    _run(wait, lambda c: c.escalate(ticket_id, reason))
    typer.echo("escalated")


@app.command()
def resolve(
    ticket_id: uuid.UUID,
    code: str = typer.Option("fixed", "--code"),
    summary: str = typer.Option(..., "--summary"),
    wait: bool = WAIT,
) -> None:
    """Resolve a ticket → support.ticket-resolved."""
    _run(wait, lambda c: c.resolve(ticket_id, code, summary))
    typer.echo("resolved")


@app.command()
def reopen(ticket_id: uuid.UUID, reason: str = typer.Option(..., "--reason"), wait: bool = WAIT) -> None:
    """Reopen a resolved ticket → support.ticket-reopened."""
    _run(wait, lambda c: c.reopen(ticket_id, reason))
    typer.echo("reopened")


@app.command()
def close(
    ticket_id: uuid.UUID,
    by: str = typer.Option("agent", "--by"),
    score: int | None = typer.Option(None, "--score", min=1, max=5),
    wait: bool = WAIT,
) -> None:
    """Close a resolved ticket → support.ticket-closed."""
    _run(wait, lambda c: c.close(ticket_id, by, score))
    typer.echo("closed")
