"""Structured JSON logs: one object per line, carrying the current trace and span ids."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from cloud_factory.tracing import current_trace_ids

__all__ = ["JsonFormatter", "configure_logging"]

_CONTEXT_FIELDS = ("correlation_id", "event_id", "tenant_id", "event_type")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = current_trace_ids()
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "traceId": trace_id,
            "spanId": span_id,
        }
        for name in _CONTEXT_FIELDS:
            if hasattr(record, name):
                line[name] = str(getattr(record, name))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str | None = None) -> None:
    """Root logger → JSON on stderr; `CF_LOG_LEVEL` sets the level (default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("CF_LOG_LEVEL", "INFO")).upper())
    JsonFormatter.converter = time.gmtime
