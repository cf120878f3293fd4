"""A person blocks or unblocks the bot (my_chat_member in their private chat; on MAX, the bot
stopped)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import KICKED, MEMBER, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.delivery.channels import Channel
from core.teams.models import Member, Messenger
from core.teams.self_service import blocked_the_bot, came_back


def build_router(channels: Sequence[Channel]) -> Router:
    """``channels``: those the worker sends through, to tell whether anything still reaches a
    member who blocked the bot."""
    router = Router(name="blocking")

    async def on_blocked(
        update: ChatMemberUpdated,
        session: AsyncSession,
        members: list[Member],
        messenger: Messenger,
    ) -> None:
        await blocked_the_bot(session, members, messenger, utcnow(), channels)

    async def on_unblocked(
        update: ChatMemberUpdated,
        session: AsyncSession,
        members: list[Member],
        messenger: Messenger,
    ) -> None:
        await came_back(session, members, messenger)

    private = F.chat.type == ChatType.PRIVATE
    router.my_chat_member.register(on_blocked, private, ChatMemberUpdatedFilter(MEMBER >> KICKED))
    router.my_chat_member.register(on_unblocked, private, ChatMemberUpdatedFilter(KICKED >> MEMBER))
    return router
