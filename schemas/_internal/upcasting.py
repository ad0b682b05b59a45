"""The upcaster registry: per event type, one function per step vN → vN+1, chained on read.

Upcasters work on validated payload models, so an old record is first checked against the schema its
producer used, then evolved; handlers only ever see the newest version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from schemas.payloads._base import Payload

__all__ = ["Upcaster", "UpcasterRegistry"]

Upcaster = Callable[[Any], Payload]
F = TypeVar("F", bound=Upcaster)


class UpcasterRegistry:
    """Holds `(event_type, from_version) -> upcaster`; the catalog checks the chains are complete."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str], Upcaster] = {}

    def register(self, event_type: str, from_version: str) -> Callable[[F], F]:
        """Decorator registering the step that turns `from_version` into the next version."""

        def decorate(fn: F) -> F:
            key = (event_type, from_version)
            if key in self._steps:
                raise ValueError(f"duplicate upcaster for {event_type} {from_version}")
            self._steps[key] = fn
            return fn

        return decorate

    def step(self, event_type: str, from_version: str) -> Upcaster | None:
        return self._steps.get((event_type, from_version))

    def keys(self) -> frozenset[tuple[str, str]]:
        return frozenset(self._steps)
