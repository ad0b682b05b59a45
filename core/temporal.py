"""The one way to reach Temporal: a client whose calls carry the OpenTelemetry context into workflows
and activities, so a trace continues from the caller (CLI, bridge, API) into the saga."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.settings import Settings

__all__ = ["connect", "connect_client"]


async def connect(target: str, namespace: str) -> Client:
    """A traced client for `target` (host:port) and `namespace`."""
    return await Client.connect(target, namespace=namespace, interceptors=[TracingInterceptor()])


async def connect_client(settings: Settings) -> Client:
    """A traced client for the Temporal server the settings name."""
    return await connect(settings.temporal_target, settings.temporal_namespace)
