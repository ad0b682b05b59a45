"""The one way to reach Temporal: a client whose calls carry the OpenTelemetry context into workflows
and activities (so a trace continues from the caller — CLI, bridge, API — into the saga), the one
data converter every client, worker and replayer uses, and the SDK core runtime they run on.

The core (Rust) would print its own log lines to stderr — plain text with ANSI colours, one per
retried call while the server is away (`temporalio_client::retry`). `core_runtime` forwards them to
the Python logger `cloud_factory.temporal` instead: the process's JSON lines, with the core's target
as `facility`, repeats limited by `core.log_limit.RepeatFilter`. Metrics stay as the default runtime
has them (none)."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import temporalio.api.common.v1
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from core.log_limit import limited_logger
from core.settings import Settings

__all__ = ["DATA_CONVERTER", "TEMPORAL_LOGGER", "WireJSONPayloadConverter", "connect", "connect_client",
           "core_runtime"]

TEMPORAL_LOGGER = "cloud_factory.temporal"


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


class _WirePayloadConverter(CompositePayloadConverter):
    """The default converter chain with the JSON step replaced by `WireJSONPayloadConverter`.

    Every instance holds the same converter objects: the worker builds a payload converter for every
    workflow run and two more for every workflow task, and a JSON converter of its own would bring an
    empty cache of pydantic type adapters each time — each run building its schemas anew, 0.9 ms of
    CPU for `OrderRequest` alone. The shared one keeps them for the process (its cache is bounded and
    thread-safe; none of the converters keeps other state)."""

    def __init__(self) -> None:
        super().__init__(*_WIRE_CONVERTERS)


_WIRE_CONVERTERS = tuple(
    WireJSONPayloadConverter() if isinstance(converter, JSONPlainPayloadConverter) else converter
    for converter in DefaultPayloadConverter.default_encoding_payload_converters
)


#: Pass to every `Client`, `Worker` host (through its client), `Replayer` and test environment.
DATA_CONVERTER = DataConverter(payload_converter_class=_WirePayloadConverter)


class _CoreTarget(logging.Filter):
    """Names the core's target (`temporalio_client::retry`, …) as the line's `facility`."""

    def filter(self, record: logging.LogRecord) -> bool:
        core = getattr(record, "temporal_log", None)
        if core is not None:
            record.facility = core.target
            record.client = "temporal-core"
        return True


@functools.cache
def core_runtime(core_level: str = "WARN") -> Runtime:
    """The process's runtime whose core logs at `core_level` (and other crates at ERROR) go to the
    logger `cloud_factory.temporal` (one runtime per level: each has its own threads)."""
    logger = limited_logger(TEMPORAL_LOGGER)
    if not any(isinstance(f, _CoreTarget) for f in logger.filters):
        logger.filters.insert(0, _CoreTarget())
    forwarding = LogForwardingConfig(logger=logger, append_target_to_name=False,
                                     prepend_target_on_message=False)
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level=core_level, other_level="ERROR"), forwarding=forwarding)))


async def connect(target: str, namespace: str = "default") -> Client:
    """A traced client for `target` (host:port) and `namespace`, speaking through `DATA_CONVERTER`,
    on `core_runtime()` (its workers run on it as well)."""
    return await Client.connect(
        target, namespace=namespace, interceptors=[TracingInterceptor()], data_converter=DATA_CONVERTER,
        runtime=core_runtime(),
    )


async def connect_client(settings: Settings) -> Client:
    """A traced client for the Temporal server the settings name."""
    return await connect(settings.temporal_target, settings.temporal_namespace)
