"""How the platform's consumers join their groups: Kafka's consumer group protocol (KIP-848) with
the broker's `range` assignor.

Why: a kind's consumer subscribes to many topics (Notification to every customer-facing one). The
classic protocol's cooperative-sticky assignor balances how *many* partitions each member holds,
not which: a second member was handed whole topics, so a busy topic stayed on one process however
many processes ran the kind (`worker KIND --processes N` added nothing). The range assignor splits
every topic's partitions among the members subscribed to it, and the consumer protocol moves
partitions one by one (members keep consuming the others), as cooperative rebalancing did.

Under this protocol the session timeout and heartbeat interval are the group's, kept by the broker:
a consumer given `session.timeout.ms` or `heartbeat.interval.ms` (`CF_KAFKA_SESSION_TIMEOUT_MS`,
the tests' short sessions) sets them as its group's `consumer.session.timeout.ms` and
`consumer.heartbeat.interval.ms` before joining, within the broker's bounds
(`group.consumer.min.session.timeout.ms`, …; `cloud-factory stack up` and the compose files
allow 3 s and 0.5 s). `max.poll.interval.ms` stays the client's.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

__all__ = ["GROUP_PROTOCOL_CONFIG", "GroupConfigError", "assignment", "join_config"]

GROUP_PROTOCOL_CONFIG: Mapping[str, str] = {"group.protocol": "consumer", "group.remote.assignor": "range"}

#: Client settings of the classic protocol that are group configs under the consumer protocol.
_GROUP_SIDE = {"session.timeout.ms": "consumer.session.timeout.ms",
               "heartbeat.interval.ms": "consumer.heartbeat.interval.ms"}


class GroupConfigError(ValueError):
    """The broker refused a group's session or heartbeat setting (one line naming both)."""


def join_config(bootstrap_servers: str, group_id: str, config: Mapping[str, object]) -> dict[str, object]:
    """`config` for a consumer of `group_id` under the consumer protocol: its session and heartbeat
    settings are set on the group at the broker (see above) and left out of the client's."""
    group = {_GROUP_SIDE[key]: str(value) for key, value in config.items() if key in _GROUP_SIDE}
    if group:
        _set_group_configs(bootstrap_servers, group_id, group)
    return {key: value for key, value in config.items() if key not in _GROUP_SIDE}


def _set_group_configs(bootstrap_servers: str, group_id: str, configs: Mapping[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
    entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
               for name, value in configs.items()]
    resource = ConfigResource(ResourceType.GROUP, group_id, incremental_configs=entries)
    try:
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=30)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        detail = error.str() if hasattr(error, "str") else str(error)
        raise GroupConfigError(f"group {group_id}: the broker refused {dict(configs)}: {detail}") from None


def assignment(bootstrap_servers: str, group_id: str, timeout: float = 10.0) -> list[dict[str, set[int]]]:
    """Each member of `group_id` as the broker sees it: topic → the partitions assigned to it; empty
    while the group is being formed or its coordinator found. (Asked of the broker, not of the
    consumers: their handles belong to the threads polling them.)"""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
    try:
        description = admin.describe_consumer_groups([group_id])[group_id].result(timeout=timeout)
    except (KafkaException, TimeoutError):
        return []
    members = []
    for member in description.members:
        topics: dict[str, set[int]] = {}
        for tp in member.assignment.topic_partitions:
            topics.setdefault(tp.topic, set()).add(tp.partition)
        members.append(topics)
    return members
