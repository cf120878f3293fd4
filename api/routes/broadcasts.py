from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.notify import broadcasts
from core.notify.broadcasts import BroadcastCreate, BroadcastOut

router = APIRouter(route_class=UnitOfWork, prefix="/broadcasts", tags=["broadcasts"])


@router.post("", status_code=201)
async def create_broadcast(
    data: BroadcastCreate,
    actor: ActorDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Retry-safe: the same key within 24 h returns the first broadcast and "
            "sends nothing again"
        ),
    ] = None,
) -> BroadcastOut:
    """Send a message to an audience now, at ``send_at``, or (``local_time``) at ``send_at``'s
    wall-clock time in each member's own zone. The text (or a template's) may use
    ``{{ member.first_name }}`` and ``{{ member.name }}``; ``buttons`` add links."""
    out, replayed = await broadcasts.create_broadcast(session, actor, data, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.get("/{broadcast_id}")
async def get_broadcast(
    broadcast_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> BroadcastOut:
    """The broadcast and its progress: queued, sent, deferred, unreachable, failed."""
    return await broadcasts.get_broadcast(session, actor, broadcast_id)


@router.post("/{broadcast_id}/cancel")
async def cancel_broadcast(
    broadcast_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> BroadcastOut:
    """Cancel before it goes (or stop the rest while it goes); 409 once it has been sent."""
    out = await broadcasts.cancel_broadcast(session, actor, broadcast_id)
    return out
