"""The one way to reach Temporal: a client whose calls carry the OpenTelemetry context into workflows
and activities (so a trace continues from the caller — CLI, bridge, API — into the saga), and the one
data converter every client, worker and replayer uses."""

from __future__ import annotations

import json
from typing import Any

import temporalio.api.common.v1
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import DataConverter

from core.settings import Settings

__all__ = ["DATA_CONVERTER", "WireJSONPayloadConverter", "connect", "connect_client"]


class WireJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    """temporalio's pydantic JSON converter, writing the bytes the default converter wrote.

    Decoding is pydantic's (`TypeAdapter.validate_json` against the parameter's type hint), so
    payload models, enums and dataclasses arrive typed. Encoding goes through pydantic to plain JSON
    values and then through `json.dumps` with sorted keys, compact separators and ASCII escapes —
    exactly the default converter's format. Every payload recorded in a running saga's history (its
    input, activity inputs and results, signals, memo) was written in that format, so the bytes a
    replaying or retrying saga produces stay what they were, whichever build wrote them.
    """

    def to_payload(self, value: Any) -> temporalio.api.common.v1.Payload | None:
        plain = self._schema_serializer.to_python(value, mode="json")
        return temporalio.api.common.v1.Payload(
            metadata={"encoding": self.encoding.encode()},
            data=json.dumps(plain, separators=(",", ":"), sort_keys=True).encode(),
        )


class _WirePayloadConverter(PydanticPayloadConverter):
    """The default converter chain with the JSON step replaced by `WireJSONPayloadConverter`."""

    def __init__(self) -> None:
        super().__init__()
        self.converters = {
            encoding: WireJSONPayloadConverter() if isinstance(converter, PydanticJSONPlainPayloadConverter)
            else converter
            for encoding, converter in self.converters.items()
        }


#: Pass to every `Client`, `Worker` host (through its client), `Replayer` and test environment.
DATA_CONVERTER = DataConverter(payload_converter_class=_WirePayloadConverter)


async def connect(target: str, namespace: str = "default") -> Client:
    """A traced client for `target` (host:port) and `namespace`, speaking through `DATA_CONVERTER`."""
    return await Client.connect(
        target, namespace=namespace, interceptors=[TracingInterceptor()], data_converter=DATA_CONVERTER
    )


async def connect_client(settings: Settings) -> Client:
    """A traced client for the Temporal server the settings name."""
    return await connect(settings.temporal_target, settings.temporal_namespace)
