"""Request-scoped dependencies: the database session and the acting token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.unit_of_work import SESSION
from core.errors import Unauthorized
from core.teams.permissions import Actor
from core.teams.token_cache import TokenCache
from core.teams.tokens import authenticate

_bearer = HTTPBearer(auto_error=False, description="An API token: `vst_…`")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one session; committed or rolled back by its route (api.unit_of_work)."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        request.scope[SESSION] = session
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_actor(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise Unauthorized("send an API token as 'Authorization: Bearer vst_…'")
    cache: TokenCache | None = getattr(request.app.state, "token_cache", None)
    return await authenticate(session, credentials.credentials, cache)


ActorDep = Annotated[Actor, Depends(get_actor)]
