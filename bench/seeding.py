"""Bulk seeding shared by the benchmarks: members with their Telegram accounts, in two inserts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.teams.models import Member, MemberAccount, Messenger


async def insert_members(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert member rows; a row's ``telegram_user_id`` becomes its Telegram account."""
    accounts = []
    for row in rows:
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
