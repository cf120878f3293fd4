"""The subject port: what a job is about, as the engine sees it.

The engine knows nothing of events, broadcasts or journeys. Each kind of thing that sends
implements ``Subject`` and registers a loader under the job kinds it makes (``register``); dispatch
asks ``subject_of(session, job)`` and then the subject itself whom to send to, whether it still
stands, until when a message is of use, and what each member reads. Registering happens in the
composition root (``core.kinds.install``), so this package never imports the kinds it serves.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.channels import Channel, OutboundMessage
from core.delivery.models import Job
from core.teams.models import Member

if TYPE_CHECKING:
    from core.delivery.ratelimit import RateLimiter


@dataclass(frozen=True)
class Outlets:
    """What a subject may use once its job's messages are out (say, posting in group chats)."""

    channels: Sequence[Channel]
    secret: bytes
    now: datetime
    limiter: RateLimiter | None


class Subject(Protocol):
    """One job's subject, loaded for that job."""

    @property
    def workspace_id(self) -> uuid.UUID: ...

    @property
    def gone(self) -> str | None:
        """Why nothing more may go out about it (cancelled, deleted), or None."""
        ...

    def recipients(self) -> Select[Member]:
        """Whom the job reaches now: a query over members (the engine pages through it)."""
        ...

    def useful_until(self) -> datetime:
        """After this a message is pointless: it is failed rather than sent late."""
        ...

    def local_due(self, member: Member) -> datetime | None:
        """When this member should get it, if it is held for their own wall-clock time."""
        ...

    async def board(self, session: AsyncSession) -> object | None:
        """Read once per job: what every member's message may quote (who is coming, say)."""
        ...

    def message(self, member: Member, board: object | None) -> OutboundMessage:
        """What this member reads. May raise if the wording cannot be rendered."""
        ...

    async def finished(self, session: AsyncSession, outlets: Outlets) -> int:
        """Called once, when every member's message is out; returns how many extra posts it
        made. The caller commits."""
        ...


Loader = Callable[[AsyncSession, Job], Awaitable[Subject]]
_LOADERS: dict[str, Loader] = {}


class UnknownKind(LookupError):
    pass


def register(kind: str, loader: Loader) -> None:
    """Make ``loader`` the subject of every job of ``kind``. Registering a kind again with
    another loader is a wiring mistake and raises."""
    known = _LOADERS.get(kind)
    if known is not None and known is not loader:
        raise ValueError(f"job kind {kind!r} already has a subject")
    _LOADERS[kind] = loader


async def subject_of(session: AsyncSession, job: Job) -> Subject:
    loader = _LOADERS.get(job.kind)
    if loader is None:
        raise UnknownKind(
            f"no subject is registered for job kind {job.kind!r} (core.kinds.install wires them)"
        )
    return await loader(session, job)
