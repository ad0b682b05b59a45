"""Fixtures of the integration tests (the session's stack is in tests/conftest.py)."""

from tests.support.browser import chromium, webui  # noqa: F401 - fixtures of the Web UI tests
from tests.support.private_broker import private_broker  # noqa: F401 - a fixture, found by name
from tests.support.private_postgres import private_postgres  # noqa: F401 - a fixture, found by name
from tests.support.private_temporal import private_temporal  # noqa: F401 - a fixture, found by name
