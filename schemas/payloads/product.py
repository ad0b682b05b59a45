"""Payloads of the Product domain: the catalogue of sellable products and their plans."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.payloads._base import (
    BillingCycle,
    Money,
    Payload,
    PlanId,
    Region,
    ShortText,
    Sku,
    Text,
    WireModel,
)

__all__ = [
    "PlanLimits",
    "ProductCategory",
    "ProductCreatedV1",
    "ProductDiscontinuedV1",
    "ProductPlanCreatedV1",
    "ProductPlanRetiredV1",
    "ProductPriceChangedV1",
    "ProductUpdatedV1",
]


class ProductCategory(StrEnum):
    COMPUTE = "compute"
    DATABASE = "database"
    STORAGE = "storage"
    NETWORKING = "networking"
    KUBERNETES = "kubernetes"


class ProductCreatedV1(Payload):
    product_id: UUID
    sku: Sku
    name: ShortText
    description: Text
    category: ProductCategory
    regions: Annotated[list[Region], Field(min_length=1)]


class ProductUpdatedV1(Payload):
    product_id: UUID
    name: ShortText
    description: Text
    regions: Annotated[list[Region], Field(min_length=1)]
    changed_fields: Annotated[list[Annotated[str, Field(pattern=r"^[a-z][A-Za-z]*$")]], Field(min_length=1)]


class ProductPriceChangedV1(Payload):
    product_id: UUID
    plan_id: PlanId
    old_price: Money
    new_price: Money
    effective_from: dt.date


class ProductDiscontinuedV1(Payload):
    product_id: UUID
    end_of_sale: dt.date
    end_of_life: dt.date
    replacement_product_id: UUID | None = None


class PlanLimits(WireModel):
    vcpus: Annotated[int, Field(ge=0, le=1024)]
    memory_mib: Annotated[int, Field(ge=0)]
    storage_gib: Annotated[int, Field(ge=0)]


class ProductPlanCreatedV1(Payload):
    plan_id: PlanId
    product_id: UUID
    name: ShortText
    price: Money
    billing_cycle: BillingCycle
    limits: PlanLimits


class ProductPlanRetiredV1(Payload):
    plan_id: PlanId
    product_id: UUID
    retired_on: dt.date
    migrate_to_plan_id: PlanId | None = None
