from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.cached_reads import cached_json
from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.paging import Page
from core.reads.cache import Kind
from core.teams import members, tags
from core.teams.schemas import MemberCreate, MemberFilter, MemberOut, MemberUpdate, TagChangeOut

router = APIRouter(route_class=UnitOfWork, prefix="/members", tags=["members"])


@router.post("", status_code=201)
async def create_member(data: MemberCreate, actor: ActorDep, session: SessionDep) -> MemberOut:
    out = await members.create_member(session, actor, data)
    return out


@router.get("", response_model=Page[MemberOut])
async def list_members(
    request: Request, flt: Annotated[MemberFilter, Query()], actor: ActorDep, session: SessionDep
) -> Response:
    return await cached_json(
        request,
        session,
        actor,
        Kind.members,
        flt.model_dump_json(),
        lambda: members.list_members(session, actor, flt),
    )


@router.get("/{member_id}")
async def get_member(member_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> MemberOut:
    return await members.get_member(session, actor, member_id)


@router.patch("/{member_id}")
async def update_member(
    member_id: uuid.UUID, patch: MemberUpdate, actor: ActorDep, session: SessionDep
) -> MemberOut:
    out = await members.update_member(session, actor, member_id, patch)
    return out


@router.delete("/{member_id}", status_code=204)
async def delete_member(member_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    await members.delete_member(session, actor, member_id)
    return Response(status_code=204)


@router.get("/{member_id}/tag-history")
async def member_tag_history(
    member_id: uuid.UUID, actor: ActorDep, session: SessionDep
) -> list[TagChangeOut]:
    """Every tag added to or removed from this member, with who did it and when."""
    return await tags.tag_history(session, actor, member_id)
