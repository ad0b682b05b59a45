"""Units of "nothing stalls a partition": the DLQ reference format, positions, and worker health."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from cloud_factory.stack.workers import worker_health
from messaging.consumer import ConsumerHealth, StuckPartition
from messaging.dlq.letter import MAX_DLQ_RECORD_BYTES, REFERENCE_HEAD_BYTES, DeadLetter
from messaging.dlq.outcomes import Outcome, decide
from messaging.dlq.store import DlqPosition
from messaging.errors import ErrorClass
from workers.heartbeat import Heartbeat, read_heartbeats


def _letter(value: bytes, error_class: ErrorClass = ErrorClass.PERMISSION) -> DeadLetter:
    return DeadLetter("cloud-factory.dev.order.created.v1", 1, 9, b"key", value,
                      [("x-cf-signature", b"v1=abc"), ("x-cf-event-type", b"order.created")],
                      error_class, "bad signature", attempts=1, group="g")


def test_a_reference_carries_the_head_size_and_digest_and_reads_back() -> None:
    value = os.urandom(1_040_000)
    letter = _letter(value)
    assert letter.record_size() > MAX_DLQ_RECORD_BYTES and not letter.is_reference
    reference = letter.as_reference()
    assert reference.value == value[:REFERENCE_HEAD_BYTES] and reference.record_size() < 10_000
    headers = dict(reference.record_headers())
    assert headers["x-cf-dlq-value-size"] == b"1040000"
    assert headers["x-cf-dlq-value-sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["x-cf-dlq-value-stored"] == b"postgresql"
    assert headers["x-cf-signature"] == b"v1=abc"  # the original headers travel unchanged
    back = DeadLetter.from_record(reference.key, reference.value, reference.record_headers())
    assert back.is_reference and back == reference
    assert reference.as_reference() is reference
    plain = DeadLetter.from_record(letter.key, letter.value, letter.record_headers())
    assert not plain.is_reference and "x-cf-dlq-value-size" not in dict(letter.record_headers())


@pytest.mark.parametrize("error_class", [ErrorClass.TRANSIENT, ErrorClass.NOT_FOUND])
def test_a_reference_is_left_to_a_person_not_re_fed_automatically(error_class: ErrorClass) -> None:
    decision = decide(_letter(b"x" * 5000, error_class).as_reference())
    assert decision.outcome is Outcome.MANUAL_REVIEW and "5000-byte" in decision.note
    assert decide(_letter(b"x" * 5000, ErrorClass.VALIDATION).as_reference()).outcome is Outcome.DISCARDED


@pytest.mark.parametrize("text", ["garbage", "a:b:c", "t.dlq:0:-1", ":0:1", "t:0:"])
def test_a_bad_position_is_one_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="topic:partition:offset"):
        DlqPosition.parse(text)


def test_a_position_with_colons_in_the_topic_parses() -> None:
    assert DlqPosition.parse("a:b.dlq:2:40") == DlqPosition("a:b.dlq", 2, 40)


def test_the_heartbeat_carries_parked_records_and_stuck_partitions(tmp_path: Path) -> None:
    since = time.time() - 75
    stuck = StuckPartition("cloud-factory.dev.order.created.v1", 0, 5, since)
    Heartbeat(tmp_path, ["billing"]).beat(True, [ConsumerHealth("billing", parked=2),
                                                ConsumerHealth("billing", stuck=(stuck,))])
    [beat] = read_heartbeats(tmp_path)
    assert beat.parked == 2 and beat.stuck == (stuck,)
    [row] = worker_health(tmp_path)
    assert row.state == "degraded"
    assert "2 parked" in row.detail and "stuck: cloud-factory.dev.order.created.v1[0]@5 for 75s" in row.detail


def test_a_healthy_beat_and_an_older_releases_file(tmp_path: Path) -> None:
    Heartbeat(tmp_path, ["bridge"]).beat(True, [ConsumerHealth("order-bridge")])
    [row] = worker_health(tmp_path)
    assert (row.state, row.detail) == ("healthy", "")
    older = tmp_path / "workers" / f"{os.getpid()}.json"
    older.write_text(json.dumps({"pid": os.getpid(), "kinds": ["bridge"], "beatAt": time.time(),
                                 "healthy": True}))
    [beat] = read_heartbeats(tmp_path)
    assert (beat.parked, beat.stuck) == (0, ())
    assert not ConsumerHealth("g").degraded and ConsumerHealth("g", parked=1).degraded


def test_a_record_whose_headers_alone_are_too_big_is_not_sent_even_as_a_reference() -> None:
    """Its reference would be refused too: the route says so at once (the consumer then parks it after
    the window) instead of publishing what the broker cannot take."""
    import pytest

    from messaging.dlq.letter import DeadLetter
    from messaging.dlq.route import DeadLetterRoute
    from messaging.errors import ErrorClass, PublishError

    class _NoBroker:
        def publish_raw(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("nothing may be published")

    letter = DeadLetter(original_topic="cloud-factory.dev.order.created.v1", original_partition=0,
                        original_offset=1, key=b"k", value=b"v" * 10, headers=[("x-big", b"h" * 2000)],
                        error_class=ErrorClass.VALIDATION, reason="test")
    route = DeadLetterRoute(_NoBroker(), engine=object(), max_record_bytes=1000, head_bytes=4)  # type: ignore[arg-type]
    with pytest.raises(PublishError, match="its headers are too big") as info:
        route.dead_letter(letter)
    assert info.value.retriable is False
