"""What happens to members that other parts may act on: joining the workspace or a group, a tag
added or removed, a code word sent. Journeys enter on them (core.journeys.triggers).

Announced in the transaction of the change itself, so a journey's entry commits with the tag
that caused it, or neither does. core/teams does not import what listens; the composition root
(core.kinds.install) registers the listeners, and announcing with none registered fails loudly:
a process that would silently start no journey is a wiring mistake.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

Kind = Literal["joined_workspace", "joined_group", "tag_added", "tag_removed", "code_word"]


@dataclass(frozen=True)
class Happening:
    kind: Kind
    workspace_id: uuid.UUID
    member_ids: Sequence[uuid.UUID]
    # The group, tag or code word it is about (None for joining the workspace).
    ref: uuid.UUID | None = None


Listener = Callable[[AsyncSession, Happening], Awaitable[None]]
_LISTENERS: list[Listener] = []


class NotWired(RuntimeError):
    pass


def on_happening(listener: Listener) -> None:
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


async def happened(session: AsyncSession, happening: Happening) -> None:
    """Tell the listeners. Nothing to tell when no member was concerned."""
    if not happening.member_ids:
        return
    if not _LISTENERS:
        raise NotWired("nothing listens to members' happenings: call core.kinds.install() first")
    for listener in _LISTENERS:
        await listener(session, happening)
