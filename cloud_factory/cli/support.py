"""`cloud-factory support …`: tickets (Support service)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from cloud_factory.settings import Settings, get_settings

if TYPE_CHECKING:
    from services.support.commands import SupportCommands

app = typer.Typer(no_args_is_help=True, help="Customer tickets (Support service).")

__all__ = ["app"]

T = TypeVar("T")
WAIT = typer.Option(False, "--wait", help="Return once the event is on Kafka (relays it if no worker does).")


def _commands(settings: Settings) -> SupportCommands:
    from services.common.commands import build_commands
    from services.support.commands import SupportCommands
    from services.support.tables import metadata, outbox

    return build_commands(settings, "support", metadata, outbox, SupportCommands)


def _run(wait: bool, action: Callable[[SupportCommands], T]) -> T:
    """Run one command (its rows and events commit together), then try to get the events onto Kafka."""
    settings = get_settings()
    commands = _commands(settings)
    try:
        result = action(commands)
    except (ValueError, LookupError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    from services.common.outbox_delivery import deliver, explain

    report = deliver(settings, commands.engine, commands.emit, wait=wait)
    message = explain(report, "support", wait=wait)
    if message:
        typer.echo(message, err=True)
        if wait:
            raise typer.Exit(1)
    return result


@app.command("open")
def open_ticket(
    tenant: str = typer.Option(..., "--tenant"),
    customer: uuid.UUID = typer.Option(..., "--customer"),  # noqa: B008 (typer idiom)
    subject: str = typer.Option(..., "--subject"),
    priority: str = typer.Option("normal", "--priority"),
    category: str = typer.Option("technical", "--category"),
    order: uuid.UUID | None = typer.Option(None, "--order"),  # noqa: B008 (typer idiom)
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
    to: uuid.UUID = typer.Option(..., "--to"),  # noqa: B008 (typer idiom)
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
