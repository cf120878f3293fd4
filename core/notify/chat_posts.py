"""Group chats: a lead links a Telegram or MAX group chat to a vestnik group; the group's events are
announced there with answer buttons, and each press records the answer of whoever pressed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.audience.rule import AudienceRule, audience_query
from core.delivery.answer_buttons import CHAT_VERSION, decode_answer, encode_answer
from core.delivery.channels import Channel, OutboundMessage, OutcomeKind
from core.delivery.models import Job
from core.delivery.ratelimit import RateLimiter
from core.events.confirmations import recurrence_id_of, save_answer, tally
from core.events.models import Answer, Event, EventStatus
from core.events.schemas import ConfirmationCounts
from core.notify.messages import BUTTONS, format_when
from core.notify.models import ChatPost, JobKind
from core.teams.accounts import Person, member_by_account
from core.teams.models import ChatLink, Group, Member, Messenger, Workspace

ANNOUNCEMENT = {
    "en": "{title}, {when}{where}. Are you coming? Answer below by {deadline}.",
    "ru": "«{title}», {when}{where}. Придёте? Ответьте кнопкой до {deadline}.",
}


class LinkVerdict(StrEnum):
    linked = "linked"
    no_such_group = "no_such_group"
    other_workspace = "other_workspace"  # the chat is already another workspace's


async def link_chat(
    session: AsyncSession,
    lead: Member,
    messenger: Messenger,
    chat_id: int,
    title: str,
    group_name: str,
    locale: str,
) -> tuple[LinkVerdict, Group | None]:
    """Link (or re-link) a chat to a group of the lead's workspace. The caller checks the role."""
    group = await session.scalar(
        select(Group).where(
            Group.workspace_id == lead.workspace_id,
            func.lower(Group.name) == group_name.strip().lower(),
        )
    )
    if group is None:
        return LinkVerdict.no_such_group, None
    existing = await session.scalar(
        select(ChatLink).where(ChatLink.messenger == messenger, ChatLink.chat_id == chat_id)
    )
    if existing is not None and existing.workspace_id != lead.workspace_id:
        return LinkVerdict.other_workspace, None
    await session.execute(
        insert(ChatLink)
        .values(
            id=uuid.uuid4(),
            workspace_id=lead.workspace_id,
            messenger=messenger.value,
            chat_id=chat_id,
            group_id=group.id,
            title=title[:255],
            locale=locale,
            linked_by=lead.name,
        )
        .on_conflict_do_update(
            index_elements=[ChatLink.messenger, ChatLink.chat_id],
            set_={"group_id": group.id, "title": title[:255], "locale": locale},
        )
    )
    return LinkVerdict.linked, group


async def unlink_chat(
    session: AsyncSession, lead: Member, messenger: Messenger, chat_id: int
) -> bool:
    result = await session.execute(
        delete(ChatLink)
        .where(
            ChatLink.messenger == messenger,
            ChatLink.chat_id == chat_id,
            ChatLink.workspace_id == lead.workspace_id,
        )
        .returning(ChatLink.id)
    )
    return result.first() is not None


