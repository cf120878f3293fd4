from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.teams import roles
from core.teams.schemas import RoleCreate, RoleOut

router = APIRouter(route_class=UnitOfWork, prefix="/roles", tags=["roles"])


@router.get("")
async def list_roles(actor: ActorDep, session: SessionDep) -> list[RoleOut]:
    return await roles.list_roles(session, actor)


@router.post("", status_code=201)
async def create_role(data: RoleCreate, actor: ActorDep, session: SessionDep) -> RoleOut:
    """Create a custom role (owner only)."""
    out = await roles.create_role(session, actor, data)
    return out


@router.delete("/{role_id}", status_code=204)
async def delete_role(role_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """Delete a custom role (owner only); built-in roles cannot be deleted."""
    await roles.delete_role(session, actor, role_id)
    return Response(status_code=204)
