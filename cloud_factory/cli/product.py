"""`cloud-factory product …`: the catalogue (Product service)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import typer

from cloud_factory.cli._outbox_commands import WAIT, OutboxCommandRunner

if TYPE_CHECKING:
    from services.product.commands import ProductCommands

app = typer.Typer(no_args_is_help=True, help="Products and plans (Product service).")

__all__ = ["app"]

_run: OutboxCommandRunner[ProductCommands] = OutboxCommandRunner("product", "ProductCommands")


@app.command()
def create(
    sku: str = typer.Option(..., "--sku"),
    name: str = typer.Option(..., "--name"),
    description: str = typer.Option(..., "--description"),
    category: str = typer.Option("compute", "--category"),
    region: list[str] = typer.Option(["eu-west-1"], "--region"),
    wait: bool = WAIT,
) -> None:
    """Create a product → product.created."""
    typer.echo(_run(wait, lambda c: c.create_product(sku, name, description, category, region)))


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
    wait: bool = WAIT,
) -> None:
    """Create a plan of a product → product.plan-created."""
    _run(
        wait,
        lambda c: c.create_plan(
            product_id,
            plan_id,
            name,
            price,
            currency,
            cycle,
            vcpus=vcpus,
            memory_mib=memory_mib,
            storage_gib=storage_gib,
        ),
    )
    typer.echo(plan_id)


@app.command("change-price")
def change_price(
    plan_id: str,
    price: int = typer.Option(..., "--price-minor"),
    effective: str = typer.Option(..., "--effective", help="YYYY-MM-DD"),
    wait: bool = WAIT,
) -> None:
    """Change a plan's price from a date → product.price-changed."""
    try:
        day = dt.date.fromisoformat(effective)
    except ValueError:
        raise typer.BadParameter(f"{effective!r} is not a date like 2030-01-31",
                                 param_hint="'--effective'") from None
    _run(wait, lambda c: c.change_price(plan_id, price, day))
    typer.echo("price changed")


@app.command("retire-plan")
def retire_plan(
    plan_id: str, migrate_to: str | None = typer.Option(None, "--migrate-to"), wait: bool = WAIT
) -> None:
    """Stop selling a plan → product.plan-retired."""
    _run(wait, lambda c: c.retire_plan(plan_id, migrate_to=migrate_to))
    typer.echo("retired")
