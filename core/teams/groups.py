"""Groups: named sets of members (a member may be in many)."""

from __future__ import annotations

import uuid

from sqlalchemy import Uuid, delete, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by
from core.db import one_of
from core.errors import Conflict
from core.filters import contains
from core.paging import NameQuery, Page, PageParams
from core.scoping import get_scoped, workspace_member_ids
from core.teams.happenings import Happening, happened
from core.teams.members import member_page, member_query
from core.teams.models import Group, Member, MemberGroup
from core.teams.permissions import Action, Actor
from core.teams.schemas import (
    BulkResult,
    GroupCreate,
    GroupOut,
    GroupUpdate,
    MemberIds,
    MemberOut,
)


async def _ensure_free_name(
    session: AsyncSession, actor: Actor, name: str, exclude: uuid.UUID | None = None
) -> None:
    query = select(Group.name).where(
        Group.workspace_id == actor.workspace_id, func.lower(Group.name) == name.lower()
    )
    if exclude is not None:
        query = query.where(Group.id != exclude)
    if (existing := await session.scalar(query)) is not None:
        raise Conflict("name", f"this workspace already has a group named {existing!r}")


async def _view(session: AsyncSession, group: Group) -> GroupOut:
    count = await session.scalar(
        select(func.count()).select_from(MemberGroup).where(MemberGroup.group_id == group.id)
    )
    return GroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        member_count=count or 0,
        created_at=group.created_at,
    )


async def create_group(session: AsyncSession, actor: Actor, data: GroupCreate) -> GroupOut:
    actor.require(Action.manage_people)
    await _ensure_free_name(session, actor, data.name)
    group = Group(workspace_id=actor.workspace_id, name=data.name, description=data.description)
    session.add(group)
    await session.flush()
    record_by(session, actor, "group.created", group, f"group {group.name!r}")
    return await _view(session, group)


async def get_group(session: AsyncSession, actor: Actor, group_id: uuid.UUID) -> GroupOut:
    actor.require(Action.read)
    return await _view(
        session, await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    )


async def list_groups(session: AsyncSession, actor: Actor, flt: NameQuery) -> Page[GroupOut]:
    """Groups by name with their member counts, one page at a time."""
    actor.require(Action.read)
    where = [Group.workspace_id == actor.workspace_id]
    if flt.q:
        where.append(Group.name.ilike(contains(flt.q)))
    total = await session.scalar(select(func.count()).select_from(Group).where(*where)) or 0
    counts = (
        select(MemberGroup.group_id, func.count().label("n"))
        .group_by(MemberGroup.group_id)
        .subquery()
    )
    rows = await session.execute(
        select(Group, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.group_id == Group.id)
        .where(*where)
        .order_by(func.lower(Group.name))
        .limit(flt.limit)
        .offset(flt.offset)
    )
    items = [
        GroupOut(
            id=g.id, name=g.name, description=g.description, member_count=n, created_at=g.created_at
        )
        for g, n in rows
    ]
    return Page(items=items, total=total, limit=flt.limit, offset=flt.offset)


async def update_group(
    session: AsyncSession, actor: Actor, group_id: uuid.UUID, patch: GroupUpdate
) -> GroupOut:
    actor.require(Action.manage_people)
    group = await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    if patch.name is not None:
        await _ensure_free_name(session, actor, patch.name, exclude=group.id)
        group.name = patch.name
    if patch.description is not None:
        group.description = patch.description
    await session.flush()
    record_by(session, actor, "group.changed", group, f"group {group.name!r}")
    return await _view(session, group)


async def delete_group(session: AsyncSession, actor: Actor, group_id: uuid.UUID) -> None:
    """Delete a group. Its members stay in the workspace, with their tags."""
    actor.require(Action.manage_people)
    group = await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    record_by(session, actor, "group.deleted", group, f"group {group.name!r}")
    await session.delete(group)
    await session.flush()


async def list_group_members(
    session: AsyncSession, actor: Actor, group_id: uuid.UUID, page: PageParams
) -> Page[MemberOut]:
    actor.require(Action.read)
    await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    in_group = exists().where(MemberGroup.member_id == Member.id, MemberGroup.group_id == group_id)
    where = [Member.workspace_id == actor.workspace_id, in_group]
    return await member_page(session, member_query(where), page)


async def add_group_members(
    session: AsyncSession, actor: Actor, group_id: uuid.UUID, data: MemberIds
) -> BulkResult:
    """Put members into a group; all of them or, if any id is wrong, none."""
    actor.require(Action.manage_people)
    await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    wanted = await workspace_member_ids(session, actor.workspace_id, data.member_ids)
    rows = select(literal(group_id, Uuid()), Member.id, literal(actor.workspace_id, Uuid())).where(
        one_of(Member.id, wanted)
    )
    result = await session.execute(
        insert(MemberGroup)
        .from_select(["group_id", "member_id", "workspace_id"], rows)
        .on_conflict_do_nothing()
        .returning(MemberGroup.member_id)
    )
    added = list(result.scalars())
    await happened(session, Happening("joined_group", actor.workspace_id, added, group_id))
    return BulkResult(changed=len(added), unchanged=len(wanted) - len(added))


async def remove_group_members(
    session: AsyncSession, actor: Actor, group_id: uuid.UUID, data: MemberIds
) -> BulkResult:
    """Take members out of a group. Their tags and history are untouched."""
    actor.require(Action.manage_people)
    await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    wanted = await workspace_member_ids(session, actor.workspace_id, data.member_ids)
    result = await session.execute(
        delete(MemberGroup)
        .where(MemberGroup.group_id == group_id, one_of(MemberGroup.member_id, wanted))
        .returning(MemberGroup.member_id)
    )
    changed = len(result.all())
    return BulkResult(changed=changed, unchanged=len(wanted) - changed)
