"""Group chats: /link and /unlink by a lead, a hint when the bot is added, and the answer
buttons under event announcements (each press records the presser's own answer)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import IS_NOT_MEMBER, MEMBER, ChatMemberUpdatedFilter, Command, CommandObject
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.edits import answer_press, edit_text
from bot.texts import Texts
from core.clock import utcnow
from core.delivery.answer_buttons import CHAT_VERSION
from core.notify.chat_posts import (
    ChatAnswerVerdict,
    LinkVerdict,
    link_chat,
    record_chat_answer,
    unlink_chat,
)
from core.notify.messages import BUTTONS
from core.teams.accounts import Person
from core.teams.models import Member, Messenger
from core.teams.self_service import leads_of

GROUPS = {ChatType.GROUP, ChatType.SUPERGROUP}


def build_router(signing_key: bytes) -> Router:
    router = Router(name="group chats")
    in_group = F.chat.type.in_(GROUPS)
    router.message.register(on_link, Command("link"), in_group)
    router.message.register(on_unlink, Command("unlink"), in_group)
    router.my_chat_member.register(
        on_added, in_group, ChatMemberUpdatedFilter(IS_NOT_MEMBER >> MEMBER)
    )

    async def on_chat_answer(
        callback: CallbackQuery, session: AsyncSession, person: Person, texts: Texts
    ) -> None:
        result = await record_chat_answer(
            session, signing_key, callback.data or "", person, utcnow()
        )
        words = (
            texts.other(result.locale) if result.verdict is not ChatAnswerVerdict.forged else texts
        )
        if result.verdict is not ChatAnswerVerdict.recorded or result.answer is None:
            key = {
                ChatAnswerVerdict.forged: "chat_not_member",
                ChatAnswerVerdict.not_member: "chat_not_member",
                ChatAnswerVerdict.not_invited: "chat_not_invited",
                ChatAnswerVerdict.closed: "chat_closed",
            }[result.verdict]
            await answer_press(callback, words(key, title=result.title), show_alert=True)
            return
        label = BUTTONS.get(result.locale, BUTTONS["en"])[result.answer]
        await session.commit()  # kept before the presser is told it is
        await answer_press(callback, words("chat_saved", answer=label))
        message = callback.message
        if isinstance(message, Message) and message.text and result.counts is not None:
            counts = texts.other(result.chat_locale)(
                "chat_counts",
                going=result.counts.going,
                not_going=result.counts.not_going,
                maybe=result.counts.maybe,
            )
            original = message.text.split("\n\n")[0]
            await edit_text(message, f"{original}\n\n{counts}", message.reply_markup)

    router.callback_query.register(on_chat_answer, F.data.startswith(f"{CHAT_VERSION}."))
    return router


async def _lead_here(
    message: Message, session: AsyncSession, members: list[Member], texts: Texts
) -> Member | None:
    """The first of the sender's memberships where they lead, or a refusal."""
    for member in members:
        if await leads_of(session, member):
            return member
    await message.answer(texts("chat_lead_only"))
    return None


async def on_link(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    members: list[Member],
    texts: Texts,
    messenger: Messenger,
) -> None:
    lead = await _lead_here(message, session, members, texts)
    if lead is None:
        return
    name = (command.args or "").strip()
    if not name:
        await message.answer(texts("chat_link_usage"))
        return
    verdict, group = await link_chat(
        session, lead, messenger, message.chat.id, message.chat.title or "", name, texts.locale
    )
    if verdict is LinkVerdict.no_such_group:
        await message.answer(texts("chat_no_group", name=name[:100]))
    elif verdict is LinkVerdict.other_workspace:
        await message.answer(texts("chat_other_workspace"))
    else:
        assert group is not None
        await message.answer(texts("chat_linked", group=group.name))


async def on_unlink(
    message: Message,
    session: AsyncSession,
    members: list[Member],
    texts: Texts,
    messenger: Messenger,
) -> None:
    lead = await _lead_here(message, session, members, texts)
    if lead is None:
        return
    done = await unlink_chat(session, lead, messenger, message.chat.id)
    await message.answer(texts("chat_unlinked" if done else "chat_not_linked"))


async def on_added(update: ChatMemberUpdated, texts: Texts) -> None:
    await update.answer(texts("chat_added"))
