"""The activities the saga calls, declared here by name and signature and implemented in `activities/`.

The workflow schedules them with `workflow.execute_activity_method` on these method references, so a
renamed activity or a changed argument type is a type error, not a string that silently matches
nothing. Workflows sit below activities in the layers, so the declaration lives on this side and the
implementations subclass it (`activities.publishing.PublishingActivities`,
`activities.incidents.IncidentActivities`); the registered names are the ones every history records.

`StepPublisher` is what the publish activity needs from outside: the outbound bridge
(`bridges.outbound.OutboundBridge`), handed to it by the worker that composes both — activities and
bridges are sibling layers and do not import each other.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import activity

from workflows.contracts import IncidentClosure, IncidentRequest, PublishedEvent, PublishRequest

__all__ = ["IncidentPort", "PublishingPort", "StepPublisher"]


class StepPublisher(Protocol):
    """Turns one saga step into a published event (and says where it landed)."""

    def publish(self, request: PublishRequest) -> PublishedEvent: ...


class PublishingPort:
    """Publishes one saga step's event (the outbound bridge)."""

    @activity.defn(name="publish_event")
    def publish_event(self, request: PublishRequest) -> PublishedEvent:
        raise NotImplementedError("implemented by activities.publishing.PublishingActivities")


class IncidentPort:
    """Hands a compensation that cannot finish to a person."""

    @activity.defn(name="open_incident")
    def open_incident(self, request: IncidentRequest) -> None:
        raise NotImplementedError("implemented by activities.incidents.IncidentActivities")

    @activity.defn(name="close_incident")
    def close_incident(self, closure: IncidentClosure) -> None:
        raise NotImplementedError("implemented by activities.incidents.IncidentActivities")
