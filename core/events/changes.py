"""What must happen when an event is made or changed, beyond the event itself.

Today: its reminder and confirmation jobs are planned again (core.notify.planning), in the same
transaction as the change. core/events does not import what listens (notify sits above it); the
composition root (core.kinds.install) registers the listeners at start. A process that changes
events without them would write events that never remind anyone, so that fails loudly instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.events.models import Event

Listener = Callable[[AsyncSession, Event, datetime], Awaitable[None]]
_LISTENERS: list[Listener] = []


class NotWired(RuntimeError):
    pass


def on_event_changed(listener: Listener) -> None:
    """Call ``listener`` after every change of an event (idempotent per listener)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


async def event_changed(session: AsyncSession, event: Event, now: datetime) -> None:
    """Tell the listeners an event was made or changed. The caller commits."""
    if not _LISTENERS:
        raise NotWired(
            "nothing plans event jobs: call core.kinds.install() when the process starts"
        )
    for listener in _LISTENERS:
        await listener(session, event, now)
