"""JSON answers of the busiest reads, from the process's read cache when the data has not changed
since (``core.reads.cache``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.kept_answers import remember_asked
from core.reads.cache import Kind, ReadCache, answer
from core.teams.permissions import Action, Actor


async def cached_json(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    kind: Kind,
    asked: Hashable,
    read: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """``read()``'s answer as FastAPI would serialise it, or the same bytes kept from an earlier
    read of the same data. The role is checked first: a kept answer is no reason to skip it."""
    actor.require(Action.read)
    remember_asked(request, kind, asked)
    cache: ReadCache = request.app.state.read_cache

    async def serialised() -> bytes:
        model = await read()
        return model.__pydantic_serializer__.to_json(model, by_alias=True)

    body = await answer(session, cache, actor.workspace_id, kind, asked, serialised)
    return Response(body, media_type="application/json")
