"""The event catalog: every event type, who publishes and consumes it, and its payload per version.

The catalog is built once at import from the declarations in `schemas.definitions` and checks its own
consistency (contiguous versions, complete upcaster chains, customer-facing ⇔ Notification consumes),
so a bad declaration fails at import time instead of in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from pydantic import create_model

from schemas._internal.envelope import EVENT_TYPE_PATTERN, Envelope
from schemas._internal.errors import UnknownEventTypeError, UnsupportedVersionError
from schemas._internal.services import EdgeProcess, RetryProfile, Service
from schemas._internal.upcasting import Upcaster, UpcasterRegistry
from schemas.payloads._base import Payload

__all__ = ["Catalog", "CatalogEntry", "EventSpec"]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One declaration in `schemas.definitions` (what a human writes)."""

    event_type: str
    publisher: Service
    consumers: tuple[Service, ...]
    payloads: tuple[type[Payload], ...]
    retry_profile: RetryProfile
    customer_facing: bool
    summary: str
    edge_consumers: tuple[EdgeProcess, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class CatalogEntry:
    """Everything the platform knows about one event type."""

    event_type: str
    publisher: Service
    consumers: tuple[Service, ...]
    customer_facing: bool
    retry_profile: RetryProfile
    summary: str
    payloads: Mapping[str, type[Payload]]
    envelopes: Mapping[str, type[Envelope]]
    upcast_chains: Mapping[str, tuple[Upcaster, ...]] = field(repr=False)
    edge_consumers: tuple[EdgeProcess, ...] = ()
    """Edge processes reading this type (not domain services: `consumers` is the seven's matrix)."""

    @property
    def domain(self) -> Service:
        """The namespace the type is named in (`billing.refund-requested` → billing, published by order)."""
        return Service(self.event_type.split(".", 1)[0])

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(self.payloads)

    @property
    def latest_version(self) -> str:
        return next(reversed(self.payloads))

    @property
    def latest_payload(self) -> type[Payload]:
        return self.payloads[self.latest_version]

    def payload_model(self, version: str, *, field: str | None = "version") -> type[Payload]:
        """The payload class of `version`; UnsupportedVersionError if this build does not know it."""
        try:
            return self.payloads[version]
        except KeyError:
            raise UnsupportedVersionError(
                f"{self.event_type} has no version {version!r} (known: {', '.join(self.payloads)})",
                field=field,
            ) from None

    def envelope_model(self, version: str | None = None) -> type[Envelope]:
        """The typed `Envelope` subclass for `version` (default: latest)."""
        version = version or self.latest_version
        self.payload_model(version)
        return self.envelopes[version]

    def upcast(self, version: str, data: Payload) -> Payload:
        """Evolve `data` (a payload of `version`) to the latest version."""
        for step in self.upcast_chains[version]:
            data = step(data)
        return data

    def is_consumed_by(self, service: Service | str) -> bool:
        return Service(service) in self.consumers


class Catalog(Mapping[str, CatalogEntry]):
    """Read-only mapping event type → `CatalogEntry`, in declaration order.

    `catalog.get(t)` returns None for unknown types (Mapping semantics); `catalog.require(t)` raises
    `UnknownEventTypeError` (a `ContractError`) instead.
    """

    def __init__(self, specs: Iterable[EventSpec], upcasters: UpcasterRegistry) -> None:
        entries: dict[str, CatalogEntry] = {}
        owners: dict[type[Payload], tuple[str, str]] = {}
        for spec in specs:
            entry = _build_entry(spec, upcasters)
            if entry.event_type in entries:
                raise ValueError(f"{entry.event_type} declared twice")
            for version, model in entry.payloads.items():
                if model in owners:
                    raise ValueError(
                        f"{model.__name__} used by {owners[model]} and {entry.event_type} {version}"
                    )
                owners[model] = (entry.event_type, version)
            entries[entry.event_type] = entry
        used = {(t, v) for t, e in entries.items() for v in e.versions[:-1]}
        if stray := upcasters.keys() - used:
            raise ValueError(f"upcasters registered for unknown steps: {sorted(stray)}")
        self._entries = MappingProxyType(entries)
        self._owners = MappingProxyType(owners)

    def __getitem__(self, event_type: str) -> CatalogEntry:
        return self._entries[event_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} event types)"

    def require(self, event_type: str, *, field: str | None = "eventType") -> CatalogEntry:
        """The entry for `event_type`, or `UnknownEventTypeError` naming `field`."""
        entry = self._entries.get(event_type)
        if entry is None:
            raise UnknownEventTypeError(f"unknown event type {_excerpt(event_type)}", field=field)
        return entry

    def entries(self) -> tuple[CatalogEntry, ...]:
        """All entries in declaration order."""
        return tuple(self._entries.values())

    def published_by(self, service: Service | str) -> tuple[CatalogEntry, ...]:
        """Entries whose publisher is `service` (what it may produce)."""
        service = Service(service)
        return tuple(e for e in self._entries.values() if e.publisher is service)

    def subscriptions(self, service: Service | str) -> tuple[CatalogEntry, ...]:
        """Entries `service` consumes (the topics its consumer group subscribes to)."""
        service = Service(service)
        return tuple(e for e in self._entries.values() if service in e.consumers)

    def edge_subscriptions(self, edge: EdgeProcess | str) -> tuple[CatalogEntry, ...]:
        """Entries the edge process `edge` reads (its projection's topics)."""
        edge = EdgeProcess(edge)
        return tuple(e for e in self._entries.values() if edge in e.edge_consumers)

    def customer_facing(self) -> tuple[CatalogEntry, ...]:
        return tuple(e for e in self._entries.values() if e.customer_facing)

    def owner_of(self, model: type[Payload]) -> tuple[CatalogEntry, str]:
        """(entry, version) that a payload class belongs to; KeyError for unregistered classes."""
        event_type, version = self._owners[model]
        return self._entries[event_type], version


