"""Provisioning's own tables, in PostgreSQL schema `provisioning`.

`orders` and `resources` are the service's state; `cloud` and `faults` belong to the simulated
provider it drives (the stand-in for a real cloud API and its test controls).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

__all__ = ["cloud", "faults", "metadata", "orders", "resources"]

metadata = MetaData(schema="provisioning")

orders = Table(
    "orders",
    metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("correlation_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("region", String(32)),  # None for a tombstone: cancelled before provisioning started
    # provisioning → completed | failed; any → cancelled (nothing existed) | deprovisioned
    Column("state", String(16), nullable=False),
    Column(
        "updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    ),
)

resources = Table(
    "resources",
    metadata,
    Column("resource_id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    # The order's tenant; NULL only on rows written before this column existed (their order's row,
    # which always had one, says whose they are).
    Column("tenant_id", String(64)),
    Column("seq", Integer, nullable=False),
    Column("name", String(63), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("region", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # creating → created → deleted | creating → failed
    Column("endpoint", String(2048)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Why the provider refused it for good (state failed): a replayed request re-reports this failure
    # instead of asking the provider again.
    Column("error_code", String(64)),
    Column("error_reason", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # One resource per order and name, however often the request is delivered.
    UniqueConstraint("order_id", "name", name="resources_order_name_key"),
)

cloud = Table(
    "cloud",
    metadata,
    Column("resource_id", UUID(as_uuid=True), primary_key=True),  # the provider's idempotency key
    Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("name", String(63), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
)

faults = Table(
    "faults",
    metadata,
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("step", String(63), nullable=False),  # resource name, e.g. vps
    Column("mode", String(16), nullable=False),  # permanent | transient | delete | slow | hold
    Column("remaining", Integer, nullable=False, server_default="1"),
    Column("delay_ms", Integer, nullable=False, server_default="0"),
    # hold: when a create began waiting for the release (a test's proof that the step is under way).
    Column("held_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("order_id", "step", "mode", name="faults_pkey"),
)
