"""`cloud-factory identity …`: Identity's commands (each writes its row and publishes its event)."""

from __future__ import annotations

import uuid

import typer

import schemas
from cloud_factory.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Users and API keys (Identity service).")

__all__ = ["app"]


def _commands():
    from services.common.commands import build_commands
    from services.identity.commands import IdentityCommands
    from services.identity.tables import metadata

    return build_commands(
        get_settings(),
        "identity",
        metadata,
        IdentityCommands,
        [e.event_type for e in schemas.catalog.published_by("identity")],
    )


def _run(action):
    try:
        return action()
    except (ValueError, LookupError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def register(
    tenant: str = typer.Option(..., "--tenant"),
    email: str = typer.Option(..., "--email"),
    name: str = typer.Option(..., "--name"),
    locale: str = typer.Option("en", "--locale"),
) -> None:
    """Register a user → identity.user-registered."""
    typer.echo(_run(lambda: _commands().register(tenant, email, name, locale=locale)))


@app.command("verify-email")
def verify_email(user_id: uuid.UUID) -> None:
    """Mark a user's e-mail verified → identity.email-verified."""
    _run(lambda: _commands().verify_email(user_id))
    typer.echo("verified")


@app.command("reset-password")
def reset_password(user_id: uuid.UUID) -> None:
    """Request a password reset → identity.password-reset-requested."""
    typer.echo(_run(lambda: _commands().request_password_reset(user_id)))


@app.command("create-api-key")
def create_api_key(
    user_id: uuid.UUID,
    name: str = typer.Option(..., "--name"),
    scope: list[str] = typer.Option(["orders:read"], "--scope"),  # noqa: B008 (typer idiom)
) -> None:
    """Create an API key (the secret is printed once) → identity.api-key-created."""
    key = _run(lambda: _commands().create_api_key(user_id, name, scope))
    typer.echo(f"{key.api_key_id} {key.secret}")


@app.command("revoke-api-key")
def revoke_api_key(
    api_key_id: uuid.UUID,
    by: uuid.UUID = typer.Option(..., "--by"),  # noqa: B008 (typer idiom)
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Revoke an API key → identity.api-key-revoked."""
    _run(lambda: _commands().revoke_api_key(api_key_id, by, reason))
    typer.echo("revoked")
