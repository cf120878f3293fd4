"""Signals from other systems about a member (journeys enter and branch on them)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.clock import utcnow
from core.journeys.signals import SignalIn, SignalOut, record_signal

router = APIRouter(route_class=UnitOfWork, prefix="/signals", tags=["signals"])


@router.post(
    "",
    status_code=201,
    responses={200: {"description": "The same key was posted before: nothing new recorded"}},
)
async def post_signal(
    data: SignalIn, actor: ActorDep, session: SessionDep, response: Response
) -> SignalOut:
    """Record that something happened for a member (``progress`` 20, ``bought``). Name the
    member by ``member_id`` or by the ``external_id`` your system knows them by. Send a ``key``
    to make retries safe. Counts as the member's activity."""
    out, new = await record_signal(session, actor, data, utcnow())
    if not new:
        response.status_code = 200
    return out
