"""/start with an invite (deep link), greeting, and the time-zone question that follows."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.edits import edit_text
from bot.texts import Texts
from core.clock import utcnow
from core.teams.accounts import Person, has_account
from core.teams.invites import JoinVerdict, redeem_invite
from core.teams.models import Member, MemberStatus, Messenger
from core.teams.roles import lead_ids
from core.teams.self_service import came_back, memberships_of, set_timezone
from core.timezones import find_timezones

log = logging.getLogger(__name__)


class Setup(StatesGroup):
    timezone = State()


def build_router() -> Router:
    router = Router(name="joining")
    router.message.register(on_start, CommandStart())
    router.message.register(
        on_timezone_text, StateFilter(Setup.timezone), F.text, ~F.text.startswith("/")
    )
    router.callback_query.register(on_timezone_button, F.data.startswith("tz:"))
    return router


def _full_name(message: Message) -> str:
    user = message.from_user
    assert user is not None
    return " ".join(p for p in (user.first_name, user.last_name) if p)


async def on_start(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    members: list[Member],
    texts: Texts,
    state: FSMContext,
    bot: Bot,
    messenger: Messenger,
) -> None:
    user = message.from_user
    assert user is not None
    if members:
        await came_back(session, members, messenger)  # /start after a block
    token = (command.args or "").strip()
    if not token:
        if members:
            await message.answer(texts("hello_member", name=members[0].name))
        else:
            await message.answer(texts("stranger"))
        return
    joiner = Person(messenger, str(user.id), _full_name(message), texts.locale)
    result = await redeem_invite(session, token, joiner, utcnow())
    if result.verdict not in (JoinVerdict.joined, JoinVerdict.welcome_back):
        if result.verdict is JoinVerdict.account_in_use and result.member and result.workspace:
            reply = texts(
                "account_in_use", name=result.member.name, workspace=result.workspace.name
            )
        else:
            reply = texts(result.verdict.value)
        refused_for = result.member if result.verdict is JoinVerdict.not_yours else None
        if refused_for is not None:
            who = f"{_full_name(message)}, id {user.id}"
            await _tell_leads(session, bot, messenger, refused_for, who)
        await session.rollback()  # nothing of a refused invite is kept
        await message.answer(reply)
        return
    member = result.member
    assert member is not None and result.workspace is not None
    if member.locale != texts.locale and result.verdict is JoinVerdict.joined:
        texts = texts.other(member.locale)
    greeting = "joined" if result.verdict is JoinVerdict.joined else "welcome_back"
    await message.answer(texts(greeting, name=member.name, workspace=result.workspace.name))
    if result.verdict is JoinVerdict.joined:
        await _ask_timezone(message, texts, member.timezone, state)


async def _ask_timezone(message: Message, texts: Texts, current: str, state: FSMContext) -> None:
    await state.set_state(Setup.timezone)
    keep = InlineKeyboardButton(
        text=texts("keep_zone", zone=current), callback_data=f"tz:{current}"
    )
    await message.answer(
        texts("ask_timezone", zone=current),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[keep]]),
    )


async def _tell_leads(
    session: AsyncSession, bot: Bot, messenger: Messenger, member: Member, who: str
) -> None:
    """A forwarded personal invite was refused: the workspace's leads on the same messenger
    hear about it from the bot it was opened in."""
    leads = await session.scalars(
        select(Member).where(
            Member.id.in_(lead_ids(member.workspace_id)),
            has_account(messenger),
            Member.status == MemberStatus.active.value,
        )
    )
    for lead in leads:
        chat = lead.chat_on(messenger)
        if chat is None:  # a MAX lead who has not written to the bot yet
            continue
        text = Texts(lead.locale, messenger)("lead_not_yours", who=who, member=member.name)
        try:
            await bot.send_message(chat_id=int(chat), text=text)
        except Exception:  # a lead who blocked the bot must not break the refusal
            log.warning("could not tell lead %s about a refused invite", lead.id)


async def apply_timezone(
    session: AsyncSession, person: Person, zone: str, texts: Texts, now: datetime
) -> str:
    """Set the zone on every membership of this account; the confirmation to show."""
    members = await memberships_of(session, person)
    set_timezone(members, zone)
    local = now.astimezone(ZoneInfo(zone)).strftime("%H:%M")
    return texts("timezone_set", zone=zone, local=local)


async def on_timezone_text(
    message: Message, session: AsyncSession, person: Person, texts: Texts, state: FSMContext
) -> None:
    assert message.text is not None
    found = find_timezones(message.text)
    if not found:
        await message.answer(texts("timezone_unknown", text=message.text[:60]))
        return
    if len(found) > 1:
        rows = [[InlineKeyboardButton(text=z, callback_data=f"tz:{z}")] for z in found]
        await message.answer(
            texts("timezone_pick", text=message.text[:60]),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
        )
        return
    await state.clear()
    await message.answer(await apply_timezone(session, person, found[0], texts, utcnow()))


async def on_timezone_button(
    callback: CallbackQuery,
    session: AsyncSession,
    person: Person,
    members: list[Member],
    texts: Texts,
    state: FSMContext,
) -> None:
    zone = (callback.data or "")[3:]
    if not members or zone not in find_timezones(zone):
        await callback.answer(
            texts("not_member" if not members else "choose_button"), show_alert=True
        )
        return
    await state.clear()
    done = await apply_timezone(session, person, zone, texts, utcnow())
    await callback.answer()
    if isinstance(callback.message, Message):
        await edit_text(callback.message, done, None)
