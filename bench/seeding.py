"""Bulk seeding shared by the benchmarks: members with their Telegram or MAX accounts, in two
inserts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.teams.models import Member, MemberAccount, Messenger


async def insert_members(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert member rows; a row's ``telegram_user_id`` becomes its Telegram account, its
    ``max_user_id`` (with ``max_chat_id``) its MAX account."""
    accounts = []
    for row in rows:
        max_user, max_chat = row.pop("max_user_id", None), row.pop("max_chat_id", None)
        if max_user is not None:
            accounts.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": row["workspace_id"],
                    "member_id": row["id"],
                    "messenger": Messenger.max,
                    "external_id": str(max_user),
                    "chat_id": str(max_chat) if max_chat is not None else None,
                }
            )
        telegram = row.pop("telegram_user_id", None)
        if telegram is not None:
            accounts.append(
                {
                    "id": uuid.uuid4(),
                    "workspace_id": row["workspace_id"],
                    "member_id": row["id"],
                    "messenger": Messenger.telegram,
                    "external_id": str(telegram),
                    "chat_id": str(telegram),
                }
            )
    await session.execute(insert(Member), rows)
    if accounts:
        await session.execute(insert(MemberAccount), accounts)
