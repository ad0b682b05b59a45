"""Product's commands: the catalogue changes in Product's tables and is announced as events.
The catalogue is platform-wide: its events carry the tenant `platform`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.exc import IntegrityError

import schemas
from services.common.entity_flow import publish_step
from services.common.outbox_emitter import OutboxEmitter
from services.product.tables import plans, products

__all__ = ["PLATFORM_TENANT", "ProductCommands"]

PLATFORM_TENANT = "platform"


class ProductCommands:
    def __init__(self, engine: Engine, emitter: OutboxEmitter, *, operator: str = "catalogue-admin") -> None:
        self.engine = engine
        self.emit = emitter
        self.actor = schemas.Actor(id=operator, type=schemas.ActorType.USER)

    def _product(self, conn, product_id: uuid.UUID) -> dict:
        row = conn.execute(select(products).where(products.c.product_id == product_id)).mappings().first()
        if row is None:
            raise LookupError(f"no product {product_id}")
        return dict(row)

    def _plan(self, conn, plan_id: str) -> dict:
        row = conn.execute(select(plans).where(plans.c.plan_id == plan_id)).mappings().first()
        if row is None:
            raise LookupError(f"no plan {plan_id!r}")
        return dict(row)

    def _step(self, conn: Connection, table: Table, key_column: str, entity_id: Any, *, step: str,
              event_type: str, previous: str | None, data: dict[str, Any], flow_of: Any = None) -> None:
        """One step of a product's flow (plans belong to their product's flow), acted by the service."""
        publish_step(conn, self.emit, table, key_column, entity_id, kind="product", step=step,
                     event_type=event_type, tenant_id=PLATFORM_TENANT, actor=self.actor,
                     previous=previous, flow_of=flow_of, data=data)

    def create_product(
        self, sku: str, name: str, description: str, category: str, regions: list[str]
    ) -> uuid.UUID:
        product_id = uuid.uuid4()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    products.insert().values(
                        product_id=product_id,
                        sku=sku,
                        name=name,
                        description=description,
                        category=category,
                        regions=regions,
                    )
                )
                self._step(
                    conn,
                    products,
                    "product_id",
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
        except IntegrityError:
            raise ValueError(f"SKU {sku!r} already exists") from None
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
        try:
            with self.engine.begin() as conn:
                product = self._product(conn, product_id)
                conn.execute(
                    plans.insert().values(
                        plan_id=plan_id,
                        product_id=product_id,
                        name=name,
                        price_minor=price_minor,
                        currency=currency,
                        billing_cycle=billing_cycle,
                        limits=limits,
                    )
                )
                self._step(
                    conn,
                    plans,
                    "plan_id",
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
        except IntegrityError:
            raise ValueError(f"plan {plan_id!r} already exists") from None

    def change_price(self, plan_id: str, new_price_minor: int, effective_from: dt.date) -> None:
        with self.engine.begin() as conn:
            plan = self._plan(conn, plan_id)
            conn.execute(update(plans).where(plans.c.plan_id == plan_id).values(price_minor=new_price_minor))
            self._step(
                conn,
                plans,
                "plan_id",
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
        with self.engine.begin() as conn:
            plan = self._plan(conn, plan_id)
            if plan["retired"]:
                raise ValueError(f"plan {plan_id!r} is already retired")
            conn.execute(update(plans).where(plans.c.plan_id == plan_id).values(retired=True))
            self._step(
                conn,
                plans,
                "plan_id",
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
