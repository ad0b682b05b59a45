"""The `publish_event` activity: the outbound bridge (`bridges.outbound`) behind Temporal's retries."""

from __future__ import annotations

from temporalio import activity

from bridges.outbound import OutboundBridge
from messaging.producer import EventProducer
from workflows.contracts import PublishedEvent, PublishRequest
from workflows.ports import PublishingPort

__all__ = ["PublishingActivities"]


class PublishingActivities(PublishingPort):
    """Holds the process's outbound bridge; registered on the saga worker."""

    def __init__(self, producer: EventProducer) -> None:
        self.bridge = OutboundBridge(producer)

    @activity.defn(name="publish_event")
    def publish_event(self, request: PublishRequest) -> PublishedEvent:
        return self.bridge.publish(request)
