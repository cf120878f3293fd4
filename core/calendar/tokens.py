"""Feed links: one secret URL per member, group or event; rotating one kills the old link at once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.calendar.models import FeedKind, FeedToken
from core.clock import utcnow
from core.events.lookup import get_live_event
from core.scoping import get_scoped
from core.secrets import digest, new_secret
from core.teams.models import Group, Member
from core.teams.permissions import Action, Actor

PREFIX = "ics_"
TOUCH_EVERY = timedelta(minutes=5)


class FeedLink(BaseModel):
    """A freshly issued link. The secret is in these URLs only; it is not stored."""

    url: str = Field(description="https:// (or http:// locally) form, for downloading or Google")
    webcal: str = Field(description="webcal:// form: calendar apps open it as a subscription")
    created_at: datetime


class FeedState(BaseModel):
    active: bool
    prefix: str | None
    created_at: datetime | None
    last_used_at: datetime | None


def feed_path(kind: FeedKind, raw: str) -> str:
    return f"/ics/event/{raw}.ics" if kind is FeedKind.event else f"/ics/{raw}.ics"


def links(base_url: str, kind: FeedKind, raw: str, created_at: datetime) -> FeedLink:
    base = base_url.rstrip("/")
    path = feed_path(kind, raw)
    parts = urlsplit(base)
    return FeedLink(
        url=base + path, webcal=f"webcal://{parts.netloc}{parts.path}{path}", created_at=created_at
    )


def _owned_by(kind: FeedKind, owner_id: uuid.UUID) -> ColumnElement[bool]:
    if kind is FeedKind.member:
        return FeedToken.member_id == owner_id
    if kind is FeedKind.group:
        return FeedToken.group_id == owner_id
    return FeedToken.event_id == owner_id


async def _check_owner(
    session: AsyncSession, actor: Actor, kind: FeedKind, owner_id: uuid.UUID
) -> None:
    if kind is FeedKind.event:
        actor.require(Action.manage_events)
        await get_live_event(session, actor, owner_id)
    else:
        actor.require(Action.manage_people)
        model = Member if kind is FeedKind.member else Group
        await get_scoped(session, model, actor.workspace_id, owner_id, kind.value)


async def rotate_feed(
    session: AsyncSession, actor: Actor, kind: FeedKind, owner_id: uuid.UUID, base_url: str
) -> FeedLink:
    """Issue a new link for the feed; any earlier link stops working in the same transaction."""
    await _check_owner(session, actor, kind, owner_id)
    now = utcnow()
    await session.execute(
        update(FeedToken)
        .where(_owned_by(kind, owner_id), FeedToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    raw = new_secret(PREFIX)
    session.add(
        FeedToken(
            workspace_id=actor.workspace_id,
            kind=kind.value,
            token_hash=digest(raw),
            prefix=raw[: len(PREFIX) + 6],
            created_at=now,
            **{f"{kind.value}_id": owner_id},
        )
    )
    await session.flush()
    return links(base_url, kind, raw, now)


async def revoke_feed(
    session: AsyncSession, actor: Actor, kind: FeedKind, owner_id: uuid.UUID
) -> None:
    """Turn the feed's link off. Rotating issues a new one."""
    await _check_owner(session, actor, kind, owner_id)
    await session.execute(
        update(FeedToken)
        .where(_owned_by(kind, owner_id), FeedToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def feed_state(
    session: AsyncSession, actor: Actor, kind: FeedKind, owner_id: uuid.UUID
) -> FeedState:
    await _check_owner(session, actor, kind, owner_id)
    row = await session.scalar(
        select(FeedToken).where(_owned_by(kind, owner_id), FeedToken.revoked_at.is_(None))
    )
    if row is None:
        return FeedState(active=False, prefix=None, created_at=None, last_used_at=None)
    return FeedState(
        active=True, prefix=row.prefix, created_at=row.created_at, last_used_at=row.last_used_at
    )
