"""Billing's own tables, in PostgreSQL schema `billing`: payments, refunds, invoices, the ledger.

`psp_operations` and `gateway_faults` belong to the simulated payment gateway Billing drives.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Identity,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

__all__ = ["gateway_faults", "invoices", "ledger", "metadata", "payments", "psp_operations", "refunds"]

metadata = MetaData(schema="billing")

payments = Table(
    "payments",
    metadata,
    Column("payment_id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("correlation_id", UUID(as_uuid=True), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(16), nullable=False),
    # capturing (claimed: the order's one capture is under way) → captured | failed
    Column("status", String(16), nullable=False),
    Column("psp_reference", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", UUID(as_uuid=True), primary_key=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    # The payment's tenant; NULL only on rows written before this column existed (their payment's
    # row, which always had one, says whose they are).
    Column("tenant_id", String(64)),
    Column("payment_id", UUID(as_uuid=True), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # requested | completed | failed
    Column("error_code", String(64)),
    Column("reason", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("order_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # capture | invoice | refund
    Column("ref_id", UUID(as_uuid=True), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # signed: refunds are negative
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "ref_id", name="ledger_kind_ref_key"),
)

psp_operations = Table(
    "psp_operations",
    metadata,
    Column("operation_id", UUID(as_uuid=True), primary_key=True),  # the gateway's idempotency key
    Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # capture | refund
    Column("amount_minor", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

gateway_faults = Table(
    "gateway_faults",
    metadata,
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("operation", String(16), nullable=False),  # capture | refund
    Column("mode", String(16), nullable=False),  # permanent | transient
    Column("remaining", BigInteger, nullable=False, server_default="1"),
    PrimaryKeyConstraint("order_id", "operation", "mode", name="gateway_faults_pkey"),
)
