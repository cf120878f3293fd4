from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import ActorDep, SessionDep
from core.notify import broadcasts
from core.notify.broadcasts import BroadcastCreate, BroadcastOut

router = APIRouter(prefix="/broadcasts", tags=["broadcasts"])


@router.post("", status_code=201)
async def create_broadcast(
    data: BroadcastCreate, actor: ActorDep, session: SessionDep
) -> BroadcastOut:
    """Send a message to an audience now, or at ``send_at``. The text may use
    ``{{ member.first_name }}`` and ``{{ member.name }}``."""
    out = await broadcasts.create_broadcast(session, actor, data)
    await session.commit()
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
    await session.commit()
    return out
