"""The `publish_event` activity: the outbound bridge behind Temporal's retries.

A thin wrapper: the step → envelope → Kafka work is the `StepPublisher` it is given (in production
`bridges.outbound.OutboundBridge`, composed in `workers.saga`).
"""

from __future__ import annotations

from temporalio import activity

from workflows.contracts import PublishedEvent, PublishRequest
from workflows.ports import PublishingPort, StepPublisher

__all__ = ["PublishingActivities"]


class PublishingActivities(PublishingPort):
    """Registered on the saga worker; publishes through `publisher`."""

    def __init__(self, publisher: StepPublisher) -> None:
        self.publisher = publisher

    @activity.defn(name="publish_event")
    def publish_event(self, request: PublishRequest) -> PublishedEvent:
        return self.publisher.publish(request)
