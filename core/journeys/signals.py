"""Receiving a signal from another system: ``progress`` 20 for the member with external id
``crm-42``. Stored as it came, once per client key, and counted as the member's activity."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Invalid
from core.journeys.models import Signal
from core.journeys.triggers import on_signal
from core.teams.models import Member
from core.teams.permissions import Action, Actor
from core.teams.schemas import ExternalId

SignalName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]


class SignalIn(BaseModel):
    """Exactly one of ``member_id`` and ``external_id`` names the member."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"external_id": "crm-42", "name": "progress", "value": 20, "key": "crm-evt-9001"},
                {"member_id": "0b5f5a4e-3c1e-4d55-9a57-1d2f0b0f6a01", "name": "bought"},
            ]
        },
    )

    member_id: uuid.UUID | None = None
    external_id: ExternalId | None = None
    name: SignalName = Field(description="lower_snake_case, e.g. progress, bought, lesson_done")
    value: float | None = Field(default=None, description="A number, if the signal has one")
    key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="Your id for this signal: posting the same key again records nothing new",
    )

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _one_member(self) -> SignalIn:
        if (self.member_id is None) == (self.external_id is None):
            raise ValueError("name the member by exactly one of member_id and external_id")
        return self


class SignalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    member_id: uuid.UUID
    name: str
    value: float | None
    key: str | None
    source: str
    received_at: datetime


async def record_signal(
    session: AsyncSession, actor: Actor, data: SignalIn, now: datetime
) -> tuple[SignalOut, bool]:
    """Record a signal; returns it and whether it is new (False: its key was seen before, with
    the same member, name and value). The caller commits."""
    actor.require(Action.manage_people)
    where = (
        Member.id == data.member_id
        if data.member_id is not None
        else Member.external_id == data.external_id
    )
    member = await session.scalar(
        select(Member).where(Member.workspace_id == actor.workspace_id, where)
    )
    if member is None:
        field = "member_id" if data.member_id is not None else "external_id"
        raise Invalid(field, "no member of this workspace has this id")
    if data.key is not None:
        seen = await session.scalar(
            select(Signal).where(Signal.workspace_id == actor.workspace_id, Signal.key == data.key)
        )
        if seen is not None:
            if (seen.member_id, seen.name, seen.value) != (member.id, data.name, data.value):
                raise Conflict("key", "this key was used for another signal")
            return SignalOut.model_validate(seen), False
    signal = Signal(
        id=uuid.uuid4(),
        workspace_id=actor.workspace_id,
        member_id=member.id,
        name=data.name,
        value=data.value,
        key=data.key,
        source=actor.label[:200],
        received_at=now,
    )
    session.add(signal)
    member.last_activity_at = max(member.last_activity_at or now, now)
    await session.flush()
    await on_signal(session, signal, now)
    return SignalOut.model_validate(signal), True
