"""What a person changes about themselves from the messenger: settings and subscription.

A Telegram account can be a member of several workspaces; personal preferences (zone, quiet
hours, language, time of day, subscription) are the person's, so they apply to every membership
of that account. Nothing here reaches a row that does not carry the caller's own Telegram id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import MEMBER_RESUBSCRIBED, MEMBER_UNSUBSCRIBED, record
from core.delivery.channels import Channel
from core.delivery.reachability import mark_unreachable, restore_channel
from core.teams.accounts import Person, with_account
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import (
    Member,
    MemberRole,
    MemberStatus,
    Messenger,
    Role,
    TimeOfDay,
    Workspace,
)
from core.teams.permissions import Actor
from core.teams.roles import highest_role
from core.timezones import check_timezone

_OFF = {"off", "none", "no", "нет", "выкл", "выключить", "-"}
_QUIET = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*[-–—]\s*(\d{1,2})[:.](\d{2})\s*$")


async def memberships_of(session: AsyncSession, person: Person) -> list[Member]:
    """Every member row linked to this messenger account (one per workspace), the most recent
    first."""
    rows = await session.scalars(
        select(Member)
        .where(with_account(person.messenger, person.external_id))
        .order_by(Member.created_at.desc())
    )
    return list(rows)


async def workspace_of(session: AsyncSession, member: Member) -> Workspace:
    return await session.get_one(Workspace, member.workspace_id)


async def actor_of(session: AsyncSession, member: Member, via: str = "Mini App") -> Actor:
    """The member acting for themselves, with the highest built-in role they hold: every rule
    about who may do what is then checked by core, whichever adapter they came through."""
    role = await highest_role(session, member.id)
    return Actor(member.workspace_id, role, label=f"{member.name} ({via})")


async def leads_of(session: AsyncSession, member: Member) -> bool:
    """Whether this member is an owner or lead of their workspace."""
    found = await session.scalar(
        select(Role.id)
        .join(MemberRole, MemberRole.role_id == Role.id)
        .where(
            MemberRole.member_id == member.id,
            Role.builtin.is_(True),
            Role.name.in_([BuiltinRole.owner.value, BuiltinRole.lead.value]),
        )
    )
    return found is not None


def set_timezone(members: Sequence[Member], zone: str) -> None:
    check_timezone(zone)
    for member in members:
        member.timezone = zone


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """ "22:00-08:00" -> (22:00, 08:00); "off" -> None; anything else -> ValueError."""
    if text.strip().casefold() in _OFF:
        return None
    match = _QUIET.match(text)
    if match is None:
        raise ValueError("two times such as 22:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = time(h1, m1), time(h2, m2)
    except ValueError as exc:
        raise ValueError("hours 0-23 and minutes 0-59") from exc
    if start == end:
        raise ValueError("the start and the end must differ")
    return start, end


def set_quiet_hours(members: Sequence[Member], window: tuple[time, time] | None) -> None:
    for member in members:
        member.quiet_start, member.quiet_end = window if window else (None, None)


def set_locale(members: Sequence[Member], locale: str) -> None:
    if locale not in ("en", "ru"):
        raise ValueError("en or ru")
    for member in members:
        member.locale = locale


def set_preferred_time(members: Sequence[Member], when: TimeOfDay) -> None:
    for member in members:
        member.preferred_time = when


def _change_status(
    session: AsyncSession,
    members: Sequence[Member],
    old: MemberStatus,
    new: MemberStatus,
    action: str,
    summary: str,
) -> bool:
    """Move members from ``old`` to ``new`` status, recording each move; True if any moved."""
    changed = False
    for member in members:
        if member.status == old.value:
            member.status = new
            record(session, member.workspace_id, member.name, action, member, summary, member.id)
            changed = True
    return changed


def unsubscribe(session: AsyncSession, members: Sequence[Member], via: str) -> bool:
    """True if anything changed. Unreachable members stay unreachable."""
    return _change_status(
        session,
        members,
        MemberStatus.active,
        MemberStatus.unsubscribed,
        MEMBER_UNSUBSCRIBED,
        f"unsubscribed ({via})",
    )


def resubscribe(session: AsyncSession, members: Sequence[Member], via: str) -> bool:
    return _change_status(
        session,
        members,
        MemberStatus.unsubscribed,
        MemberStatus.active,
        MEMBER_RESUBSCRIBED,
        f"subscribed again ({via})",
    )


async def blocked_the_bot(
    session: AsyncSession,
    members: Sequence[Member],
    messenger: Messenger,
    now: datetime,
    channels: Sequence[Channel],
) -> None:
    """The person blocked the bot: that messenger is unreachable for them; tags and history
    stay. (A channel is named after its messenger.)"""
    for member in members:
        await mark_unreachable(session, member, messenger.value, "blocked the bot", now, channels)


async def came_back(session: AsyncSession, members: Sequence[Member], messenger: Messenger) -> None:
    """The person unblocked the bot or sent /start: that messenger reaches them again."""
    for member in members:
        await restore_channel(session, member, messenger.value)
