"""How consumers share a group (`messaging.groups`), on the real broker: every topic's partitions
are split among the members — a second member is not handed whole topics while a busy one stays on
the first — and a short session asked for by a consumer is the group's setting at the broker."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

import schemas
from core.settings import Settings
from messaging.groups import GroupConfigError, assignment, join_config
from messaging.wiring import consumer_from
from tests.support.messaging_support import ensure, isolated, running, wait_until

pytestmark = pytest.mark.stack

TYPES = ("order.created", "order.fulfilled", "order.cancelled", "billing.invoice-created")


def _members(s: Settings, group: str) -> list[dict[str, set[int]]]:
    return assignment(s.bootstrap_servers, group)


def test_a_second_member_gets_half_of_every_topic(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique, kafka_partitions=6)
    ensure(s, *TYPES)
    handlers = {event_type: (lambda envelope, context: None) for event_type in TYPES}
    group = f"split-{unique}"
    first = consumer_from(s, group_id=group, handlers=handlers, idempotency=False)
    topics = {schemas.topic_for(t, env=s.env) for t in TYPES}
    with running(first):
        wait_until(lambda: [sum(map(len, m.values())) for m in _members(s, group)] == [24], timeout=60,
                   what="the first member holding all 24 partitions")
        # The second joins later, as a replica started beside a running one does (a consumer joins
        # its group as soon as it is made).
        second = consumer_from(s, group_id=group, handlers=handlers, idempotency=False)
        with running(second):
            def split() -> bool:
                members = _members(s, group)
                if len(members) != 2:
                    return False
                mine, theirs = members
                return set(mine) == set(theirs) == topics and all(
                    len(mine[t]) == len(theirs[t]) == 3 and not mine[t] & theirs[t] for t in topics)

            wait_until(split, timeout=60, what="every topic's six partitions split three and three")


def test_a_short_session_is_set_on_the_group(stack, settings: Settings, unique: str) -> None:
    group = f"session-{unique}"
    asked = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 9000}
    left = join_config(settings.bootstrap_servers, group, asked)
    assert left == {"max.poll.interval.ms": 9000}  # the client keeps its own settings only
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    [future] = admin.describe_configs([ConfigResource(ResourceType.GROUP, group)]).values()
    configs = future.result(timeout=30)
    assert configs["consumer.session.timeout.ms"].value == "6000"
    assert configs["consumer.heartbeat.interval.ms"].value == "1000"


def test_a_session_below_the_brokers_minimum_is_one_line(stack, settings: Settings, unique: str) -> None:
    with pytest.raises(GroupConfigError) as raised:
        join_config(settings.bootstrap_servers, f"short-{unique}", {"session.timeout.ms": 1000})
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith(f"group short-{unique}: the broker refused "
                           f"{{'consumer.session.timeout.ms': '1000'}}: ")
    assert "3000" in line  # the broker's bound
