"""Lead commands: /who <event> (who is coming) and /remind <group|#tag> <text> (a quick
broadcast through the engine, after a confirm step showing how many people it reaches)."""

from __future__ import annotations

import uuid

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.edits import edit_text, remove_buttons
from bot.errors import describe
from bot.texts import Texts
from core.audience.rule import AudienceRule, audience_query
from core.clock import utcnow
from core.errors import DomainError
from core.events.agenda import next_matching
from core.events.confirmations import tally
from core.notify.broadcasts import BroadcastCreate, create_broadcast
from core.notify.messages import format_when
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import Group, Member, MemberStatus, Tag
from core.teams.permissions import Actor
from core.teams.schemas import Ref
from core.teams.self_service import leads_of


class RemindFlow(StatesGroup):
    confirm = State()


def build_router() -> Router:
    router = Router(name="leads")
    router.message.register(on_who, Command("who"))
    router.message.register(on_remind, Command("remind"))
    router.callback_query.register(on_remind_choice, F.data.in_({"remind:send", "remind:cancel"}))
    router.message.register(
        on_remind_text, StateFilter(RemindFlow.confirm), F.text, ~F.text.startswith("/")
    )
    return router


def _names(people: list[Ref]) -> str:
    shown = ", ".join(p.name for p in people[:30])
    more = f" +{len(people) - 30}" if len(people) > 30 else ""
    return f": {shown}{more}" if people else ""


async def lead_or_refuse(
    message: Message, session: AsyncSession, member: Member | None, texts: Texts
) -> bool:
    if member is None:
        await message.answer(texts("not_member"))
        return False
    if not await leads_of(session, member):
        await message.answer(texts("lead_only"))
        return False
    return True


async def on_who(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    member: Member | None,
    texts: Texts,
) -> None:
    if not await lead_or_refuse(message, session, member, texts):
        return
    assert member is not None
    text = (command.args or "").strip()
    if not text:
        await message.answer(texts("who_usage"))
        return
    found = await next_matching(session, member.workspace_id, text[:100], utcnow())
    if found is None:
        await message.answer(texts("who_none", text=text[:100]))
        return
    event, recurrence_id, start = found
    board = await tally(session, event, recurrence_id)
    await message.answer(
        texts(
            "who_board",
            title=event.title,
            when=format_when(start, member.timezone, texts.locale, event.all_day),
            going_n=board.counts.going,
            going=_names(board.going),
            not_going_n=board.counts.not_going,
            not_going=_names(board.not_going),
            maybe_n=board.counts.maybe,
            maybe=_names(board.maybe),
            silent_n=board.counts.silent,
            silent=_names(board.silent),
        )
    )


async def _target(
    session: AsyncSession, workspace_id: uuid.UUID, args: str
) -> tuple[AudienceRule, str, str] | None:
    """The audience a /remind names, its display name and the rest of the text: "#tag text",
    or a group name (which may have spaces) then the text."""
    if args.startswith("#"):
        name, _, rest = args[1:].partition(" ")
        tag_id = await session.scalar(
            select(Tag.id).where(
                Tag.workspace_id == workspace_id, func.lower(Tag.name) == name.lower()
            )
        )
        return (AudienceRule(tags=[tag_id]), f"#{name}", rest.strip()) if tag_id else None
    words = args.split()
    for size in range(min(len(words), 6), 0, -1):
        name = " ".join(words[:size])
        found = await session.execute(
            select(Group.id, Group.name).where(
                Group.workspace_id == workspace_id, func.lower(Group.name) == name.lower()
            )
        )
        row = found.first()
        if row is not None:
            return AudienceRule(groups=[row[0]]), row[1], " ".join(words[size:])
    return None


async def on_remind(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    member: Member | None,
    texts: Texts,
    state: FSMContext,
) -> None:
    if not await lead_or_refuse(message, session, member, texts):
        return
    assert member is not None
    args = (command.args or "").strip()
    if not args:
        await message.answer(texts("remind_usage"))
        return
    found = await _target(session, member.workspace_id, args)
    if found is None:
        name = args.split()[0].lstrip("#")
        await message.answer(texts("remind_unknown", name=name[:64]))
        return
    rule, target, text = found
    if not text:
        await message.answer(texts("remind_usage"))
        return
    count = await session.scalar(
        audience_query(member.workspace_id, rule)
        .where(Member.status == MemberStatus.active.value)
        .with_only_columns(func.count())
        .order_by(None)
    )
    if not count:
        await message.answer(texts("remind_empty", target=target))
        return
    await state.set_state(RemindFlow.confirm)
    await state.update_data(audience=rule.model_dump(mode="json"), text=text, target=target)
    buttons = [
        InlineKeyboardButton(text=texts("remind_send"), callback_data="remind:send"),
        InlineKeyboardButton(text=texts("remind_cancel"), callback_data="remind:cancel"),
    ]
    await message.answer(
        texts("remind_confirm", count=count, target=target, text=text),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons]),
    )


async def on_remind_choice(
    callback: CallbackQuery,
    session: AsyncSession,
    member: Member | None,
    texts: Texts,
    state: FSMContext,
) -> None:
    await callback.answer()
    message = callback.message
    if not isinstance(message, Message):
        return
    data = await state.get_data()
    if await state.get_state() != RemindFlow.confirm.state or "text" not in data:
        await remove_buttons(message)
        return
    await state.clear()
    if callback.data == "remind:cancel" or member is None:
        await edit_text(message, texts("cancelled"), None)
        return
    if not await leads_of(session, member):
        await edit_text(message, texts("lead_only"), None)
        return
    actor = Actor(member.workspace_id, BuiltinRole.lead, label=f"{member.name} (Telegram)")
    request = BroadcastCreate(
        audience=AudienceRule.model_validate(data["audience"]), text=data["text"]
    )
    try:
        out, _ = await create_broadcast(session, actor, request)
    except DomainError as exc:
        await edit_text(message, texts("remind_bad", error=describe(exc, texts)), None)
        return
    await edit_text(message, texts("remind_queued", count=out.recipients), None)


async def on_remind_text(message: Message, texts: Texts) -> None:
    await message.answer(texts("choose_button"))
