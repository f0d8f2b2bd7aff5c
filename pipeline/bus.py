"""The per-call event bus: stages publish typed events, consumers subscribe.

In-process by default. A consumer is a callable taking an event; consumers that raise are
logged and kept, so a broken UI can never stall the audio graph. A shared bus (Redis,
NATS) for multi-machine deployments implements the same two methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from switchboard.pipeline.events import Event

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of one call's events to its subscribers, in publication order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.history: list[Event] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop sending to ``subscriber`` (a viewer that went away); unknown ones are ignored."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        self.history.append(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # noqa: BLE001 - a consumer's bug must not reach the graph
                log.exception("event subscriber %r failed on %s", subscriber, event.kind)
