"""Issuing, inspecting and revoking calendar feed links (the feeds themselves are in feeds.py)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.calendar.models import FeedKind
from core.calendar.tokens import FeedLink, FeedState, feed_state, revoke_feed, rotate_feed

router = APIRouter(route_class=UnitOfWork, tags=["calendar feeds"])
_PATHS = {
    FeedKind.member: "/members/{owner_id}/calendar-feed",
    FeedKind.group: "/groups/{owner_id}/calendar-feed",
    FeedKind.event: "/events/{owner_id}/ics-link",
}
_WHAT = {
    FeedKind.member: "the member's personal feed (every event that reaches them, with their answers)",
    FeedKind.group: "the group's feed (every event addressed to the group)",
    FeedKind.event: "a download link for this one event",
}


def _routes(kind: FeedKind) -> None:
    path = _PATHS[kind]

    async def rotate(
        owner_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep
    ) -> FeedLink:
        link = await rotate_feed(
            session, actor, kind, owner_id, request.app.state.settings.public_url
        )
        return link

    async def state(owner_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> FeedState:
        return await feed_state(session, actor, kind, owner_id)

    async def revoke(owner_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
        await revoke_feed(session, actor, kind, owner_id)
        return Response(status_code=204)

    router.add_api_route(
        path,
        rotate,
        methods=["POST"],
        status_code=201,
        summary=f"Issue a new link to {kind.value} calendar",
        description=f"Issues {_WHAT[kind]}; an earlier link stops working at once. "
        "The URLs are shown only in this response.",
    )
    router.add_api_route(path, state, methods=["GET"], summary=f"Is the {kind.value} link active?")
    router.add_api_route(
        path, revoke, methods=["DELETE"], status_code=204, summary=f"Turn the {kind.value} link off"
    )


for _kind in FeedKind:
    _routes(_kind)
