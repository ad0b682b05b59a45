"""The repeat limiter: a repeated message from one source comes out once per interval, and the next
line let through says how many were held back; other sources and other messages are not held back."""

from __future__ import annotations

import io
import json
import logging

from core.log_limit import RepeatFilter, RepeatLimiter
from core.logs import JsonFormatter


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str, clock: _Clock) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.filters[:] = [RepeatFilter(30.0, clock)]
    return logger, out


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_same_message_is_held_back_within_the_interval_and_counted_after() -> None:
    clock = _Clock()
    logger, out = _logger("test.log_limit.same", clock)
    for after_ms in range(100):  # only the duration differs: the same message
        logger.error("Connect to 127.0.0.1:9092 failed (after %dms in state CONNECT)", after_ms,
                     extra={"client": "billing-producer#producer-1", "facility": "FAIL"})
        clock.now += 0.1
    assert len(_lines(out)) == 1
    clock.now += 30
    logger.error("Connect to 127.0.0.1:9092 failed (after 3ms in state CONNECT)",
                 extra={"client": "billing-producer#producer-1", "facility": "FAIL"})
    first, second = _lines(out)
    assert "repeated" not in first and first["client"] == "billing-producer#producer-1"
    assert first["facility"] == "FAIL"
    assert second["repeated"] == 99 and second["message"].endswith("(repeated 99 times)")
    clock.now += 31
    logger.error("Connect to 127.0.0.1:9092 failed (after 3ms in state CONNECT)",
                 extra={"client": "billing-producer#producer-1"})
    assert "repeated" not in _lines(out)[2]  # nothing was held back since the last one


def test_other_clients_and_other_messages_are_not_held_back() -> None:
    clock = _Clock()
    logger, out = _logger("test.log_limit.other", clock)
    for client in ("a-producer#producer-1", "b-consumer#consumer-2"):
        for message in ("1/1 brokers are down", "Connect to 127.0.0.1:9092 failed"):
            logger.warning(message, extra={"client": client})
            logger.warning(message, extra={"client": client})
    assert [(line["client"], line["message"]) for line in _lines(out)] == [
        (client, message) for client in ("a-producer#producer-1", "b-consumer#consumer-2")
        for message in ("1/1 brokers are down", "Connect to 127.0.0.1:9092 failed")]


def test_the_limiter_keeps_a_bounded_memory_of_distinct_messages() -> None:
    clock = _Clock()
    limiter = RepeatLimiter(30.0, clock)
    for n in range(10_000):
        assert limiter.admit(("x", n)) == 0
        clock.now += 0.001
    assert len(limiter._seen) <= 2048
    assert limiter.admit(("x", 9_999)) is None  # a recent one is still remembered
