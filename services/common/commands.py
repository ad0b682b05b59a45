"""Builds a CLI-driven service's command object from `Settings` (its schema ensured, its outbox
emitter). Commands touch only PostgreSQL: Kafka is the outbox relay's business."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, Table

from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging.wiring import keyring_from
from services.common.outbox_emitter import OutboxEmitter

__all__ = ["build_commands"]


def build_commands(settings: Settings, service: str, metadata: MetaData, outbox: Table, factory: Any) -> Any:
    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    return factory(engine, OutboxEmitter(service, outbox, keyring_from(settings), env=settings.env))
