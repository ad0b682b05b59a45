"""The DLQ processor: a consumer group over every DLQ topic applying `outcomes.decide` to each record
(re-publishing the retried ones after their backoff), recording each outcome in PostgreSQL and
raising at most one alert per original topic and hour above the threshold (an alert row, an error
log line and the `dlq_alerts` metric).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from messaging.client_logs import client_config
from messaging.commits import CoordinatorUnavailableError, commit
from messaging.dlq.letter import DLQ_RETRIES, DeadLetter, strip_dlq_headers
from messaging.dlq.outcomes import Outcome, decide
from messaging.dlq.store import DlqPosition, DlqStore
from messaging.groups import GROUP_PROTOCOL_CONFIG, join_config
from messaging.metrics import METRICS
from messaging.producer import EventProducer
from messaging.retry import PolicyLookup, policy_for

__all__ = ["DLQ_PROCESSOR_GROUP", "DlqProcessor"]

log = logging.getLogger(__name__)

#: The processor's consumer group (`cloud-factory dlq run --group-id` overrides it).
DLQ_PROCESSOR_GROUP = "dlq-processor"


class DlqProcessor:
    """A consumer group over the DLQ topics applying `decide`; commits each record after its outcome.

    `topics` may hold a pattern: `schemas.dlq_topics_pattern(env)` subscribes to every DLQ topic of `env`."""

    def __init__(self, bootstrap_servers: str, *, producer: EventProducer, store: DlqStore,
                 topics: list[str], group_id: str = DLQ_PROCESSOR_GROUP, max_dlq_retries: int = 3,
                 alert_threshold: int = 10, policy: PolicyLookup = policy_for,
                 sleep: Callable[[float], None] = time.sleep,
                 extra_config: dict[str, object] | None = None) -> None:
        self.producer = producer
        self.store = store
        self.max_dlq_retries = max_dlq_retries
        self.alert_threshold = alert_threshold
        self.policy = policy
        self._sleep = sleep
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 5000, "log_level": 3,
            **client_config(f"{group_id}-consumer"), **GROUP_PROTOCOL_CONFIG,
            **join_config(bootstrap_servers, group_id, extra_config or {}),
        })
        self._consumer.subscribe(topics)

    def run(self, stop: threading.Event, *, poll_timeout: float = 0.5) -> None:
        try:
            while not stop.is_set():
                self.poll_once(poll_timeout)
        finally:
            self._consumer.close()

    def close(self) -> None:
        self._consumer.close()

    def poll_once(self, timeout: float = 0.5) -> Outcome | None:
        msg = self._consumer.poll(timeout)
        if msg is None:
            return None
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("DLQ consumer error: %s", msg.error())
            return None
        outcome = self.handle(msg)
        try:
            commit(self._consumer, message=msg)  # refused by a rebalance: the new owner redoes the outcome
        except CoordinatorUnavailableError as exc:  # a broker went away: do this letter again (safe to redo)
            log.warning("%s; letter %s[%d]@%d will be handled again", exc, msg.topic(), msg.partition(),
                        msg.offset())
            self._consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
        return outcome

    def handle(self, msg: Message) -> Outcome:
        letter = DeadLetter.from_record(msg.key(), msg.value(), msg.headers())
        position = DlqPosition(msg.topic(), msg.partition(), msg.offset())
        decision = decide(letter, max_dlq_retries=self.max_dlq_retries, policy=self.policy)
        if decision.outcome is Outcome.RETRIED:
            due = letter.last_failure + dt.timedelta(seconds=decision.delay)
            wait = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if wait > 0:
                self._sleep(wait)
            headers = [*strip_dlq_headers(letter.headers),
                       (DLQ_RETRIES, str(letter.dlq_retries + 1).encode())]
            self.producer.publish_raw(letter.original_topic, key=letter.key, value=letter.value,
                                      headers=headers)
        record_id = self.store.record(position, letter, decision.outcome.value, decision.note)
        if decision.outcome is Outcome.MANUAL_REVIEW:
            self.store.open_incident(record_id, decision.note)
        log.log(logging.INFO if decision.outcome is Outcome.RETRIED else logging.WARNING,
                "DLQ %s (%s, event %s): %s — %s", position, letter.error_class.value, letter.event_id,
                decision.outcome.value, decision.note)
        METRICS.add(f"dlq_{decision.outcome.value}")
        self._alert_if_needed(letter.original_topic)
        return decision.outcome

    def _alert_if_needed(self, original_topic: str) -> None:
        count = self.store.recent_count(original_topic)
        if count > self.alert_threshold and self.store.raise_alert(original_topic, count):
            METRICS.add("dlq_alerts", topic=original_topic)
            log.error("ALERT: %d DLQ records for %s within the last hour (threshold %d)",
                      count, original_topic, self.alert_threshold)
