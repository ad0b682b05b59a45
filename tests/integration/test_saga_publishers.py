"""Identity, Product and Support publish from their CLI commands: rows in their own schemas, signed
events (through each service's outbox; `--wait` returns once they are on Kafka) forming one
causation chain per entity, and Notification telling the customer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import engine_for
from core.settings import Settings
from services.common.commands import flow_id
from services.identity.tables import api_keys, users
from services.notification.tables import notifications
from services.order.flow import read_flow
from services.product.tables import plans
from services.support.tables import tickets
from tests.support.saga_harness import SagaHarness

pytestmark = pytest.mark.stack

CLI = str(Path(sys.executable).parent / "cloud-factory")


def _cli(*args: str) -> str:
    """Run a command and wait until its event is on Kafka (relayed from the service's outbox)."""
    result = subprocess.run([CLI, *args, "--wait"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "queued" not in result.stderr, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _chain(settings: Settings, correlation: uuid.UUID, types: list[str], since: int) -> list[str]:
    records = read_flow(settings, str(correlation), types, since)
    assert all(r.signature_ok for r in records)
    for previous, record in zip(records, records[1:], strict=False):
        assert record.envelope.causation_id == previous.envelope.event_id, record.envelope.event_type
    assert records[0].envelope.causation_id is None
    return [r.envelope.event_type for r in records]


async def test_identity_commands_publish_one_user_flow(stack, settings: Settings, unique: str) -> None:
    since = int(time.time() * 1000) - 1000
    tenant = f"t{unique}-id"
    async with SagaHarness(settings, unique, saga=False, consumers=("notification",)):
        user = uuid.UUID(
            await asyncio.to_thread(
                _cli,
                "identity",
                "register",
                "--tenant",
                tenant,
                "--email",
                f"ada-{unique}@example.com",
                "--name",
                "Ada",
            )
        )
        await asyncio.to_thread(_cli, "identity", "verify-email", str(user))
        key_id, secret = (
            await asyncio.to_thread(
                _cli,
                "identity",
                "create-api-key",
                str(user),
                "--name",
                "ci",
                "--scope",
                "orders:read",
                "--scope",
                "orders:write",
            )
        ).split()
        await asyncio.to_thread(
            _cli, "identity", "revoke-api-key", key_id, "--by", str(user), "--reason", "leaked"
        )
        deadline = time.monotonic() + 30
        engine = engine_for(settings.dsn)
        query = select(notifications.c.event_type).where(
            notifications.c.correlation_id == flow_id("user", user), notifications.c.channel == "email"
        )
        while True:
            with engine.connect() as conn:
                told = conn.execute(query).scalars().all()
            if len(told) >= 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert sorted(told) == [
        "identity.api-key-created",
        "identity.api-key-revoked",
        "identity.user-registered",
    ]
    assert _chain(
        settings,
        flow_id("user", user),
        [
            "identity.user-registered",
            "identity.email-verified",
            "identity.api-key-created",
            "identity.api-key-revoked",
        ],
        since,
    ) == [
        "identity.user-registered",
        "identity.email-verified",
        "identity.api-key-created",
        "identity.api-key-revoked",
    ]
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.user_id == user)).mappings().one()
        key = (
            conn.execute(select(api_keys).where(api_keys.c.api_key_id == uuid.UUID(key_id))).mappings().one()
        )
    assert row["email_verified"] and key["revoked_at"] is not None
    assert secret not in str(dict(key)) and secret.startswith(key["prefix"])


def test_duplicate_registration_is_refused_with_a_clear_error(stack, settings: Settings, unique: str) -> None:
    args = [
        "identity",
        "register",
        "--tenant",
        f"t{unique}",
        "--email",
        f"bo-{unique}@example.com",
        "--name",
        "Bo",
    ]
    _cli(*args)
    again = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already registered" in again.stderr
    assert "queued" not in again.stderr  # the refused command queued nothing


def test_product_and_support_commands(stack, settings: Settings, unique: str) -> None:
    since = int(time.time() * 1000) - 1000
    product = uuid.UUID(
        _cli(
            "product",
            "create",
            "--sku",
            f"VM-{unique.upper()}",
            "--name",
            "VPS",
            "--description",
            "Virtual servers",
            "--region",
            "eu-west-1",
        )
    )
    plan = f"vm-{unique}"
    _cli("product", "create-plan", str(product), "--plan", plan, "--name", "VPS 2", "--price-minor", "2900")
    _cli("product", "change-price", plan, "--price-minor", "3100", "--effective", "2027-01-01")
    _cli("product", "retire-plan", plan)
    assert _chain(
        settings,
        flow_id("product", product),
        ["product.created", "product.plan-created", "product.price-changed", "product.plan-retired"],
        since,
    ) == ["product.created", "product.plan-created", "product.price-changed", "product.plan-retired"]

    customer = uuid.uuid4()
    ticket = uuid.UUID(
        _cli(
            "support",
            "open",
            "--tenant",
            f"t{unique}",
            "--customer",
            str(customer),
            "--subject",
            "VPS unreachable",
        )
    )
    _cli("support", "reply", str(ticket), "--message", "Looking into it")
    _cli("support", "escalate", str(ticket), "--reason", "network team")
    _cli("support", "resolve", str(ticket), "--summary", "Route fixed")
    _cli("support", "reopen", str(ticket), "--reason", "down again")
    _cli("support", "resolve", str(ticket), "--summary", "Really fixed")
    _cli("support", "close", str(ticket), "--score", "5")
    assert _chain(
        settings,
        flow_id("ticket", ticket),
        [
            "support.ticket-created",
            "support.ticket-replied",
            "support.ticket-escalated",
            "support.ticket-resolved",
            "support.ticket-reopened",
            "support.ticket-closed",
        ],
        since,
    ) == [
        "support.ticket-created",
        "support.ticket-replied",
        "support.ticket-escalated",
        "support.ticket-resolved",
        "support.ticket-reopened",
        "support.ticket-resolved",
        "support.ticket-closed",
    ]
    engine = engine_for(settings.dsn)
    with engine.connect() as conn:
        assert conn.execute(
            select(plans.c.price_minor, plans.c.retired).where(plans.c.plan_id == plan)
        ).one() == (3100, True)
        assert conn.execute(
            select(tickets.c.state, tickets.c.tier, tickets.c.reopen_count).where(
                tickets.c.ticket_id == ticket
            )
        ).one() == ("closed", 2, 1)
    refused = subprocess.run(
        [CLI, "support", "reply", str(ticket), "--message", "hi"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and "closed" in refused.stderr
