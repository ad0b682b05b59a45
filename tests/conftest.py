"""Shared fixtures: the real local stack, started (never mocked, never skipped) for the session."""

from __future__ import annotations

import os
import uuid

import pytest

from cloud_factory.settings import Settings, get_settings
from cloud_factory.stack import ComponentState, Stack


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Stack:
    """Kafka, Temporal and PostgreSQL, healthy. Started here if needed; a failure fails loudly.

    What this session started it also stops, unless CF_KEEP_STACK=1 (handy while iterating).
    """
    stack = Stack(settings)
    before = {status.name: status.state for status in stack.status()}
    stack.up()
    yield stack
    started_here = any(state is not ComponentState.HEALTHY for state in before.values())
    if started_here and os.environ.get("CF_KEEP_STACK") != "1":
        stack.down()


@pytest.fixture
def unique() -> str:
    """A short unique token for topic names, tenant ids and workflow ids, so tests never collide."""
    return uuid.uuid4().hex[:12]
