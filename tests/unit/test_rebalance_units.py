"""Which commit errors are a rebalance's (an INFO line) and which stay failures; the worker knob for
the max poll interval."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from messaging.commits import refused_by_rebalance
from workers.options import WorkerOptions


@pytest.mark.parametrize("code", [KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
                                  KafkaError.REBALANCE_IN_PROGRESS, KafkaError.FENCED_INSTANCE_ID])
def test_group_errors_are_a_rebalance(code: int) -> None:
    assert refused_by_rebalance(KafkaException(KafkaError(code))) == KafkaError(code).name()


@pytest.mark.parametrize("exc", [KafkaException(KafkaError(KafkaError.NOT_COORDINATOR)),
                                 KafkaException(KafkaError(KafkaError._TRANSPORT)),
                                 KafkaException("no error object"), RuntimeError("database went away")])
def test_other_errors_stay_failures(exc: Exception) -> None:
    assert refused_by_rebalance(exc) is None


def test_max_poll_interval_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_KAFKA_MAX_POLL_INTERVAL_MS", "9000")
    monkeypatch.setenv("CF_KAFKA_SESSION_TIMEOUT_MS", "6000")
    assert WorkerOptions.from_env().kafka_config == {"session.timeout.ms": 6000, "max.poll.interval.ms": 9000}
    monkeypatch.setenv("CF_KAFKA_MAX_POLL_INTERVAL_MS", "soon")
    with pytest.raises(ValueError, match="CF_KAFKA_MAX_POLL_INTERVAL_MS must be a positive integer"):
        WorkerOptions.from_env()
