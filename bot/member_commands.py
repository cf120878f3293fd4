"""What a member asks the bot: /help, /events, /next, /calendar, /unsubscribe, /resubscribe."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.texts import Texts
from core.calendar.models import FeedKind
from core.calendar.tokens import feed_state, rotate_feed
from core.clock import utcnow
from core.events.agenda import AgendaItem, agenda
from core.notify.messages import format_when
from core.teams.models import Member
from core.teams.permissions import system_actor
from core.teams.self_service import leads_of, resubscribe, unsubscribe


def build_router(base_url: str) -> Router:
    router = Router(name="member commands")
    router.message.register(on_help, Command("help"))
    router.message.register(on_cancel, Command("cancel"))
    router.message.register(on_events, Command("events"))
    router.message.register(on_next, Command("next"))
    router.message.register(on_unsubscribe, Command("unsubscribe"))
    router.message.register(on_resubscribe, Command("resubscribe"))

    async def on_calendar(
        message: Message, session: AsyncSession, member: Member | None, texts: Texts
    ) -> None:
        await calendar_link(message, session, member, texts, base_url, rotate=False)

    async def on_calendar_rotate(
        callback: CallbackQuery, session: AsyncSession, member: Member | None, texts: Texts
    ) -> None:
        await callback.answer()
        if isinstance(callback.message, Message):
            await calendar_link(callback.message, session, member, texts, base_url, rotate=True)

    router.message.register(on_calendar, Command("calendar"))
    router.callback_query.register(on_calendar_rotate, F.data == "calendar:new")
    return router


async def on_help(
    message: Message, session: AsyncSession, member: Member | None, texts: Texts
) -> None:
    if member is None:
        await message.answer(texts("not_member"))
        return
    text = texts("help")
    if await leads_of(session, member):
        text += "\n\n" + texts("help_lead")
    await message.answer(text)


async def on_cancel(message: Message, texts: Texts, state: FSMContext) -> None:
    await state.clear()
    await message.answer(texts("cancelled"))


def _answer(item: AgendaItem, texts: Texts) -> str:
    if not item.asks_confirmation:
        return ""
    if item.answer is None:
        return " · ?"
    return " · " + texts(item.answer.value)


def _line(item: AgendaItem, member: Member, texts: Texts) -> str:
    when = format_when(item.starts_at, member.timezone, texts.locale, item.all_day)
    return f"• {when} — {item.title}{_answer(item, texts)}"


async def on_events(
    message: Message, session: AsyncSession, member: Member | None, texts: Texts
) -> None:
    if member is None:
        await message.answer(texts("not_member"))
        return
    items = await agenda(session, member, utcnow(), limit=10)
    if not items:
        await message.answer(texts("events_none"))
        return
    lines = [texts("events_title"), *(_line(i, member, texts) for i in items)]
    await message.answer("\n".join(lines))


async def on_next(
    message: Message, session: AsyncSession, member: Member | None, texts: Texts
) -> None:
    if member is None:
        await message.answer(texts("not_member"))
        return
    items = await agenda(session, member, utcnow(), limit=1)
    if not items:
        await message.answer(texts("events_none"))
        return
    item = items[0]
    when = format_when(item.starts_at, member.timezone, texts.locale, item.all_day)
    where = f", {item.location}" if item.location else ""
    lines = [texts("next", title=item.title, when=when, where=where)]
    if item.asks_confirmation:
        if item.answer is not None:
            lines.append(texts("answer_line", answer=texts(item.answer.value)))
        else:
            lines.append(texts("answer_missing"))
            if item.deadline is not None:
                deadline = format_when(item.deadline, member.timezone, texts.locale)
                lines.append(texts("answer_by", deadline=deadline))
    await message.answer("\n".join(lines))


async def calendar_link(
    message: Message,
    session: AsyncSession,
    member: Member | None,
    texts: Texts,
    base_url: str,
    *,
    rotate: bool,
) -> None:
    """The member's own feed link. Links are stored hashed, so an existing one cannot be shown
    again; the member may replace it (the old one stops working)."""
    if member is None:
        await message.answer(texts("not_member"))
        return
    actor = system_actor(member.workspace_id, label=f"{member.name} (Telegram)")
    state = await feed_state(session, actor, FeedKind.member, member.id)
    if state.active and not rotate:
        assert state.created_at is not None
        created = format_when(state.created_at, member.timezone, texts.locale)
        button = InlineKeyboardButton(text=texts("calendar_rotate"), callback_data="calendar:new")
        await message.answer(
            texts("calendar_exists", created=created),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]),
        )
        return
    link = await rotate_feed(session, actor, FeedKind.member, member.id, base_url)
    await message.answer(texts("calendar_new", url=link.url, webcal=link.webcal))


async def on_unsubscribe(
    message: Message, session: AsyncSession, members: list[Member], texts: Texts
) -> None:
    if not members:
        await message.answer(texts("not_member"))
        return
    changed = unsubscribe(session, members, "bot")
    await message.answer(texts("unsubscribed" if changed else "already_unsubscribed"))


async def on_resubscribe(
    message: Message, session: AsyncSession, members: list[Member], texts: Texts
) -> None:
    if not members:
        await message.answer(texts("not_member"))
        return
    changed = resubscribe(session, members, "bot")
    await message.answer(texts("resubscribed" if changed else "already_subscribed"))
