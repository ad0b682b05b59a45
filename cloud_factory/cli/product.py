"""`cloud-factory product …`: the catalogue (Product service)."""

from __future__ import annotations

import datetime as dt
import uuid

import typer

import schemas
from cloud_factory.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Products and plans (Product service).")

__all__ = ["app"]


def _commands():
    from services.common.commands import build_commands
    from services.product.commands import ProductCommands
    from services.product.tables import metadata

    return build_commands(
        get_settings(),
        "product",
        metadata,
        ProductCommands,
        [e.event_type for e in schemas.catalog.published_by("product")],
    )


def _run(action):
    try:
        return action()
    except (ValueError, LookupError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def create(
    sku: str = typer.Option(..., "--sku"),
    name: str = typer.Option(..., "--name"),
    description: str = typer.Option(..., "--description"),
    category: str = typer.Option("compute", "--category"),
    region: list[str] = typer.Option(["eu-west-1"], "--region"),  # noqa: B008 (typer idiom)
) -> None:
    """Create a product → product.created."""
    typer.echo(_run(lambda: _commands().create_product(sku, name, description, category, region)))


@app.command("create-plan")
def create_plan(
    product_id: uuid.UUID,
    plan_id: str = typer.Option(..., "--plan"),
    name: str = typer.Option(..., "--name"),
    price: int = typer.Option(..., "--price-minor"),
    currency: str = typer.Option("EUR", "--currency"),
    cycle: str = typer.Option("monthly", "--cycle"),
    vcpus: int = typer.Option(2, "--vcpus"),
    memory_mib: int = typer.Option(4096, "--memory-mib"),
    storage_gib: int = typer.Option(50, "--storage-gib"),
) -> None:
    """Create a plan of a product → product.plan-created."""
    _run(
        lambda: _commands().create_plan(
            product_id,
            plan_id,
            name,
            price,
            currency,
            cycle,
            vcpus=vcpus,
            memory_mib=memory_mib,
            storage_gib=storage_gib,
        )
    )
    typer.echo(plan_id)


@app.command("change-price")
def change_price(
    plan_id: str,
    price: int = typer.Option(..., "--price-minor"),
    effective: str = typer.Option(..., "--effective", help="YYYY-MM-DD"),
) -> None:
    """Change a plan's price from a date → product.price-changed."""
    _run(lambda: _commands().change_price(plan_id, price, dt.date.fromisoformat(effective)))
    typer.echo("price changed")


@app.command("retire-plan")
def retire_plan(plan_id: str, migrate_to: str | None = typer.Option(None, "--migrate-to")) -> None:
    """Stop selling a plan → product.plan-retired."""
    _run(lambda: _commands().retire_plan(plan_id, migrate_to=migrate_to))
    typer.echo("retired")
