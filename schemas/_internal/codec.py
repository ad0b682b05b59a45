"""Bytes ⇄ `Envelope`: compact deterministic JSON out, one validating parse plus upcasting in.

Decoding is on every consumer's hot path. The whole record is validated in a single
`validate_json` call against a union of typed envelopes tagged by `eventType` then `version` (built
once, lazily), so there is no intermediate dict and no second parse; records already at the latest
version are returned as they are.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from schemas._internal.catalog import Catalog, CatalogEntry
from schemas._internal.envelope import Envelope
from schemas._internal.errors import ContractError
from schemas._internal.problems import contract_error_from

__all__ = ["Codec"]


class Codec:
    """Encoder/decoder bound to one catalog (the public `schemas.encode`/`decode` use the real one)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._tags = {t: e.versions for t, e in catalog.items()}
        self._latest: dict[type[Envelope], CatalogEntry | None] = {}
        for entry in catalog.values():
            for version, model in entry.envelopes.items():
                self._latest[model] = None if version == entry.latest_version else entry

    @cache  # noqa: B019 - one adapter per codec instance for the life of the process is the point
    def _adapter(self) -> TypeAdapter[Envelope]:
        per_type: list[Any] = []
        for entry in self._catalog.values():
            models = tuple(entry.envelopes.values())
            if len(models) == 1:
                per_type.append(models[0])
            else:
                per_type.append(Annotated[Union[models], Field(discriminator="version")])  # noqa: UP007
        return TypeAdapter(Annotated[Union[tuple(per_type)], Field(discriminator="event_type")])  # noqa: UP007

    def encode(self, envelope: Envelope) -> bytes:
        """Compact, deterministic JSON (declaration field order, camelCase, no spaces) of `envelope`."""
        if not isinstance(envelope, Envelope):
            raise ContractError(f"expected an Envelope, got {type(envelope).__name__}")
        return envelope.__pydantic_serializer__.to_json(envelope, by_alias=True)

    def decode(self, value: bytes, *, upcast: bool = True) -> Envelope:
        """Validate `value` and (by default) upcast it to the latest version of its type.

        Raises only `ContractError` (or a subclass), whatever the input.
        """
        try:
            if isinstance(value, memoryview):
                value = value.tobytes()
            elif not isinstance(value, bytes | bytearray | str):
                raise ContractError(f"record value must be bytes, got {type(value).__name__}")
            envelope = self._adapter().validate_json(value, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise contract_error_from(exc, self._tags) from None
        except ContractError:
            raise
        except Exception as exc:  # noqa: BLE001 - the decoder's promise is "ContractError or a valid event"
            raise ContractError(f"unreadable record ({type(exc).__name__})") from None
        entry = self._latest[type(envelope)]
        if entry is None or not upcast:
            return envelope
        return self._upcast(entry, envelope)

    def upcast(self, envelope: Envelope) -> Envelope:
        """`envelope` evolved to the latest version of its type (itself if already latest)."""
        if type(envelope) in self._latest:
            entry = self._latest[type(envelope)]
            return envelope if entry is None else self._upcast(entry, envelope)
        entry = self._catalog.require(envelope.event_type)  # a bare Envelope built by hand
        return envelope if envelope.version == entry.latest_version else self._upcast(entry, envelope)

    @staticmethod
    def _upcast(entry: CatalogEntry, envelope: Envelope) -> Envelope:
        try:
            data = entry.upcast(envelope.version, envelope.data)
            latest = entry.latest_version
            return entry.envelopes[latest](
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                version=latest,
                tenant_id=envelope.tenant_id,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id,
                actor=envelope.actor,
                occurred_at=envelope.occurred_at,
                producer=envelope.producer,
                data=data,
            )
        except ValidationError as exc:
            error = contract_error_from(exc)
            raise ContractError(
                f"cannot upcast {entry.event_type} {envelope.version}: {error.reason}",
                field=f"data.{error.field}" if error.field and error.field != "data" else "data",
            ) from None
        except Exception as exc:  # noqa: BLE001 - an upcaster bug must still surface as a contract error
            raise ContractError(
                f"cannot upcast {entry.event_type} {envelope.version} ({type(exc).__name__}: {exc})",
                field="data",
            ) from None