def _excerpt(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…'"


def _build_entry(spec: EventSpec, upcasters: UpcasterRegistry) -> CatalogEntry:
    if not re.fullmatch(EVENT_TYPE_PATTERN, spec.event_type):
        raise ValueError(f"bad event type name {spec.event_type!r}")
    Service(spec.event_type.split(".", 1)[0])
    if not spec.payloads:
        raise ValueError(f"{spec.event_type}: no payload versions")
    if len(set(spec.consumers)) != len(spec.consumers):
        raise ValueError(f"{spec.event_type}: duplicate consumers")
    if len(set(spec.edge_consumers)) != len(spec.edge_consumers):
        raise ValueError(f"{spec.event_type}: duplicate edge consumers")
    if spec.customer_facing != (Service.NOTIFICATION in spec.consumers):
        raise ValueError(f"{spec.event_type}: customer-facing events, and only those, go to Notification")
    payloads: dict[str, type[Payload]] = {}
    envelopes: dict[str, type[Envelope]] = {}
    for number, model in enumerate(spec.payloads, start=1):
        if not (isinstance(model, type) and issubclass(model, Payload)):
            raise TypeError(f"{spec.event_type}: {model!r} is not a Payload")
        version = f"v{number}"
        payloads[version] = model
        envelopes[version] = _envelope_model(spec.event_type, version, model)
    versions = list(payloads)
    chains: dict[str, tuple[Upcaster, ...]] = {}
    for index, version in enumerate(versions):
        steps = []
        for source in versions[index:-1]:
            step = upcasters.step(spec.event_type, source)
            if step is None:
                raise ValueError(f"{spec.event_type}: no upcaster from {source}")
            steps.append(step)
        chains[version] = tuple(steps)
    return CatalogEntry(
        event_type=spec.event_type,
        publisher=spec.publisher,
        consumers=spec.consumers,
        customer_facing=spec.customer_facing,
        retry_profile=spec.retry_profile,
        summary=spec.summary,
        payloads=MappingProxyType(payloads),
        envelopes=MappingProxyType(envelopes),
        upcast_chains=MappingProxyType(chains),
        edge_consumers=spec.edge_consumers,
    )


def _envelope_model(event_type: str, version: str, payload: type[Payload]) -> type[Envelope]:
    model = create_model(
        f"{payload.__name__}Envelope",
        __base__=Envelope,
        __module__=payload.__module__,
        __doc__=f"`{event_type}` {version} envelope. {payload.__doc__ or ''}".strip(),
        event_type=(Literal[event_type], ...),
        version=(Literal[version], ...),
        data=(payload, ...),
    )
    return model
