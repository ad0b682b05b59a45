"""Shared fixtures: a real local stack of the test run's own, started (never mocked, never skipped).

The run never touches the developer's stack: before anything reads the settings, the environment is
pointed at a private state directory (`.cloud-factory-test/`: its own Kafka, Temporal and PostgreSQL
data, spool, heartbeats and signing keys), private ports and the env segment `test`, and variables
that point elsewhere (an external cluster, database or key set) are dropped. Subprocesses (the CLI,
worker processes) inherit it. The developer's stack is snapshot before and after the session
(tests/support/developer_state.py); any difference fails the run.
"""

from __future__ import annotations

import os
import uuid

from core.settings import Settings, get_settings, project_root

_DEVELOPER = Settings()  # read before the overrides: the stack the run must leave alone


def _test_slot() -> int:
    """`CF_TEST_SLOT` (1–5, default 1): which set of test ports this checkout's runs use, so two
    checkouts can run their suites side by side (a port held by another run fails loudly)."""
    raw = os.environ.get("CF_TEST_SLOT", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 5:
        raise SystemExit(f"CF_TEST_SLOT={raw!r}: expected a whole number from 1 to 5")
    return int(raw)


_SLOT = _test_slot()
#: The test stack: the default ports shifted by 10000 per slot (PostgreSQL by one), beside the dev stack.
TEST_ENVIRONMENT = {
    "CF_STATE_DIR": str(project_root() / ".cloud-factory-test"),
    "CF_ENV": "test",
    "CF_KAFKA_PORT": str(9092 + 10000 * _SLOT),
    "CF_KAFKA_CONTROLLER_PORT": str(9093 + 10000 * _SLOT),
    "CF_TEMPORAL_PORT": str(7233 + 10000 * _SLOT),
    "CF_TEMPORAL_UI_PORT": str(8233 + 10000 * _SLOT),
    "CF_PG_PORT": str(55432 + _SLOT),
}
_POINTING_ELSEWHERE = ("CF_KAFKA_BOOTSTRAP", "CF_TEMPORAL_ADDRESS", "CF_DATABASE_URL", "CF_SIGNING_KEYS",
                       "CF_SIGNING_KEYS_FILE", "CF_FALLBACK_DIR", "CF_HOST")
for _name in _POINTING_ELSEWHERE:
    os.environ.pop(_name, None)
os.environ.update(TEST_ENVIRONMENT)
get_settings.cache_clear()

import pytest  # noqa: E402 - after the environment: nothing may read the developer's settings

from cloud_factory.stack import ComponentState, Stack  # noqa: E402
from tests.support.developer_state import snapshot  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def developer_stack_left_alone():
    """The developer's topics, tables, spool, keys and processes are exactly as they were."""
    before = snapshot(_DEVELOPER)
    yield
    changed = before.differences(snapshot(_DEVELOPER))
    assert not changed, f"the test run changed the developer's stack at {_DEVELOPER.state_dir}: {changed}"


@pytest.fixture(scope="session")
def settings() -> Settings:
    ours = get_settings()
    assert ours.state_dir != _DEVELOPER.state_dir and ours.kafka_port != _DEVELOPER.kafka_port
    return ours


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Stack:
    """Kafka, Temporal and PostgreSQL of the run, healthy. Started here if needed; a failure fails loudly.

    What this session started it also stops, unless CF_KEEP_STACK=1 (handy while iterating: the next
    run finds the test stack up).
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
