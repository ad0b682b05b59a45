"""Builds a CLI-driven service's command object from `Settings` (its schema ensured, its emitter)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

from cloud_factory.db import engine_for, ensure_schema
from cloud_factory.settings import Settings
from messaging.wiring import ensure_catalog_topics, producer_from
from services.common.emitter import Emitter

__all__ = ["build_commands"]


def build_commands(
    settings: Settings, service: str, metadata: MetaData, factory: Any, event_types: list[str]
) -> Any:
    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    ensure_catalog_topics(settings, event_types)
    # Commands wait for the broker's acknowledgement inside their transaction: no spool here.
    return factory(engine, Emitter(producer_from(settings, fallback=False), service))
