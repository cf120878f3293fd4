"""Members' messenger accounts, and the person a messenger says is talking to us.

A bot adapter turns its messenger's sender into a ``Person`` and hands that to core's use cases
(joining by invite, answering, settings, code words); core never sees an SDK's types. Which member
a person is comes from their account in that workspace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.teams.models import Member, MemberAccount, Messenger


@dataclass(frozen=True)
class Person:
    """Someone writing to a bot: who the messenger says they are."""

    messenger: Messenger
    external_id: str
    name: str = ""
    language: str | None = None

    @classmethod
    def on_telegram(cls, user_id: int, name: str = "", language: str | None = None) -> Person:
        return cls(Messenger.telegram, str(user_id), name, language)


def with_account(messenger: Messenger, external_id: str) -> ColumnElement[bool]:
    """Members that have this account (at most one per workspace)."""
    return Member.id.in_(
        select(MemberAccount.member_id).where(
            MemberAccount.messenger == messenger, MemberAccount.external_id == external_id
        )
    )


def has_account(messenger: Messenger) -> ColumnElement[bool]:
    return Member.id.in_(
        select(MemberAccount.member_id).where(MemberAccount.messenger == messenger)
    )


def set_account(member: Member, messenger: Messenger, external_id: str | None) -> None:
    """Give the member this account on ``messenger`` (None: remove it). The member must be loaded
    from, or added to, the session; the caller checks the right to do it and commits."""
    account = member.account(messenger)
    if external_id is None:
        if account is not None:
            member.accounts.remove(account)
        return
    # A Telegram bot writes to a user in the private chat that has the user's id.
    chat_id = external_id if messenger == Messenger.telegram else None
    if account is None:
        member.accounts.append(
            MemberAccount(
                id=uuid.uuid4(),
                workspace_id=member.workspace_id,
                messenger=messenger,
                external_id=external_id,
                chat_id=chat_id,
            )
        )
    elif account.external_id != external_id:
        account.external_id, account.chat_id = external_id, chat_id


async def member_by_account(
    session: AsyncSession, workspace_id: uuid.UUID, person: Person
) -> Member | None:
    return await session.scalar(
        select(Member).where(
            Member.workspace_id == workspace_id, with_account(person.messenger, person.external_id)
        )
    )


async def link_dialog(session: AsyncSession, person: Person, chat_id: str) -> None:
    """Remember the chat the person's messenger gave for their dialog with the bot on each of
    their accounts (MAX names a dialog apart from its user; Telegram's is the user's id)."""
    await session.execute(
        update(MemberAccount)
        .where(
            MemberAccount.messenger == person.messenger,
            MemberAccount.external_id == person.external_id,
            MemberAccount.chat_id.is_distinct_from(chat_id),
        )
        .values(chat_id=chat_id)
        .execution_options(synchronize_session="fetch")
    )


# The REST API's shorthands for a member's accounts: field → messenger (ids are numbers on both).
SHORTHANDS = {"telegram_user_id": Messenger.telegram, "max_user_id": Messenger.max}


def shorthand_id(external_id: str | None) -> int | None:
    """An account's id as the REST API's shorthands give it: a number, or None."""
    return int(external_id) if external_id is not None and external_id.isdigit() else None


def user_id_on(member: Member, messenger: Messenger) -> int | None:
    """The member's user id on ``messenger`` (a REST API shorthand), or None."""
    return shorthand_id(member.account_id(messenger))
