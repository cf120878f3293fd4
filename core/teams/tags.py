"""Tags: permanent facts about members.

A member keeps a tag until someone removes it explicitly; every add and removal is written to
``tag_changes`` with who did it. Leaving a group, unsubscribing or blocking the bot never touch tags.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Uuid, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by
from core.db import one_of
from core.errors import Conflict
from core.filters import contains
from core.paging import NameQuery, Page
from core.scoping import get_scoped, workspace_member_ids
from core.teams.happenings import Happening, happened
from core.teams.models import Member, MemberTag, Tag, TagChange
from core.teams.permissions import Action, Actor
from core.teams.schemas import BulkResult, MemberIds, TagChangeOut, TagCreate, TagOut, TagUpdate


async def _ensure_free_name(
    session: AsyncSession, actor: Actor, name: str, exclude: uuid.UUID | None = None
) -> None:
    query = select(Tag.name).where(
        Tag.workspace_id == actor.workspace_id, func.lower(Tag.name) == name.lower()
    )
    if exclude is not None:
        query = query.where(Tag.id != exclude)
    if (existing := await session.scalar(query)) is not None:
        raise Conflict("name", f"this workspace already has a tag named {existing!r}")


async def _view(session: AsyncSession, tag: Tag) -> TagOut:
    count = await session.scalar(
        select(func.count()).select_from(MemberTag).where(MemberTag.tag_id == tag.id)
    )
    return TagOut(id=tag.id, name=tag.name, member_count=count or 0, created_at=tag.created_at)


async def create_tag(session: AsyncSession, actor: Actor, data: TagCreate) -> TagOut:
    actor.require(Action.manage_people)
    await _ensure_free_name(session, actor, data.name)
    tag = Tag(workspace_id=actor.workspace_id, name=data.name)
    session.add(tag)
    await session.flush()
    record_by(session, actor, "tag.created", tag, f"tag {tag.name!r}")
    return await _view(session, tag)


async def get_tag(session: AsyncSession, actor: Actor, tag_id: uuid.UUID) -> TagOut:
    actor.require(Action.read)
    return await _view(session, await get_scoped(session, Tag, actor.workspace_id, tag_id, "tag"))


async def list_tags(session: AsyncSession, actor: Actor, flt: NameQuery) -> Page[TagOut]:
    actor.require(Action.read)
    where = [Tag.workspace_id == actor.workspace_id]
    if flt.q:
        where.append(Tag.name.ilike(contains(flt.q)))
    total = await session.scalar(select(func.count()).select_from(Tag).where(*where)) or 0
    counts = select(MemberTag.tag_id, func.count().label("n")).group_by(MemberTag.tag_id).subquery()
    rows = await session.execute(
        select(Tag, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .where(*where)
        .order_by(func.lower(Tag.name))
        .limit(flt.limit)
        .offset(flt.offset)
    )
    items = [TagOut(id=t.id, name=t.name, member_count=n, created_at=t.created_at) for t, n in rows]
    return Page(items=items, total=total, limit=flt.limit, offset=flt.offset)


async def rename_tag(
    session: AsyncSession, actor: Actor, tag_id: uuid.UUID, data: TagUpdate
) -> TagOut:
    actor.require(Action.manage_people)
    tag = await get_scoped(session, Tag, actor.workspace_id, tag_id, "tag")
    await _ensure_free_name(session, actor, data.name, exclude=tag.id)
    record_by(session, actor, "tag.renamed", tag, f"tag {tag.name!r} → {data.name!r}")
    tag.name = data.name
    await session.flush()
    return await _view(session, tag)


async def _record(
    session: AsyncSession, actor: Actor, tag: Tag, member_ids: list[uuid.UUID], action: str
) -> None:
    if member_ids:
        session.add_all(
            TagChange(
                workspace_id=actor.workspace_id,
                member_id=m,
                tag_id=tag.id,
                tag_name=tag.name,
                action=action,
                actor=actor.label,
            )
            for m in member_ids
        )
        await session.flush()


async def delete_tag(session: AsyncSession, actor: Actor, tag_id: uuid.UUID) -> None:
    """Delete a tag. Every member who carried it gets an audited 'removed' entry first."""
    actor.require(Action.manage_people)
    tag = await get_scoped(session, Tag, actor.workspace_id, tag_id, "tag")
    holders = list(
        await session.scalars(select(MemberTag.member_id).where(MemberTag.tag_id == tag.id))
    )
    await _record(session, actor, tag, holders, "removed")
    record_by(session, actor, "tag.deleted", tag, f"tag {tag.name!r} ({len(holders)} people)")
    await session.delete(tag)
    await session.flush()


async def tag_members(
    session: AsyncSession, actor: Actor, tag_id: uuid.UUID, data: MemberIds
) -> BulkResult:
    """Give members a tag; all of them or, if any id is wrong, none. Audited."""
    actor.require(Action.manage_people)
    tag = await get_scoped(session, Tag, actor.workspace_id, tag_id, "tag")
    wanted = await workspace_member_ids(session, actor.workspace_id, data.member_ids)
    # INSERT … SELECT over one array parameter: 10,000 rows of VALUES would be 50,000 parameters.
    rows = select(
        literal(tag.id, Uuid()),
        Member.id,
        literal(actor.workspace_id, Uuid()),
        literal(actor.label),
    ).where(one_of(Member.id, wanted))
    result = await session.execute(
        insert(MemberTag)
        .from_select(["tag_id", "member_id", "workspace_id", "added_by"], rows)
        .on_conflict_do_nothing()
        .returning(MemberTag.member_id)
    )
    added = list(result.scalars())
    await _record(session, actor, tag, added, "added")
    await happened(session, Happening("tag_added", actor.workspace_id, added, tag.id))
    return BulkResult(changed=len(added), unchanged=len(wanted) - len(added))


async def untag_members(
    session: AsyncSession, actor: Actor, tag_id: uuid.UUID, data: MemberIds
) -> BulkResult:
    """Take a tag away from members: the one way a tag is ever removed. Audited."""
    actor.require(Action.manage_people)
    tag = await get_scoped(session, Tag, actor.workspace_id, tag_id, "tag")
    wanted = await workspace_member_ids(session, actor.workspace_id, data.member_ids)
    result = await session.execute(
        delete(MemberTag)
        .where(MemberTag.tag_id == tag.id, one_of(MemberTag.member_id, wanted))
        .returning(MemberTag.member_id)
    )
    removed = list(result.scalars())
    await _record(session, actor, tag, removed, "removed")
    await happened(session, Happening("tag_removed", actor.workspace_id, removed, tag.id))
    return BulkResult(changed=len(removed), unchanged=len(wanted) - len(removed))


async def tag_history(
    session: AsyncSession, actor: Actor, member_id: uuid.UUID
) -> list[TagChangeOut]:
    """Every tag added to or removed from a member, oldest first."""
    actor.require(Action.read)
    await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    rows = await session.scalars(
        select(TagChange)
        .where(TagChange.member_id == member_id, TagChange.workspace_id == actor.workspace_id)
        .order_by(TagChange.at, TagChange.id)
    )
    return [TagChangeOut.model_validate(r) for r in rows]
