"""Conditions a journey branches on: a member's tags, groups, roles, fields and signal values.

``{"field": "signal.progress", "op": ">=", "value": 20}``, ``{"field": "tag", "op": "has",
"value": "<tag id>"}``, ``{"field": "member.locale", "op": "==", "value": "ru"}``.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.journeys.models import Signal
from core.teams.models import Member, MemberGroup, MemberRole, MemberTag

MEMBER_FIELDS = (
    "locale",
    "timezone",
    "status",
    "preferred_time",
    "name",
    "email",
    "external_id",
)
MEMBERSHIPS = {"tag": ("has", "lacks"), "group": ("in", "not_in"), "role": ("has", "lacks")}
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
FIELD_OPS = ("==", "!=", "set", "unset")
SIGNAL_OPS = (*COMPARISONS, "exists", "missing")


def known_fields() -> str:
    fields = [*MEMBERSHIPS, *(f"member.{f}" for f in MEMBER_FIELDS), "signal.<name>"]
    return ", ".join(fields)


class Test(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    op: Annotated[str, StringConstraints(min_length=1, max_length=8)]
    value: str | float | None = None

    @model_validator(mode="after")
    def _known(self) -> Test:
        ops: tuple[str, ...]
        if self.field in MEMBERSHIPS:
            ops = MEMBERSHIPS[self.field]
            if not isinstance(self.value, str):
                raise ValueError(f"{self.field}: value must be the {self.field}'s id")
            try:
                uuid.UUID(self.value)
            except ValueError:
                raise ValueError(f"{self.field}: value must be the {self.field}'s id") from None
        elif self.field.startswith("member."):
            if self.field.removeprefix("member.") not in MEMBER_FIELDS:
                raise ValueError(f"unknown field {self.field!r}; known: {known_fields()}")
            ops = FIELD_OPS
        elif self.field.startswith("signal."):
            name = self.field.removeprefix("signal.")
            if not name or not name.replace("_", "a").isalnum() or not name[0].isalpha():
                raise ValueError(f"{self.field!r}: a signal name is lower_snake_case")
            ops = SIGNAL_OPS
            if self.op in COMPARISONS and not isinstance(self.value, int | float):
                raise ValueError(f"{self.field} {self.op}: value must be a number")
        else:
            raise ValueError(f"unknown field {self.field!r}; known: {known_fields()}")
        if self.op not in ops:
            raise ValueError(f"op for {self.field} is one of {', '.join(ops)}")
        return self

    @property
    def ref(self) -> uuid.UUID | None:
        """The tag, group or role the test names, if any."""
        return uuid.UUID(str(self.value)) if self.field in MEMBERSHIPS else None


async def holds(session: AsyncSession, member: Member, test: Test) -> bool:
    if test.field in MEMBERSHIPS:
        holder, column = {
            "tag": (MemberTag.member_id, MemberTag.tag_id),
            "group": (MemberGroup.member_id, MemberGroup.group_id),
            "role": (MemberRole.member_id, MemberRole.role_id),
        }[test.field]
        found = await session.scalar(
            select(column).where(holder == member.id, column == test.ref).limit(1)
        )
        return (found is not None) == (test.op in ("has", "in"))
    if test.field.startswith("member."):
        raw = getattr(member, test.field.removeprefix("member."))
        value = None if raw is None else str(raw)
        if test.op == "set":
            return bool(value)
        if test.op == "unset":
            return not value
        return COMPARISONS[test.op](value, None if test.value is None else str(test.value))
    name = test.field.removeprefix("signal.")
    latest = (
        await session.execute(
            select(Signal.value)
            .where(Signal.member_id == member.id, Signal.name == name)
            .order_by(Signal.received_at.desc(), Signal.id.desc())
            .limit(1)
        )
    ).first()
    if test.op == "exists":
        return latest is not None
    if test.op == "missing":
        return latest is None
    if latest is None or latest[0] is None:
        return False
    return compare(latest[0], test.op, test.value)


def compare(left: float | None, op: str | None, right: object) -> bool:
    """A signal's value against a trigger's or reply's condition (no op: any value passes)."""
    if op is None:
        return True
    if left is None or not isinstance(right, int | float):
        return False
    return COMPARISONS[op](left, float(right))
