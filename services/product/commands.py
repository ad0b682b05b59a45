"""Product's commands: the catalogue changes in Product's tables and is announced as events.
The catalogue is platform-wide: its events carry the tenant `platform`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, Table

import schemas
from services.common.commands import EntityCommands
from services.common.outbox_emitter import OutboxEmitter
from services.product.tables import plans, products

__all__ = ["PLATFORM_TENANT", "ProductCommands"]

PLATFORM_TENANT = "platform"


class ProductCommands(EntityCommands):
    flow_kind = "product"  # plans belong to their product's flow

    def __init__(self, engine: Engine, emitter: OutboxEmitter, *, operator: str = "catalogue-admin") -> None:
        super().__init__(engine, emitter)
        self.actor = schemas.Actor(id=operator, type=schemas.ActorType.USER)

    def _product(self, conn: Connection, product_id: uuid.UUID) -> dict:
        return self._row(conn, products, product_id, missing=f"no product {product_id}")

    def _plan(self, conn: Connection, plan_id: str) -> dict:
        return self._row(conn, plans, plan_id, missing=f"no plan {plan_id!r}")

    def _catalogue_step(self, conn: Connection, table: Table, entity_id: Any, *, step: str, event_type: str,
                        previous: str | None, data: dict[str, Any], flow_of: Any = None) -> None:
        """One step of a product's flow, acted by the operator, for the whole platform."""
        self._step(conn, table, entity_id, step=step, event_type=event_type, tenant_id=PLATFORM_TENANT,
                   actor=self.actor, previous=previous, flow_of=flow_of, data=data)

    def create_product(
        self, sku: str, name: str, description: str, category: str, regions: list[str]
    ) -> uuid.UUID:
        product_id = uuid.uuid4()
        with self._transaction(duplicate=f"SKU {sku!r} already exists") as conn:
            self._insert(conn, products, product_id=product_id, sku=sku, name=name, description=description,
                         category=category, regions=regions)
            self._catalogue_step(
                conn,
                products,
                product_id,
                step="created",
                event_type="product.created",
                previous=None,
                data={
                    "productId": product_id,
                    "sku": sku,
                    "name": name,
                    "description": description,
                    "category": category,
                    "regions": regions,
                },
            )
        return product_id

    def create_plan(
        self,
        product_id: uuid.UUID,
        plan_id: str,
        name: str,
        price_minor: int,
        currency: str,
        billing_cycle: str,
        *,
        vcpus: int,
        memory_mib: int,
        storage_gib: int,
    ) -> None:
        limits = {"vcpus": vcpus, "memoryMib": memory_mib, "storageGib": storage_gib}
        with self._transaction(duplicate=f"plan {plan_id!r} already exists") as conn:
            product = self._product(conn, product_id)
            self._insert(conn, plans, plan_id=plan_id, product_id=product_id, name=name,
                         price_minor=price_minor, currency=currency, billing_cycle=billing_cycle,
                         limits=limits)
            self._catalogue_step(
                conn,
                plans,
                plan_id,
                step=f"plan/{plan_id}",
                event_type="product.plan-created",
                previous=product["last_event_id"],
                flow_of=product_id,
                data={
                    "planId": plan_id,
                    "productId": product_id,
                    "name": name,
                    "price": {"amountMinor": price_minor, "currency": currency},
                    "billingCycle": billing_cycle,
                    "limits": limits,
                },
            )

    def change_price(self, plan_id: str, new_price_minor: int, effective_from: dt.date) -> None:
        with self._transaction() as conn:
            plan = self._plan(conn, plan_id)
            self._update(conn, plans, plan_id, price_minor=new_price_minor)
            self._catalogue_step(
                conn,
                plans,
                plan_id,
                step=f"plan/{plan_id}/price/{effective_from}/{new_price_minor}",
                event_type="product.price-changed",
                previous=plan["last_event_id"],
                flow_of=plan["product_id"],
                data={
                    "productId": plan["product_id"],
                    "planId": plan_id,
                    "oldPrice": {"amountMinor": plan["price_minor"], "currency": plan["currency"]},
                    "newPrice": {"amountMinor": new_price_minor, "currency": plan["currency"]},
                    "effectiveFrom": effective_from.isoformat(),
                },
            )

    def retire_plan(self, plan_id: str, *, migrate_to: str | None = None) -> None:
        with self._transaction() as conn:
            plan = self._plan(conn, plan_id)
            if plan["retired"]:
                raise ValueError(f"plan {plan_id!r} is already retired")
            self._update(conn, plans, plan_id, retired=True)
            self._catalogue_step(
                conn,
                plans,
                plan_id,
                step=f"plan/{plan_id}/retired",
                event_type="product.plan-retired",
                previous=plan["last_event_id"],
                flow_of=plan["product_id"],
                data={
                    "planId": plan_id,
                    "productId": plan["product_id"],
                    "retiredOn": dt.date.today().isoformat(),
                    "migrateToPlanId": migrate_to,
                },
            )
