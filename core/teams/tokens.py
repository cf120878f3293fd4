"""API tokens: shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by
from core.clock import utcnow
from core.errors import NotFound, Unauthorized
from core.secrets import digest, looks_like, new_secret
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import ApiToken
from core.teams.permissions import Action, Actor
from core.teams.token_cache import Known, TokenCache, forget_on_commit

PREFIX = "vst_"
_TOUCH_EVERY = timedelta(minutes=1)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    role: BuiltinRole
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedToken(TokenOut):
    token: str


async def issue_token(
    session: AsyncSession, workspace_id: uuid.UUID, role: BuiltinRole, name: str
) -> IssuedToken:
    """Create a token for the workspace. The plain secret exists only in the returned value."""
    raw = new_secret(PREFIX)
    row = ApiToken(
        workspace_id=workspace_id,
        name=name,
        role=role.value,
        token_hash=digest(raw),
        prefix=raw[: len(PREFIX) + 6],
    )
    session.add(row)
    await session.flush()
    return IssuedToken(**TokenOut.model_validate(row).model_dump(), token=raw)


async def create_token(
    session: AsyncSession, actor: Actor, role: BuiltinRole, name: str
) -> IssuedToken:
    actor.require(Action.manage_tokens)
    issued = await issue_token(session, actor.workspace_id, role, name)
    record_by(
        session,
        actor,
        "token.created",
        ApiToken(id=issued.id),
        f"API token {name!r} ({role.value})",
    )
    return issued


async def authenticate(session: AsyncSession, raw: str, cache: TokenCache | None = None) -> Actor:
    """Return the actor a bearer token stands for, or raise Unauthorized. With a ``cache``, a
    token seen lately costs no query (revocations reach the cache at once: token_cache.py)."""
    if not looks_like(raw, PREFIX):
        raise Unauthorized("malformed API token: expected 'vst_' followed by 43 characters")
    if cache is not None and (known := known_actor(raw, cache)) is not None:
        return known
    token_hash = digest(raw)
    now = utcnow()
    generation = cache.generation if cache is not None else 0
    # Plain columns, not an ApiToken object: every request of the API runs this.
    row = (
        await session.execute(
            select(
                ApiToken.id,
                ApiToken.workspace_id,
                ApiToken.role,
                ApiToken.name,
                ApiToken.last_used_at,
            ).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("unknown or revoked API token")
    last_used_at = row.last_used_at
    if _touch_due(last_used_at, now):
        await session.execute(
            update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
        )
        last_used_at = now
    actor = Actor(
        workspace_id=row.workspace_id,
        role=BuiltinRole(row.role),
        label=f"token:{row.name}",
    )
    if cache is not None:
        cache.put(token_hash, Known(actor, last_used_at, time.monotonic()), generation)
    return actor


def known_actor(raw: str, cache: TokenCache) -> Actor | None:
    """The actor ``raw`` stands for, if ``cache`` knows the token and its use needs nothing
    written down; None otherwise (``authenticate`` then says who, or why not)."""
    if not looks_like(raw, PREFIX):
        return None
    known = cache.get(digest(raw))
    if known is None or _touch_due(known.last_used_at, utcnow()):
        return None
    return known.actor


def _touch_due(last_used_at: datetime | None, now: datetime) -> bool:
    # Writing on every request would turn reads into writes; a minute's precision is plenty.
    return last_used_at is None or now - last_used_at > _TOUCH_EVERY


async def list_tokens(session: AsyncSession, actor: Actor) -> list[TokenOut]:
    actor.require(Action.manage_tokens)
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.workspace_id == actor.workspace_id)
        .order_by(ApiToken.created_at)
    )
    return [TokenOut.model_validate(r) for r in rows]


async def revoke_token(session: AsyncSession, actor: Actor, token_id: uuid.UUID) -> TokenOut:
    """Revoke a token; it stops working at once. Revoking twice is harmless."""
    actor.require(Action.manage_tokens)
    row = await session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.workspace_id == actor.workspace_id)
    )
    if row is None:
        raise NotFound("token", token_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        forget_on_commit(session, row.token_hash)
        record_by(session, actor, "token.revoked", row, f"API token {row.name!r}")
    await session.flush()
    return TokenOut.model_validate(row)
