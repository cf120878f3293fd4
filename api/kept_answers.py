"""Repeated cached reads answered before FastAPI routes them.

Integrations and dashboards poll: the same token sends the same ``GET /members?limit=50`` or
the same preview body again and again, and most of these are answered from the read cache
(``core.reads.cache``). Routing such a request, solving its dependencies (a session, the token,
the query model) and committing its empty unit of work cost more than half of the API's CPU for
it (docs/performance.md). So once a route has answered a request through ``cached_json``, this
middleware remembers what that exact request asks (method, path, query, content type and body, to
the byte, mapped to the validated question), and the next time the same bytes arrive it answers
them itself, if

- the token is one the process's token cache knows (revocations reach it at once) and whose use
  needs nothing written down, and its role may read;
- an answer to that question is kept at the current stamp of the workspace's data, looked up
  for the token's own workspace.

Anything else (an unknown request, a token to look up, a kept answer missing or out of date, any
failure) goes on to FastAPI as if this were not here, with its body as it came: the answers,
errors and checks are the routes' own. The answer sent is the route's bytes, with the same
headers.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.reads.cache import Kind, kept_answer
from core.teams.permissions import Action
from core.teams.tokens import known_actor

log = logging.getLogger(__name__)

# What a request asks, to the byte: method, path, query string, content type, body.
RawAsk = tuple[str, str, bytes, bytes | None, bytes]

# A bigger body (or one of unknown length) is never read here: it goes to the route as it came.
MAX_BODY_BYTES = 16 * 1024
# What the remembered requests may hold, their bytes and their validated questions counted.
MAX_REMEMBERED_BYTES = 4 * 1024 * 1024
_ASK = "vestnik.kept_answers"
_LOOKED_AT = frozenset((b"authorization", b"content-type", b"content-length"))


@dataclass
class KeptFigures:
    """How many requests this process answered here, and how many it remembers."""

    answered: int = 0
    remembered: int = 0


class KeptAnswers:
    def __init__(self, app: ASGIApp, figures: KeptFigures) -> None:
        self.app = app
        self.figures = figures
        self._asks: LRUCache[RawAsk, tuple[Kind, Hashable, int]] = LRUCache(
            maxsize=MAX_REMEMBERED_BYTES, getsizeof=lambda remembered: remembered[2]
        )

    def remember(self, ask: RawAsk, kind: Kind, asked: Hashable) -> None:
        _, path, query, content_type, body = ask
        size = len(path) + len(query) + len(content_type or b"") + len(body) + len(repr(asked))
        self._asks[ask] = (kind, asked, size)
        self.figures.remembered = len(self._asks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        headers = _named(scope["headers"])
        if headers is None:
            await self.app(scope, receive, send)
            return
        chunks: list[Message] = []
        body = b""
        if scope["method"] == "POST":
            # Only a body that says it is small is read here (BodySizeLimit has checked it says
            # the truth); any other goes on to the route as it comes.
            length = headers.get(b"content-length", b"")
            if not (length.isdigit() and int(length) <= MAX_BODY_BYTES):
                await self.app(scope, receive, send)
                return
            whole = await _read_whole(receive, chunks)
            if whole is None:
                await self.app(scope, _replaying(chunks, receive), send)
                return
            body = whole
        ask: RawAsk = (
            scope["method"],
            scope["path"],
            scope["query_string"],
            headers.get(b"content-type"),
            body,
        )
        remembered = self._asks.get(ask)
        if remembered is not None:
            kept = await self._kept(scope, remembered, headers)
            if kept is not None:
                self.figures.answered += 1
                await _send_json(send, kept)
                return
        scope[_ASK] = (self, ask)
        await self.app(scope, _replaying(chunks, receive) if chunks else receive, send)

    async def _kept(
        self, scope: Scope, remembered: tuple[Kind, Hashable, int], headers: dict[bytes, bytes]
    ) -> bytes | None:
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        state = scope["app"].state
        if scheme.lower() != "bearer" or getattr(state, "token_cache", None) is None:
            return None
        actor = known_actor(token.strip(), state.token_cache)
        if actor is None or not actor.may(Action.read):
            return None
        kind, asked, _ = remembered
        try:
            return await kept_answer(
                state.engine, state.read_cache, actor.workspace_id, kind, asked
            )
        except Exception:
            # The route asks again and answers (or fails) as it always does.
            log.debug("kept answer not looked up", exc_info=True)
            return None


def remember_asked(request: Request, kind: Kind, asked: Hashable) -> None:
    """Called by a route answering through the read cache: the same request, byte for byte,
    asks ``asked`` of ``kind`` again (the route validated it into that)."""
    seen = request.scope.get(_ASK)
    if seen is not None:
        middleware, ask = seen
        middleware.remember(ask, kind, asked)


def _named(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes] | None:
    """The headers this looks at, or None if any of them came twice (which one a route would
    take is then the route's business)."""
    named: dict[bytes, bytes] = {}
    for name, value in raw:
        if name in _LOOKED_AT:
            if name in named:
                return None
            named[name] = value
    return named


async def _read_whole(receive: Receive, chunks: list[Message]) -> bytes | None:
    """The body, or None if the client went away first; every message read is kept in
    ``chunks`` for the route."""
    while True:
        message = await receive()
        chunks.append(message)
        if message["type"] != "http.request":
            return None
        if not message.get("more_body", False):
            return b"".join(chunk.get("body", b"") for chunk in chunks)


def _replaying(chunks: list[Message], receive: Receive) -> Receive:
    """``receive`` as if nothing had been read from it yet."""
    waiting = list(chunks)

    async def replayed() -> Message:
        if waiting:
            return waiting.pop(0)
        return await receive()

    return replayed


async def _send_json(send: Send, body: bytes) -> None:
    # As starlette's Response(body, media_type="application/json") sends it.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
