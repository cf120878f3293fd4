"""Invites: deep links (``/start <token>``) that bring people into a workspace through the bot.

A personal invite names one existing member and binds to the first Telegram account that uses it;
anyone else who got the link forwarded is refused. A group invite admits new people into a group
(with tags), until it expires or its uses run out. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.delivery.reachability import restore_channel
from core.errors import Conflict, Invalid
from core.scoping import get_scoped, require_in_workspace
from core.secrets import digest
from core.teams.accounts import Person, member_by_account, set_account
from core.teams.groups import add_group_members
from core.teams.members import create_member
from core.teams.models import Group, Invite, InviteKind, Member, Messenger, Tag, Workspace
from core.teams.permissions import Action, Actor, system_actor
from core.teams.roles import highest_role
from core.teams.schemas import IdList, MemberCreate, MemberIds, Ref, _In
from core.teams.tags import tag_members

PREFIX = "i"
DEFAULT_LIFETIME = timedelta(days=7)
# Telegram deep-link payloads: at most 64 characters of A-Z, a-z, 0-9, _ and -.
_TOKEN_BYTES = 24


class InviteState(StrEnum):
    active = "active"
    used = "used"
    expired = "expired"
    revoked = "revoked"


class InviteCreate(_In):
    member_id: uuid.UUID | None = Field(default=None, description="A personal invite for them")
    group_id: uuid.UUID | None = Field(default=None, description="A group invite into it")
    tag_ids: IdList = Field(default_factory=list, description="Group invites: tags to give")
    max_uses: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        default=None, description="Group invites: how many people may join (unlimited if omitted)"
    )
    expires_in_hours: Annotated[int, Field(ge=1, le=24 * 365)] = Field(
        default=int(DEFAULT_LIFETIME.total_seconds() // 3600)
    )

    @model_validator(mode="after")
    def _one_target(self) -> InviteCreate:
        if (self.member_id is None) == (self.group_id is None):
            raise ValueError("give exactly one of member_id (personal) or group_id (group)")
        if self.member_id is not None and (self.tag_ids or self.max_uses is not None):
            raise ValueError("tag_ids and max_uses are for group invites only")
        return self


class InviteOut(BaseModel):
    id: uuid.UUID
    kind: InviteKind
    state: InviteState
    prefix: str
    member: Ref | None
    group: Ref | None
    tags: list[Ref]
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedInvite(InviteOut):
    token: str
    start_command: str = Field(description="What to send the bot if the link cannot be opened")
    link: str | None = Field(description="https://t.me/<bot>?start=<token>, if the bot is known")
    max_link: str | None = Field(
        default=None, description="https://max.ru/<bot>?start=<token>, if a MAX bot is known"
    )


def state_of(invite: Invite, now: datetime) -> InviteState:
    if invite.revoked_at is not None:
        return InviteState.revoked
    if invite.expires_at is not None and invite.expires_at <= now:
        return InviteState.expired
    if invite.kind == InviteKind.personal.value and invite.used_by is not None:
        return InviteState.used
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return InviteState.used
    return InviteState.active


async def _view(session: AsyncSession, invite: Invite, now: datetime) -> InviteOut:
    member = await session.get(Member, invite.member_id) if invite.member_id else None
    group = await session.get(Group, invite.group_id) if invite.group_id else None
    tags = []
    if invite.tag_ids:
        rows = await session.scalars(
            select(Tag).where(Tag.id.in_([uuid.UUID(t) for t in invite.tag_ids])).order_by(Tag.name)
        )
        tags = [Ref(id=t.id, name=t.name) for t in rows]
    return InviteOut(
        id=invite.id,
        kind=InviteKind(invite.kind),
        state=state_of(invite, now),
        prefix=invite.prefix,
        member=Ref(id=member.id, name=member.name) if member else None,
        group=Ref(id=group.id, name=group.name) if group else None,
        tags=tags,
        max_uses=invite.max_uses,
        uses=invite.uses,
        expires_at=invite.expires_at,
        created_by=invite.created_by,
        created_at=invite.created_at,
        revoked_at=invite.revoked_at,
    )


def invite_link(bot_username: str | None, token: str) -> str | None:
    return f"https://t.me/{bot_username}?start={token}" if bot_username else None


def served_messengers(max_bot_configured: bool) -> frozenset[Messenger]:
    """The messengers a deployment has a bot on: Telegram, and MAX when its token is set."""
    return frozenset({Messenger.telegram, *([Messenger.max] if max_bot_configured else [])})


def max_invite_link(bot_name: str | None, token: str) -> str | None:
    """MAX's deep link: the bot gets ``token`` as ``bot_started``'s payload (≤ 128 chars)."""
    return f"https://max.ru/{bot_name}?start={token}" if bot_name else None


async def create_invite(
    session: AsyncSession,
    actor: Actor,
    data: InviteCreate,
    bot_username: str | None,
    max_bot: str | None = None,
    served: frozenset[Messenger] = frozenset({Messenger.telegram}),
) -> IssuedInvite:
    """Make an invite; the token exists only in the returned value. ``served``: the messengers
    this deployment has a bot on (a member may be invited onto one they are not on yet)."""
    actor.require(Action.manage_people)
    if data.member_id is not None:
        member = await get_scoped(session, Member, actor.workspace_id, data.member_id, "member")
        # A member on one messenger may be invited onto another this deployment serves (Telegram
        # and MAX); refused once every one of those already names them.
        linked = {Messenger(a.messenger) for a in member.accounts}
        if linked and linked >= served:
            names = " and ".join(sorted(m.value.capitalize() for m in linked))
            raise Conflict("member_id", f"{member.name} is already linked to a {names} account")
        # Whoever opens a personal invite becomes that member: only for someone not above you.
        actor.require_not_below(await highest_role(session, member.id), "make a personal invite")
    else:
        assert data.group_id is not None
        await get_scoped(session, Group, actor.workspace_id, data.group_id, "group")
        await require_in_workspace(session, Tag, actor.workspace_id, data.tag_ids, "tag_ids", "tag")
    return await _issue(session, actor, data, bot_username, max_bot)


async def _issue(
    session: AsyncSession,
    actor: Actor,
    data: InviteCreate,
    bot_username: str | None,
    max_bot: str | None = None,
) -> IssuedInvite:
    token = PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    now = utcnow()
    invite = Invite(
        workspace_id=actor.workspace_id,
        kind=(InviteKind.personal if data.member_id else InviteKind.group).value,
        token_hash=digest(token),
        prefix=token[:7],
        member_id=data.member_id,
        group_id=data.group_id,
        tag_ids=[str(t) for t in dict.fromkeys(data.tag_ids)],
        max_uses=data.max_uses,
        uses=0,
        expires_at=now + timedelta(hours=data.expires_in_hours),
        created_by=actor.label,
        created_at=now,
    )
    session.add(invite)
    await session.flush()
    view = await _view(session, invite, now)
    return IssuedInvite(
        **view.model_dump(),
        token=token,
        start_command=f"/start {token}",
        link=invite_link(bot_username, token),
        max_link=max_invite_link(max_bot, token),
    )


async def invite_not_joined(
    session: AsyncSession, actor: Actor, members: list[Member], bot_username: str | None
) -> list[IssuedInvite]:
    """Personal invites for members whose Telegram account is known but who never opened the bot
    (a bot cannot write first): opening the link is their first message to it, and the next
    reminders reach them. Only for members not above the actor."""
    actor.require(Action.manage_people)
    issued = []
    for member in members:
        actor.require_not_below(await highest_role(session, member.id), "make a personal invite")
        data = InviteCreate(member_id=member.id)
        issued.append(await _issue(session, actor, data, bot_username))
    return issued


async def list_invites(session: AsyncSession, actor: Actor) -> list[InviteOut]:
    actor.require(Action.manage_people)
    rows = await session.scalars(
        select(Invite)
        .where(Invite.workspace_id == actor.workspace_id)
        .order_by(Invite.created_at.desc())
    )
    now = utcnow()
    return [await _view(session, row, now) for row in rows]


async def revoke_invite(session: AsyncSession, actor: Actor, invite_id: uuid.UUID) -> InviteOut:
    """Revoke at once; revoking twice is fine."""
    actor.require(Action.manage_people)
    invite = await get_scoped(session, Invite, actor.workspace_id, invite_id, "invite")
    if invite.revoked_at is None:
        invite.revoked_at = utcnow()
        await session.flush()
    return await _view(session, invite, utcnow())


# -- the bot's side ----------------------------------------------------------------------------


class JoinVerdict(StrEnum):
    joined = "joined"  # linked (personal) or admitted (group)
    welcome_back = "welcome_back"  # this account was already in; nothing used up
    not_yours = "not_yours"  # a personal invite someone else already used, or meant for another
    account_in_use = "account_in_use"  # this Telegram account is another member of the workspace
    expired = "expired"
    used_up = "used_up"
    revoked = "revoked"
    unknown = "unknown"


@dataclass(frozen=True)
class JoinResult:
    verdict: JoinVerdict
    workspace: Workspace | None = None
    member: Member | None = None
    invite: Invite | None = None


async def redeem_invite(
    session: AsyncSession,
    token: str,
    person: Person,
    now: datetime,
) -> JoinResult:
    """Use an invite from a messenger: ``person`` becomes (or is recognised as) a member. Nothing
    is written unless the verdict is joined or welcome_back. The caller commits."""
    invite = await session.scalar(
        select(Invite).where(Invite.token_hash == digest(token)).with_for_update()
    )
    if invite is None:
        return JoinResult(JoinVerdict.unknown)
    workspace = await session.get_one(Workspace, invite.workspace_id)
    existing = await member_by_account(session, workspace.id, person)
    if invite.kind == InviteKind.personal.value:
        return await _redeem_personal(session, invite, workspace, existing, person, now)
    return await _redeem_group(session, invite, workspace, existing, person, now)


async def _redeem_personal(
    session: AsyncSession,
    invite: Invite,
    workspace: Workspace,
    existing: Member | None,
    person: Person,
    now: datetime,
) -> JoinResult:
    assert invite.member_id is not None
    member = await session.get_one(Member, invite.member_id)
    used_by = _account_key(person)
    if invite.used_by == used_by and existing is member:
        return JoinResult(JoinVerdict.welcome_back, workspace, member, invite)
    if invite.used_by is not None or member.account_id(person.messenger) not in (
        None,
        person.external_id,
    ):
        return JoinResult(JoinVerdict.not_yours, workspace, member, invite)
    state = state_of(invite, now)
    if state in (InviteState.revoked, InviteState.expired):
        return JoinResult(JoinVerdict(state.value), workspace, member, invite)
    if existing is not None and existing.id != member.id:
        return JoinResult(JoinVerdict.account_in_use, workspace, existing, invite)
    set_account(member, person.messenger, person.external_id)
    invite.used_by = used_by
    invite.uses = 1
    await restore_channel(session, member, person.messenger.value)
    await session.flush()
    return JoinResult(JoinVerdict.joined, workspace, member, invite)


async def _redeem_group(
    session: AsyncSession,
    invite: Invite,
    workspace: Workspace,
    existing: Member | None,
    person: Person,
    now: datetime,
) -> JoinResult:
    state = state_of(invite, now)
    if state is InviteState.revoked or state is InviteState.expired:
        return JoinResult(JoinVerdict(state.value), workspace, existing, invite)
    actor = system_actor(workspace.id, label=f"invite {invite.prefix}")
    label = person.messenger.value.capitalize()
    if existing is None:
        taken = await session.execute(
            update(Invite)
            .where(
                Invite.id == invite.id,
                or_(Invite.max_uses.is_(None), Invite.uses < Invite.max_uses),
            )
            .values(uses=Invite.uses + 1)
            .returning(Invite.id)
        )
        if taken.first() is None:
            return JoinResult(JoinVerdict.used_up, workspace, None, invite)
        created = await create_member(
            session,
            actor,
            MemberCreate(
                name=(person.name.strip() or f"{label} {person.external_id}")[:200],
                locale="ru" if person.language == "ru" else "en",
            ),
        )
        member = await session.get_one(Member, created.id)
        set_account(member, person.messenger, person.external_id)
        verdict = JoinVerdict.joined
    else:
        member, verdict = existing, JoinVerdict.welcome_back
        await restore_channel(session, member, person.messenger.value)
    assert invite.group_id is not None
    ids = MemberIds(member_ids=[member.id])
    await add_group_members(session, actor, invite.group_id, ids)
    for tag_id in invite.tag_ids:
        await tag_members(session, actor, uuid.UUID(tag_id), ids)
    await session.flush()
    await session.refresh(invite)
    return JoinResult(verdict, workspace, member, invite)


def check_token_shape(token: str) -> None:
    """Reject obviously wrong payloads before touching the database."""
    if not token.startswith(PREFIX) or not 8 <= len(token) <= 64:
        raise Invalid("token", "not an invite")


def _account_key(person: Person) -> str:
    """How an invite remembers who used it: the messenger and the id it knows them by."""
    return f"{person.messenger.value}:{person.external_id}"
