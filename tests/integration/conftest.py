"""Fixtures of the integration tests (the session's stack is in tests/conftest.py)."""

from tests.support.private_broker import private_broker  # noqa: F401 - a fixture, found by name
