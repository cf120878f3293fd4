from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.paging import NameQuery, Page
from core.teams import tags
from core.teams.merging import merge_tags
from core.teams.schemas import BulkResult, MemberIds, MergeInto, TagCreate, TagOut, TagUpdate

router = APIRouter(route_class=UnitOfWork, prefix="/tags", tags=["tags"])


@router.post("", status_code=201)
async def create_tag(data: TagCreate, actor: ActorDep, session: SessionDep) -> TagOut:
    out = await tags.create_tag(session, actor, data)
    return out


@router.get("")
async def list_tags(
    flt: Annotated[NameQuery, Query()], actor: ActorDep, session: SessionDep
) -> Page[TagOut]:
    return await tags.list_tags(session, actor, flt)


@router.get("/{tag_id}")
async def get_tag(tag_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> TagOut:
    return await tags.get_tag(session, actor, tag_id)


@router.patch("/{tag_id}")
async def rename_tag(
    tag_id: uuid.UUID, data: TagUpdate, actor: ActorDep, session: SessionDep
) -> TagOut:
    out = await tags.rename_tag(session, actor, tag_id, data)
    return out


@router.delete("/{tag_id}", status_code=204)
async def delete_tag(tag_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """Delete a tag; each member who had it gets an audited removal in their tag history."""
    await tags.delete_tag(session, actor, tag_id)
    return Response(status_code=204)


@router.post("/{tag_id}/members/add")
async def tag_members(
    tag_id: uuid.UUID, data: MemberIds, actor: ActorDep, session: SessionDep
) -> BulkResult:
    """Give members this tag in bulk: all of them, or none if any id is unknown."""
    out = await tags.tag_members(session, actor, tag_id, data)
    return out


@router.post("/{tag_id}/members/remove")
async def untag_members(
    tag_id: uuid.UUID, data: MemberIds, actor: ActorDep, session: SessionDep
) -> BulkResult:
    """Take this tag away from members (the only way a tag is removed); audited."""
    out = await tags.untag_members(session, actor, tag_id, data)
    return out


@router.post("/{tag_id}/merge")
async def merge_tag(
    tag_id: uuid.UUID, data: MergeInto, actor: ActorDep, session: SessionDep
) -> TagOut:
    """Merge this tag into another: its members move over, event and broadcast audiences
    and invites that named it name the other, and this one is deleted."""
    out = await merge_tags(session, actor, tag_id, data.into)
    return out
