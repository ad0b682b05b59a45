"""Which services keep a transactional outbox, and where its table is (each in the service's own
schema, `services.<service>.tables.outbox`). One list for the relays, the CLI and retention."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["OUTBOX_SERVICES", "service_tables"]

OUTBOX_SERVICES = ("identity", "product", "support", "notification")


def service_tables(service: str) -> ModuleType:
    """`services.<service>.tables` (its `metadata` and `outbox`), loaded on demand so that the CLI's
    `--help` stays fast; an unknown name is refused with the list of valid ones."""
    if service not in OUTBOX_SERVICES:
        raise ValueError(f"{service!r} has no outbox; services with one: {', '.join(OUTBOX_SERVICES)}")
    return importlib.import_module(f"services.{service}.tables")
