"""In-process domain events: how one domain's effect reaches another without importing it.

The publishing domain defines its event types (a frozen dataclass in its own `events.py`); a domain
that must react subscribes a handler in its `listeners.py`. Dependencies then point from the
listener to the publisher, never back. `publish` awaits every handler in the order they
subscribed and lets an error through: the publisher decides whether a failed effect fails its own
step (an escalation the bot asked for must exist before the push is marked processed).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._handlers: defaultdict[type, list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        self._handlers[event_type].append(handler)

    def subscribed(self, event_type: type) -> bool:
        return bool(self._handlers.get(event_type))

    async def publish(self, event: object) -> None:
        handlers = self._handlers.get(type(event), ())
        if not handlers and getattr(event, "must_be_handled", False):
            # An effect the publisher relies on (an escalation, a rating) would be lost silently.
            name = type(event).__name__
            raise LookupError(f"no listener for {name}: was domains.subscribe_listeners() called?")
        for handler in handlers:
            await handler(event)
