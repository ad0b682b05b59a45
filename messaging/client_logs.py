"""Every Kafka client the platform creates logs through Python logging, never raw to stderr.

Left alone, librdkafka prints its own lines (`%3|…|FAIL|rdkafka#producer-1| …`) straight to stderr
from its threads, once per failed reconnect of every client, and reports errors such as "all brokers
down" the same way. `client_config(client_id)` is merged into each client's configuration: a
`client.id` naming the client, librdkafka's log lines and its error callback routed to the logger
`cloud_factory.kafka` — so they are the process's JSON lines with `client` (the `client.id`) and
`facility` (librdkafka's, or the error's name) — and a `core.log_limit.RepeatFilter` on that logger,
so a repeated line comes out at most once per interval per client name (replicas of one consumer
share theirs; an error reported both as a log line and through the error callback counts once).

confluent-kafka hands the log lines over while the client is polled (poll, flush, consume); until
then librdkafka queues them, and the limiter keeps what comes out small however many queued up.
"""

from __future__ import annotations

import logging
import re

from confluent_kafka import KafkaError

from core.log_limit import limited_logger

__all__ = ["KAFKA_LOGGER", "client_config"]

KAFKA_LOGGER = "cloud_factory.kafka"
_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")  # librdkafka's thread name: noise in a JSON line


class _ClientLog:
    """The `logger` object confluent-kafka calls as `log(level, "%s [%s] %s", facility, name, text)`,
    and the client's `error_cb`."""

    __slots__ = ("client_id", "_logger")

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self._logger = limited_logger(KAFKA_LOGGER)

    def log(self, level: int, msg: str, *args: object) -> None:
        if len(args) == 3:
            facility, _instance, text = args
        else:
            facility, text = None, msg % args if args else msg
        if facility == "FAIL":
            # A connection to one broker failed (librdkafka says LOG_ERR): the client reconnects and
            # the other brokers serve meanwhile; what cannot be delivered is reported on its own.
            level = min(level, logging.WARNING)
        self._logger.log(level, "%s", _THREAD.sub("", str(text)),
                         extra={"client": self.client_id, "facility": facility})

    def error(self, error: KafkaError) -> None:
        level = logging.ERROR if error.fatal() else logging.WARNING
        self._logger.log(level, "%s", error.str(), extra={"client": self.client_id, "facility": error.name()})


def client_config(client_id: str) -> dict[str, object]:
    """The part of a client's configuration that names it and routes its logs and errors (above)."""
    sink = _ClientLog(client_id)
    return {"client.id": client_id, "logger": sink, "error_cb": sink.error}
