"""The runtime facts the generated AsyncAPI document states, read from the constants the running code
uses (consumer groups, DLQ headers, topic sizing); the contract layer cannot import them itself."""

from __future__ import annotations

from functools import cache

from core.settings import Settings
from edge.api.keys import API_KEY_GROUP
from messaging.dlq.letter import DLQ_HEADERS, DLQ_REFERENCE_HEADERS, DLQ_RETRIES
from messaging.dlq.processor import DLQ_PROCESSOR_GROUP
from schemas import EdgeProcess, Service
from schemas._internal.asyncapi import RuntimeFacts
from workers.kinds import WorkerKind
from workers.recipes import consumer_recipes

__all__ = ["runtime_facts"]


@cache
def runtime_facts() -> RuntimeFacts:
    """The facts for `schemas._internal.exports` (Order's consumer is its inbound bridge)."""
    groups: dict[Service | EdgeProcess, str] = {
        Service.ORDER if kind is WorkerKind.BRIDGE else Service(kind.value): recipe.group_id
        for kind, recipe in consumer_recipes().items()
    }
    groups[EdgeProcess.API] = API_KEY_GROUP
    defaults = Settings.model_construct()  # the defaults, whatever this process's environment says
    return RuntimeFacts(
        consumer_groups=groups,
        dlq_group=DLQ_PROCESSOR_GROUP,
        dlq_headers=DLQ_HEADERS,
        dlq_reference_headers=DLQ_REFERENCE_HEADERS,
        dlq_retries_header=DLQ_RETRIES,
        partitions=defaults.kafka_partitions,
        replicas=defaults.replication_factor,
    )
