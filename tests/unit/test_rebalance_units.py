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


class _Coordinator:
    """A consumer stand-in whose commits fail with `errors` (in turn) and then succeed."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def commit(self, **_: object) -> None:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))


def test_a_moving_coordinator_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from messaging import commits

    waits: list[float] = []
    monkeypatch.setattr(commits.time, "sleep", waits.append)
    consumer = _Coordinator(KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    assert commits.commit(consumer, offsets=[]) is True  # type: ignore[arg-type]
    assert consumer.calls == 3 and waits == [0.25, 0.5]


def test_a_coordinator_that_stays_away_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from messaging import commits

    monkeypatch.setattr(commits.time, "sleep", lambda _: None)
    consumer = _Coordinator(*[KafkaError.COORDINATOR_NOT_AVAILABLE] * commits.COMMIT_ATTEMPTS)
    with pytest.raises(commits.CoordinatorUnavailableError,
                       match="did not take the commit in 5 tries") as caught:
        commits.commit(consumer, offsets=[])  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and consumer.calls == commits.COMMIT_ATTEMPTS


def test_other_commit_errors_raise_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from messaging import commits

    consumer = _Coordinator(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        commits.commit(consumer, offsets=[])  # type: ignore[arg-type]
    assert consumer.calls == 1
