from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.teams import invites
from core.teams.invites import InviteCreate, InviteOut, IssuedInvite

router = APIRouter(route_class=UnitOfWork, prefix="/invites", tags=["invites"])


@router.post("", status_code=201)
async def create_invite(
    data: InviteCreate, request: Request, actor: ActorDep, session: SessionDep
) -> IssuedInvite:
    """A personal invite (``member_id``) or a group invite (``group_id``, optional ``tag_ids``,
    ``max_uses``). The token and link are shown once."""
    settings = request.app.state.settings
    out = await invites.create_invite(
        session,
        actor,
        data,
        settings.telegram_bot_username,
        settings.max_bot_username,
        invites.served_messengers(settings.max_token is not None),
    )
    return out


@router.get("")
async def list_invites(actor: ActorDep, session: SessionDep) -> list[InviteOut]:
    """Every invite with its state (active, used, expired, revoked) and use count."""
    return await invites.list_invites(session, actor)


@router.delete("/{invite_id}")
async def revoke_invite(invite_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> InviteOut:
    """Revoke at once (again is fine); the invite stays listed as revoked."""
    out = await invites.revoke_invite(session, actor, invite_id)
    return out
