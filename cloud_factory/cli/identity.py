"""`cloud-factory identity …`: Identity's commands (rows and event commit together via its outbox)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import typer

from cloud_factory.cli._outbox_commands import WAIT, OutboxCommandRunner

if TYPE_CHECKING:
    from services.identity.commands import IdentityCommands

app = typer.Typer(no_args_is_help=True, help="Users and API keys (Identity service).")

__all__ = ["app"]

_run: OutboxCommandRunner[IdentityCommands] = OutboxCommandRunner("identity", "IdentityCommands")


@app.command()
def register(
    tenant: str = typer.Option(..., "--tenant"),
    email: str = typer.Option(..., "--email"),
    name: str = typer.Option(..., "--name"),
    locale: str = typer.Option("en", "--locale"),
    wait: bool = WAIT,
) -> None:
    """Register a user → identity.user-registered."""
    typer.echo(_run(wait, lambda c: c.register(tenant, email, name, locale=locale)))


@app.command("verify-email")
def verify_email(user_id: uuid.UUID, wait: bool = WAIT) -> None:
    """Mark a user's e-mail verified → identity.email-verified."""
    _run(wait, lambda c: c.verify_email(user_id))
    typer.echo("verified")


@app.command("reset-password")
def reset_password(user_id: uuid.UUID, wait: bool = WAIT) -> None:
    """Request a password reset → identity.password-reset-requested."""
    typer.echo(_run(wait, lambda c: c.request_password_reset(user_id)))


@app.command("create-api-key")
def create_api_key(
    user_id: uuid.UUID,
    name: str = typer.Option(..., "--name"),
    scope: list[str] = typer.Option(["orders:read"], "--scope"),
    wait: bool = WAIT,
) -> None:
    """Create an API key (the secret is printed once) → identity.api-key-created."""
    key = _run(wait, lambda c: c.create_api_key(user_id, name, scope))
    typer.echo(f"{key.api_key_id} {key.secret}")


@app.command("revoke-api-key")
def revoke_api_key(
    api_key_id: uuid.UUID,
    by: uuid.UUID = typer.Option(..., "--by"),
    reason: str = typer.Option(..., "--reason"),
    wait: bool = WAIT,
) -> None:
    """Revoke an API key → identity.api-key-revoked."""
    _run(wait, lambda c: c.revoke_api_key(api_key_id, by, reason))
    typer.echo("revoked")
