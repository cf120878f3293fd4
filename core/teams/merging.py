"""Merging one group into another, or one tag into another: members move over, and everything that
named the old one (event and broadcast audiences, invites, linked group chats) names the new one,
so nobody silently drops out of an event's audience. Then the old one is deleted."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by
from core.errors import Invalid
from core.events.models import Event
from core.notify.models import Broadcast
from core.scoping import get_scoped
from core.teams.groups import _view as group_view
from core.teams.models import ChatLink, Group, Invite, MemberGroup, MemberTag, Tag, TagChange
from core.teams.permissions import Action, Actor
from core.teams.schemas import GroupOut, TagOut
from core.teams.tags import _view as tag_view


def _swap(ids: list[str], old: str, new: str) -> list[str]:
    return list(dict.fromkeys(new if i == old else i for i in ids))


async def _rewrite_audiences(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    keys: tuple[str, str],
    old: uuid.UUID,
    new: uuid.UUID,
) -> None:
    models: tuple[Any, ...] = (Event, Broadcast)  # both keep an audience rule as JSONB
    for model in models:
        column: Any = model.audience
        rows = await session.scalars(
            select(model).where(
                model.workspace_id == workspace_id,
                column[keys[0]].has_any(array([str(old)]))
                | column[keys[1]].has_any(array([str(old)])),
            )
        )
        for row in rows:
            audience = dict(row.audience)
            for key in keys:
                audience[key] = _swap(list(audience.get(key, [])), str(old), str(new))
            row.audience = audience


def _distinct(source: uuid.UUID, into: uuid.UUID) -> None:
    if source == into:
        raise Invalid("into", "choose another one to merge into")


async def _lock_pair(
    session: AsyncSession, model: type[Group] | type[Tag], workspace_id: uuid.UUID, *ids: uuid.UUID
) -> None:
    """Lock both rows (in id order, so two merges never wait on each other in a circle): a merge
    running at the same time waits, then finds its source gone and answers 404, once."""
    await session.execute(
        select(model.id)
        .where(model.workspace_id == workspace_id, model.id.in_(sorted(ids)))
        .order_by(model.id)
        .with_for_update()
    )


async def merge_groups(
    session: AsyncSession, actor: Actor, group_id: uuid.UUID, into_id: uuid.UUID
) -> GroupOut:
    """Move the group's members, audiences, invites and chats into ``into_id``; delete it."""
    actor.require(Action.manage_people)
    _distinct(group_id, into_id)
    await _lock_pair(session, Group, actor.workspace_id, group_id, into_id)
    source = await get_scoped(session, Group, actor.workspace_id, group_id, "group")
    target = await get_scoped(session, Group, actor.workspace_id, into_id, "group")
    members = list(
        await session.scalars(
            select(MemberGroup.member_id).where(MemberGroup.group_id == source.id)
        )
    )
    if members:
        await session.execute(
            insert(MemberGroup)
            .values(
                [
                    {"group_id": target.id, "member_id": m, "workspace_id": actor.workspace_id}
                    for m in members
                ]
            )
            .on_conflict_do_nothing()
        )
    await _rewrite_audiences(
        session, actor.workspace_id, ("groups", "exclude_groups"), source.id, target.id
    )
    await session.execute(
        update(Invite).where(Invite.group_id == source.id).values(group_id=target.id)
    )
    await session.execute(
        update(ChatLink).where(ChatLink.group_id == source.id).values(group_id=target.id)
    )
    record_by(
        session,
        actor,
        "group.merged",
        target,
        f"group {source.name!r} merged into {target.name!r} ({len(members)} members moved)",
    )
    await session.delete(source)
    await session.flush()
    return await group_view(session, target)


async def merge_tags(
    session: AsyncSession, actor: Actor, tag_id: uuid.UUID, into_id: uuid.UUID
) -> TagOut:
    """Give the tag's holders ``into_id`` instead (both changes audited), fix audiences and
    invites, and delete it."""
    actor.require(Action.manage_people)
    _distinct(tag_id, into_id)
    await _lock_pair(session, Tag, actor.workspace_id, tag_id, into_id)
    source = await get_scoped(session, Tag, actor.workspace_id, tag_id, "tag")
    target = await get_scoped(session, Tag, actor.workspace_id, into_id, "tag")
    holders = list(
        await session.scalars(select(MemberTag.member_id).where(MemberTag.tag_id == source.id))
    )
    gained: list[uuid.UUID] = []
    if holders:
        result = await session.execute(
            insert(MemberTag)
            .values(
                [
                    {
                        "tag_id": target.id,
                        "member_id": m,
                        "workspace_id": actor.workspace_id,
                        "added_by": actor.label,
                    }
                    for m in holders
                ]
            )
            .on_conflict_do_nothing()
            .returning(MemberTag.member_id)
        )
        gained = list(result.scalars())
    session.add_all(
        [
            *(
                TagChange(
                    workspace_id=actor.workspace_id,
                    member_id=m,
                    tag_id=source.id,
                    tag_name=source.name,
                    action="removed",
                    actor=actor.label,
                )
                for m in holders
            ),
            *(
                TagChange(
                    workspace_id=actor.workspace_id,
                    member_id=m,
                    tag_id=target.id,
                    tag_name=target.name,
                    action="added",
                    actor=actor.label,
                )
                for m in gained
            ),
        ]
    )
    await _rewrite_audiences(
        session, actor.workspace_id, ("tags", "exclude_tags"), source.id, target.id
    )
    invites = await session.scalars(
        select(Invite).where(
            Invite.workspace_id == actor.workspace_id,
            Invite.tag_ids.has_any(array([str(source.id)])),
        )
    )
    for invite in invites:
        invite.tag_ids = _swap(list(invite.tag_ids), str(source.id), str(target.id))
    record_by(
        session,
        actor,
        "tag.merged",
        target,
        f"tag {source.name!r} merged into {target.name!r} ({len(holders)} holders)",
    )
    await session.flush()
    await session.delete(source)
    await session.flush()
    return await tag_view(session, target)
