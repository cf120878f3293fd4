"""What crosses the boundary for people, roles, groups and tags."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from core.paging import PageParams
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import MemberStatus, Messenger, TimeOfDay
from core.timezones import check_timezone

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TagName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^,\n]+$")
]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
Locale = Literal["en", "ru"]
IdList = Annotated[list[uuid.UUID], Field(max_length=10_000)]


# Telegram's ids have at most 52 significant bits; Postgres keeps them as 64-bit integers.
TelegramId = Annotated[int, Field(gt=0, le=2**63 - 1)]
ExternalId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\S+$")
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A time of day in the member's zone, without an offset: "22:00" (seconds accepted, not kept).
# JSON Schema's "time" format demands an offset, so it is published as a pattern instead.
ClockTime = Annotated[
    time,
    AfterValidator(lambda t: t.replace(second=0, microsecond=0)),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$",
            "examples": ["22:00"],
        }
    ),
]


class QuietHours(_In):
    """A daily window, in the member's own zone, in which non-urgent messages wait.

    ``start`` after ``end`` means the window spans midnight (22:00 to 08:00).
    """

    start: ClockTime
    end: ClockTime


class MemberCreate(_In):
    name: Name
    telegram_user_id: TelegramId | None = Field(
        default=None,
        description="Shorthand for the member's Telegram account (its user id): sets, changes or (null) removes it. Changing someone's account is an owner's act.",
    )
    max_user_id: TelegramId | None = Field(
        default=None,
        description="Shorthand for the member's MAX account (its user id): sets, changes or (null) removes it. Changing someone's account is an owner's act.",
    )
    email: EmailStr | None = None
    external_id: ExternalId | None = Field(
        default=None,
        description="The id another system knows the member by (unique in the workspace); "
        "signals may name the member by it",
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA zone; the workspace's zone when omitted"
    )
    locale: Locale = "en"
    quiet_hours: QuietHours | None = None
    preferred_time: TimeOfDay = TimeOfDay.day
    role_ids: IdList | None = Field(
        default=None, description="Roles to assign; the built-in 'member' role when omitted"
    )


class MemberUpdate(_In):
    name: Name | None = None
    telegram_user_id: TelegramId | None = Field(
        default=None,
        description="Shorthand for the member's Telegram account (its user id): sets, changes or (null) removes it. Changing someone's account is an owner's act.",
    )
    max_user_id: TelegramId | None = Field(
        default=None,
        description="Shorthand for the member's MAX account (its user id): sets, changes or (null) removes it. Changing someone's account is an owner's act.",
    )
    email: EmailStr | None = None
    external_id: ExternalId | None = Field(
        default=None,
        description="The id another system knows the member by (unique in the workspace); "
        "signals may name the member by it",
    )
    timezone: TimeZoneName | None = None
    locale: Locale | None = None
    quiet_hours: QuietHours | None = None
    preferred_time: TimeOfDay | None = None
    preferred_messenger: Messenger | None = Field(
        default=None,
        description="Where their messages go first when they have several messengers; null: "
        "the one they joined with",
    )
    daily_report_at: ClockTime | None = Field(
        default=None,
        description="Leads: the local time of their daily report in the bot; null turns it off",
    )
    status: MemberStatus | None = None
    role_ids: IdList | None = None


class Ref(BaseModel):
    id: uuid.UUID
    name: str


class AccountOut(BaseModel):
    """A member's account on a messenger: the id it knows them by."""

    messenger: Messenger
    external_id: str


class MemberOut(BaseModel):
    id: uuid.UUID
    name: str
    telegram_user_id: int | None = Field(description="Their Telegram account's user id (shorthand)")
    max_user_id: int | None = Field(
        default=None, description="Their MAX account's user id (shorthand)"
    )
    accounts: list[AccountOut] = Field(description="Every messenger account of theirs")
    external_id: str | None = Field(default=None, description="The id another system knows them by")
    email: str | None
    timezone: str
    locale: str
    quiet_hours: QuietHours | None
    preferred_time: TimeOfDay
    preferred_messenger: Messenger | None = Field(
        description="Where their messages go first (null: the one they joined with)"
    )
    daily_report_at: ClockTime | None = Field(
        description="Leads get a daily report in the bot at this local time (null: none)"
    )
    status: MemberStatus
    last_activity_at: datetime | None
    created_at: datetime
    roles: list[Ref]
    groups: list[Ref]
    tags: list[Ref]


class MemberFilter(PageParams):
    q: str | None = Field(default=None, max_length=200, description="Part of name or email")
    status: MemberStatus | None = None
    group_id: uuid.UUID | None = None
    tag_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None


class RoleCreate(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class RoleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    builtin: bool


class GroupCreate(_In):
    name: ShortName
    description: Annotated[str, Field(max_length=2000)] = ""


class GroupUpdate(_In):
    name: ShortName | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None


class GroupOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    member_count: int
    created_at: datetime


class TagCreate(_In):
    name: TagName


class TagUpdate(_In):
    name: TagName


class TagOut(BaseModel):
    id: uuid.UUID
    name: str
    member_count: int
    created_at: datetime


class MergeInto(_In):
    into: uuid.UUID = Field(description="The group or tag that takes over; this one is deleted")


class MemberIds(_In):
    member_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=10_000)]


class BulkResult(BaseModel):
    changed: int = Field(description="Memberships actually added or removed")
    unchanged: int = Field(description="Members that already were (or were not) in it")


class TagChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tag_id: uuid.UUID | None
    tag_name: str
    action: Literal["added", "removed"]
    actor: str
    at: datetime


class TokenCreate(_In):
    name: ShortName
    role: BuiltinRole = BuiltinRole.lead
