"""Building blocks shared by every domain's payloads.

All payloads are strict, frozen and closed (`extra="forbid"`): a field that is not in the schema of the
declared version is a contract violation, not something to ignore. Python code uses snake_case names;
the wire uses camelCase.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

__all__ = [
    "BillingCycle",
    "Currency",
    "EmailAddress",
    "ErrorCode",
    "Money",
    "Payload",
    "PlanId",
    "Region",
    "ResourceKind",
    "ResourceName",
    "ResourceRef",
    "ResourceSpec",
    "ShortText",
    "Sku",
    "Text",
    "WireModel",
]

WIRE_CONFIG = ConfigDict(
    strict=True,
    extra="forbid",
    frozen=True,
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    use_enum_values=False,
    field_title_generator=lambda name, _info: name.replace("_", " ").capitalize(),
)


class WireModel(BaseModel):
    """Base of every model that appears on the wire (payloads and the parts they are made of)."""

    model_config = WIRE_CONFIG


class Payload(WireModel):
    """Base of every event payload (the envelope's `data`); exactly one catalog (type, version) owns each."""


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 alphabetic code, upper case (``EUR``, ``USD``, ``JPY``)."""

Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[a-z]+-[1-9][0-9]?$")]
"""A Cloud Factory region such as ``eu-west-1``."""

PlanId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
"""Stable plan slug, e.g. ``vm-standard-4``."""

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)*$", max_length=64)]
"""Catalogue SKU, e.g. ``VM-STD-4``."""

ResourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
"""DNS-label style resource name, e.g. ``web-1``."""

ErrorCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
"""Machine-readable failure code, e.g. ``CAPACITY_EXHAUSTED``."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
EmailAddress = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$", max_length=254)
]


class Money(WireModel):
    """An amount in integer minor units (cents, pence, yen) plus its ISO currency; never a float."""

    amount_minor: Annotated[int, Field(ge=0, le=10**13)]
    currency: Currency

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount_minor=self.amount_minor + other.amount_minor, currency=self.currency)


class BillingCycle(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"


class ResourceKind(StrEnum):
    VM = "vm"
    DATABASE = "database"
    BUCKET = "bucket"
    LOAD_BALANCER = "load_balancer"
    KUBERNETES_CLUSTER = "kubernetes_cluster"
    IP_ADDRESS = "ip_address"


class ResourceSpec(WireModel):
    """A resource an order asks for, before it exists."""

    kind: ResourceKind
    name: ResourceName
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1


class ResourceRef(WireModel):
    """A resource that exists (or existed) in a region."""

    resource_id: UUID
    kind: ResourceKind
    region: Region
    name: ResourceName
