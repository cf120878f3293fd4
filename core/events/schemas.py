"""What crosses the boundary for events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.audience.rule import AudienceRule
from core.events.models import Answer, EventStatus
from core.paging import PageParams
from core.teams.schemas import Ref
from core.timezones import check_timezone

MAX_OFFSET_MINUTES = 60 * 24 * 60  # 60 days

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
Location = Annotated[str, Field(max_length=500)]
RRuleText = Annotated[str, Field(max_length=500)]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET_MINUTES)]
Offsets = Annotated[list[Offset], Field(max_length=10)]
ExDates = Annotated[list[datetime], Field(max_length=1000)]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]

_LOCAL = (
    "A time without an offset is read in the event's time zone. A time the clock skips there (a "
    "DST gap) is read with the offset before the gap, and a series repeats at the time as given; "
    "a time that happens twice (a fall-back overlap) is the first, unless an offset says which."
)


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    location: Location = ""
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA zone; the workspace's zone when omitted"
    )
    all_day: bool = False
    starts_at: datetime | None = Field(default=None, description="Timed events. " + _LOCAL)
    ends_at: datetime | None = Field(default=None, description="Timed events. " + _LOCAL)
    start_date: date | None = Field(default=None, description="All-day events: first day")
    end_date: date | None = Field(
        default=None, description="All-day events: last day, inclusive (default: start_date)"
    )
    rrule: RRuleText | None = Field(
        default=None, description="RFC 5545 RRULE, e.g. 'FREQ=WEEKLY;BYDAY=MO,TH'"
    )
    exdates: ExDates = Field(
        default_factory=list, description="Occurrence starts to skip. " + _LOCAL
    )
    audience: AudienceRule = Field(default_factory=AudienceRule)
    reminder_offsets: Offsets | None = Field(
        default=None,
        description="Minutes before the start to remind, e.g. [1440, 60]; "
        "the workspace's default reminders when omitted",
    )
    confirmation_required: bool = False
    confirm_by: datetime | None = Field(
        default=None,
        description="Answer deadline for the first occurrence (kept as an offset for the rest). "
        + _LOCAL,
    )
    confirm_before_minutes: Offset | None = Field(
        default=None, description="Answer deadline as minutes before each start (default 0)"
    )
    show_attendees: bool = Field(
        default=False, description="Members of the audience may see who else is going"
    )


class EventUpdate(BaseModel):
    """Fields to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    location: Location | None = None
    timezone: TimeZoneName | None = None
    all_day: bool | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    rrule: RRuleText | None = None
    exdates: ExDates | None = None
    audience: AudienceRule | None = None
    reminder_offsets: Offsets | None = None
    confirmation_required: bool | None = None
    confirm_by: datetime | None = None
    confirm_before_minutes: Offset | None = None
    show_attendees: bool | None = None
    status: EventStatus | None = None


class EventOut(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    location: str
    timezone: str
    all_day: bool
    starts_at: datetime = Field(description="UTC")
    ends_at: datetime = Field(description="UTC")
    local_start: datetime = Field(description="The start in the event's zone, with its offset")
    local_end: datetime
    start_date: date | None
    end_date: date | None
    rrule: str | None
    exdates: list[datetime]
    audience: AudienceRule
    reminder_offsets: list[int]
    confirmation_required: bool
    confirm_before_minutes: int | None
    confirm_by: datetime | None = Field(description="Deadline of the first occurrence, UTC")
    show_attendees: bool
    status: EventStatus
    created_by: str
    created_at: datetime
    updated_at: datetime


class EventFilter(PageParams):
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    status: EventStatus | None = None
    q: Annotated[str, Field(max_length=200)] | None = None


class Occurrence(BaseModel):
    recurrence_id: datetime | None = Field(
        description="The start this occurrence has by the rule (UTC); null for a one-off event"
    )
    starts_at: datetime
    ends_at: datetime
    moved: bool = False
    local_start: datetime | None = Field(
        default=None, description="The start in the event's zone, with its offset"
    )
    local_end: datetime | None = Field(
        default=None, description="The end in the event's zone, with its offset"
    )

    def in_zone(self, zone: ZoneInfo) -> Occurrence:
        """The same occurrence, with its local times in ``zone`` filled in."""
        return self.model_copy(
            update={
                "local_start": self.starts_at.astimezone(zone),
                "local_end": self.ends_at.astimezone(zone),
            }
        )


class OccurrenceMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: datetime = Field(description="New start. " + _LOCAL)
    ends_at: datetime | None = Field(default=None, description="Default: keeps the duration")


class ConfirmationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Answer
    occurrence: datetime | None = Field(
        default=None,
        description="For a recurring event: the occurrence's recurrence_id (its start by the rule)",
    )


class ConfirmationOut(BaseModel):
    event_id: uuid.UUID
    member_id: uuid.UUID
    occurrence: datetime | None
    answer: Answer
    answered_at: datetime


class ConfirmationCounts(BaseModel):
    going: int
    not_going: int
    maybe: int
    silent: int


class ConfirmationBoard(BaseModel):
    """Who answered what, and who stayed silent, among the event's audience."""

    occurrence: datetime | None
    counts: ConfirmationCounts
    going: list[Ref]
    not_going: list[Ref]
    maybe: list[Ref]
    silent: list[Ref]
    not_joined: list[Ref] = Field(
        default_factory=list,
        description="Of the silent: never opened the bot, so no message reached them (invite them)",
    )
    unknown: list[Ref] = Field(
        default_factory=list,
        description="Of the silent: a message whose fate is unknown (a worker stopped mid-send)",
    )
