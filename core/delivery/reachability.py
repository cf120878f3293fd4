"""Which channels still reach a member: a channel that answered "blocked" or "no such chat" is
not tried again for that member; the member is unreachable once no channel reaches them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import MEMBER_BLOCKED, MEMBER_RETURNED, record
from core.delivery.channels import Channel
from core.delivery.models import ChannelBlock
from core.teams.models import Member, MemberStatus

MUTED = "muted by the member"


async def blocked_channels(
    session: AsyncSession, member_ids: Iterable[uuid.UUID]
) -> set[tuple[uuid.UUID, str]]:
    """(member, channel) pairs that must not be tried."""
    ids = list(member_ids)
    if not ids:
        return set()
    rows = await session.execute(
        select(ChannelBlock.member_id, ChannelBlock.channel).where(ChannelBlock.member_id.in_(ids))
    )
    return {(member_id, channel) for member_id, channel in rows}


async def mark_unreachable(
    session: AsyncSession,
    member: Member,
    channel: str,
    reason: str,
    now: datetime,
    channels: Sequence[Channel],
) -> None:
    """Block this channel for the member; if none of ``channels`` reaches them any more, the member
    becomes unreachable. Tags, groups and history stay as they are."""
    added = await session.scalar(
        insert(ChannelBlock)
        .values(
            id=uuid.uuid4(),
            workspace_id=member.workspace_id,
            member_id=member.id,
            channel=channel,
            reason=reason,
            since=now,
        )
        .on_conflict_do_nothing()
        .returning(ChannelBlock.id)
    )
    if added is not None and reason != MUTED:
        record(
            session,
            member.workspace_id,
            channel,
            MEMBER_BLOCKED,
            member,
            f"{channel} cannot reach {member.name}: {reason}",
            member.id,
        )
    blocked = {c for m, c in await blocked_channels(session, [member.id]) if m == member.id}
    if all(c.name in blocked for c in channels if c.address(member) is not None):
        await session.execute(
            update(Member)
            .where(Member.id == member.id, Member.status == MemberStatus.active.value)
            .values(status=MemberStatus.unreachable.value)
        )


async def restore_channel(session: AsyncSession, member: Member, channel: str) -> None:
    """The member can be reached on ``channel`` again (unblocked the bot, sent /start). A channel
    the member muted themselves stays muted."""
    removed = await session.scalar(
        delete(ChannelBlock)
        .where(
            ChannelBlock.member_id == member.id,
            ChannelBlock.channel == channel,
            ChannelBlock.reason != MUTED,
        )
        .returning(ChannelBlock.id)
    )
    if removed is not None:
        record(
            session,
            member.workspace_id,
            channel,
            MEMBER_RETURNED,
            member,
            f"{channel} reaches {member.name} again",
            member.id,
        )
    if member.status == MemberStatus.unreachable.value:
        member.status = MemberStatus.active


async def set_channel_muted(
    session: AsyncSession, member: Member, channel: str, muted: bool, now: datetime
) -> None:
    """The member's own choice to get nothing on ``channel`` (other channels still work)."""
    if muted:
        await session.execute(
            insert(ChannelBlock)
            .values(
                id=uuid.uuid4(),
                workspace_id=member.workspace_id,
                member_id=member.id,
                channel=channel,
                reason=MUTED,
                since=now,
            )
            .on_conflict_do_update(
                index_elements=[ChannelBlock.member_id, ChannelBlock.channel],
                set_={"reason": MUTED, "since": now},
            )
        )
    else:
        await session.execute(
            delete(ChannelBlock).where(
                ChannelBlock.member_id == member.id,
                ChannelBlock.channel == channel,
                ChannelBlock.reason == MUTED,
            )
        )


async def channel_muted(session: AsyncSession, member: Member, channel: str) -> bool:
    found = await session.scalar(
        select(ChannelBlock.id).where(
            ChannelBlock.member_id == member.id,
            ChannelBlock.channel == channel,
            ChannelBlock.reason == MUTED,
        )
    )
    return found is not None
