from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.paging import NameQuery, Page, PageParams
from core.teams import groups
from core.teams.merging import merge_groups
from core.teams.schemas import (
    BulkResult,
    GroupCreate,
    GroupOut,
    GroupUpdate,
    MemberIds,
    MemberOut,
    MergeInto,
)

router = APIRouter(route_class=UnitOfWork, prefix="/groups", tags=["groups"])


@router.post("", status_code=201)
async def create_group(data: GroupCreate, actor: ActorDep, session: SessionDep) -> GroupOut:
    out = await groups.create_group(session, actor, data)
    return out


@router.get("")
async def list_groups(
    flt: Annotated[NameQuery, Query()], actor: ActorDep, session: SessionDep
) -> Page[GroupOut]:
    return await groups.list_groups(session, actor, flt)


@router.get("/{group_id}")
async def get_group(group_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> GroupOut:
    return await groups.get_group(session, actor, group_id)


@router.patch("/{group_id}")
async def update_group(
    group_id: uuid.UUID, patch: GroupUpdate, actor: ActorDep, session: SessionDep
) -> GroupOut:
    out = await groups.update_group(session, actor, group_id, patch)
    return out


@router.delete("/{group_id}", status_code=204)
async def delete_group(group_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    await groups.delete_group(session, actor, group_id)
    return Response(status_code=204)


@router.get("/{group_id}/members")
async def list_group_members(
    group_id: uuid.UUID,
    page: Annotated[PageParams, Query()],
    actor: ActorDep,
    session: SessionDep,
) -> Page[MemberOut]:
    return await groups.list_group_members(session, actor, group_id, page)


@router.post("/{group_id}/members/add")
async def add_group_members(
    group_id: uuid.UUID, data: MemberIds, actor: ActorDep, session: SessionDep
) -> BulkResult:
    """Add members in bulk: all of them, or none if any id is unknown."""
    out = await groups.add_group_members(session, actor, group_id, data)
    return out


@router.post("/{group_id}/members/remove")
async def remove_group_members(
    group_id: uuid.UUID, data: MemberIds, actor: ActorDep, session: SessionDep
) -> BulkResult:
    """Remove members in bulk. Their tags stay."""
    out = await groups.remove_group_members(session, actor, group_id, data)
    return out


@router.post("/{group_id}/merge")
async def merge_group(
    group_id: uuid.UUID, data: MergeInto, actor: ActorDep, session: SessionDep
) -> GroupOut:
    """Merge this group into another: its members move over, event and broadcast audiences
    and invites that named it name the other, and this one is deleted."""
    out = await merge_groups(session, actor, group_id, data.into)
    return out