async def announce(
    session: AsyncSession,
    job: Job,
    event: Event,
    audience: AudienceRule,
    channels: Sequence[Channel],
    secret: bytes,
    now: datetime,
    limiter: RateLimiter | None = None,
) -> int:
    """Post a confirmation request into every chat linked to one of the event's groups, once
    per (job, chat), through the channel of the chat's messenger. Returns how many were sent.
    The caller commits."""
    if (
        job.kind != JobKind.confirmation_request.value
        or event.confirm_before_minutes is None
        or not audience.groups
    ):
        return 0
    links = list(
        await session.scalars(
            select(ChatLink).where(
                ChatLink.workspace_id == event.workspace_id,
                ChatLink.group_id.in_(audience.groups),
            )
        )
    )
    workspace = await session.get_one(Workspace, event.workspace_id)
    deadline = job.occurrence_start - timedelta(minutes=event.confirm_before_minutes)
    sent = 0
    for link in links:
        channel = next((c for c in channels if c.name == link.messenger), None)
        if channel is None:
            continue  # that messenger is not served by this deployment (any more)
        post_id = uuid.uuid4()
        claimed = await session.execute(
            insert(ChatPost)
            .values(
                id=post_id,
                workspace_id=event.workspace_id,
                job_id=job.id,
                messenger=link.messenger,
                chat_id=link.chat_id,
                status="sending",
            )
            .on_conflict_do_nothing()
            .returning(ChatPost.id)
        )
        if claimed.first() is None:
            continue  # announced already (a retried job)
        await session.commit()  # claimed before sending: never posted twice
        locale = link.locale if link.locale in ANNOUNCEMENT else "en"
        text = ANNOUNCEMENT[locale].format(
            title=event.title,
            when=format_when(job.occurrence_start, workspace.timezone, locale, event.all_day),
            where=f", {event.location}" if event.location else "",
            deadline=format_when(deadline, workspace.timezone, locale),
        )
        buttons = [(label, answer) for answer, label in BUTTONS[locale].items()]
        data = [encode_answer(secret, post_id, answer, CHAT_VERSION) for _, answer in buttons]
        if limiter is not None:  # a group chat's own limit (20 a minute), and the bot's
            await limiter.acquire(channel.lane, str(link.chat_id))
        outcome = await channel.send(str(link.chat_id), OutboundMessage(text, buttons), data)
        if outcome.rate_limited and limiter is not None:
            await limiter.flood(channel.lane, outcome.retry_after or 1.0)
        ok = outcome.kind is OutcomeKind.sent
        await session.execute(
            update(ChatPost)
            .where(ChatPost.id == post_id)
            .values(
                status="sent" if ok else "failed",
                provider_message_id=outcome.provider_message_id,
                last_error=None if ok else outcome.reason,
            )
        )
        await session.commit()
        sent += ok
    return sent


class ChatAnswerVerdict(StrEnum):
    recorded = "recorded"
    forged = "forged"
    not_member = "not_member"  # the presser is no member of the event's workspace
    not_invited = "not_invited"  # a member, but not in the event's audience
    closed = "closed"


@dataclass(frozen=True)
class ChatAnswer:
    verdict: ChatAnswerVerdict
    locale: str = "en"
    answer: Answer | None = None
    title: str = ""
    counts: ConfirmationCounts | None = None
    chat_locale: str = "en"  # the announcement's language, for the counts line under it


async def record_chat_answer(
    session: AsyncSession, key: bytes, data: str, person: Person, now: datetime
) -> ChatAnswer:
    """Record the answer of whoever pressed a button under a chat announcement, if they are in
    the event's audience; with the new counts for the message. The caller commits."""
    button = decode_answer(key, data, CHAT_VERSION)
    post = await session.get(ChatPost, button.delivery_id) if button else None
    if button is None or post is None:
        return ChatAnswer(ChatAnswerVerdict.forged)
    job = await session.get_one(Job, post.job_id)
    event = await session.get_one(Event, job.event_id)
    presser = await member_by_account(session, event.workspace_id, person)
    if presser is None:
        return ChatAnswer(ChatAnswerVerdict.not_member)
    locale = presser.locale
    rule = AudienceRule.model_validate(event.audience)
    invited = await session.scalar(
        audience_query(event.workspace_id, rule)
        .where(Member.id == presser.id)
        .with_only_columns(Member.id)
    )
    if invited is None:
        return ChatAnswer(ChatAnswerVerdict.not_invited, locale, title=event.title)
    minutes = event.confirm_before_minutes
    closed = event.deleted_at is not None or event.status != EventStatus.scheduled.value
    if closed or (minutes is not None and now > job.occurrence_start - timedelta(minutes=minutes)):
        return ChatAnswer(ChatAnswerVerdict.closed, locale, title=event.title)
    await save_answer(session, event, presser.id, job.occurrence, Answer(button.answer), now)
    presser.last_activity_at = now
    await session.flush()
    board = await tally(session, event, recurrence_id_of(job.occurrence))
    return ChatAnswer(
        ChatAnswerVerdict.recorded, locale, Answer(button.answer), event.title, board.counts
    )
