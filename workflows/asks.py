"""The saga's asks: the requests it published and waits on, and which event types may answer each.

Plain, deterministic bookkeeping inside the workflow. An ask is opened (by its derived event id)
before it is published, so its answer always finds it open; it is closed once the saga stops waiting,
after which a late answer is a harmless duplicate rather than an attack. `refusal` is the check every
inbound event passes before the saga applies it; the bridge runs the same check first through the
`asks` query (`book`).
"""

from __future__ import annotations

from workflows.contracts import REPLIES, AskBook, InboundEvent

__all__ = ["OpenAsks"]

_Ask = tuple[str, tuple[str, ...]]  # (the ask's event type, the event types that answer it)


class OpenAsks:
    def __init__(self) -> None:
        self._open: dict[str, _Ask] = {}
        self._closed: dict[str, _Ask] = {}

    def open(self, ask_id: str, ask_type: str) -> None:
        """Wait for answers to the `ask_type` request whose event id is `ask_id`."""
        self._open[ask_id] = (ask_type, REPLIES[ask_type])

    def close(self, ask_type: str) -> None:
        """Stop waiting for answers to the `ask_type` requests: later ones are ignored."""
        for ask_id, ask in list(self._open.items()):
            if ask[0] == ask_type:
                self._closed[ask_id] = ask
                del self._open[ask_id]

    def refusal(self, event: InboundEvent) -> str | None:
        """Why `event` answers none of the open asks (None: it answers one)."""
        ask = self._open.get(event.causation_id or "")
        if ask is None and event.causation_id in self._closed:
            closed = self._closed[event.causation_id][0]
            return f"a late answer to {closed} {event.causation_id}, which the saga no longer waits on"
        if ask is None:
            return f"its causationId {event.causation_id} is not an open ask of this saga"
        if event.event_type not in ask[1]:
            return f"{event.event_type} does not answer {ask[0]}"
        return None

    def book(self, *, checking: bool) -> AskBook:
        """The `asks` query's answer."""
        return AskBook(
            open={ask_id: list(replies) for ask_id, (_, replies) in self._open.items()},
            closed={ask_id: list(replies) for ask_id, (_, replies) in self._closed.items()},
            checking=checking,
        )
