"""One unit of work per request, for the REST API and the Mini App alike.

The request's database session (``api.deps.SessionDep``) is committed once the handler has made
a successful response (below 400) and rolled back if it raised or answered with an error, so a
refused or failed request never leaves half a change behind and handlers never commit themselves.
The commit happens before the response is sent: a client never hears "done" for a change that
then failed to commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

SESSION = "vestnik_session"


def session_of(request: Request) -> AsyncSession | None:
    session = request.scope.get(SESSION)
    return session if isinstance(session, AsyncSession) else None


class UnitOfWork(APIRoute):
    """The route class of every router of the API and the Mini App."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handle = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handle(request)
            except BaseException:
                session = session_of(request)
                if session is not None:
                    await session.rollback()
                raise
            session = session_of(request)
            if session is not None:
                if response.status_code < 400:
                    await session.commit()
                else:
                    await session.rollback()
            return response

        return run
