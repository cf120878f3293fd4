"""What a journey is made of, as leads write it: an entry trigger and ordered steps, each with a
stable ``key`` (statistics and runs are kept by key, so reordering or rewording a step loses
nothing). Validated here for shape; ``core.journeys.checks`` checks what needs the database
(the templates, tags and groups a step names) and the graph (no loop without a wait).

A step goes on to the next one in order unless it says where (``to``, ``then``/``else``, a
choice's ``to``); after the last step the run is finished.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.audience.rule import AudienceRule
from core.journeys.conditions import Test

StepKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
SignalName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Ids = Annotated[list[uuid.UUID], Field(max_length=50)]
MAX_STEPS = 100


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- triggers ---------------------------------------------------------------------------------


class JoinedWorkspace(_Part):
    type: Literal["joined_workspace"]


class JoinedGroup(_Part):
    type: Literal["joined_group"]
    group_id: uuid.UUID


class TagAdded(_Part):
    type: Literal["tag_added"]
    tag_id: uuid.UUID


class TagRemoved(_Part):
    type: Literal["tag_removed"]
    tag_id: uuid.UUID


class CodeWordReceived(_Part):
    type: Literal["code_word"]
    code_word_id: uuid.UUID


class SignalReceived(_Part):
    """``{"type": "signal", "name": "progress", "op": ">=", "value": 20}``; without ``op`` any
    signal of that name fires it."""

    type: Literal["signal"]
    name: SignalName
    op: Literal[">=", ">", "<=", "<", "==", "!="] | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> SignalReceived:
        if (self.op is None) != (self.value is None):
            raise ValueError("give both op and value, or neither")
        return self


class Inactive(_Part):
    """No answer, message, button, Mini App visit or signal for ``days`` days."""

    type: Literal["inactive"]
    days: Annotated[int, Field(ge=1, le=3650)]


class Schedule(_Part):
    """Everyone the audience reaches, on the given ISO weekdays (1 = Monday) at ``time`` in
    each member's own zone."""

    type: Literal["schedule"]
    weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1, max_length=7)]
    time: time
    audience: AudienceRule


class Unanswered(_Part):
    """A confirmation request left unanswered at its deadline (of one event, or of any)."""

    type: Literal["unanswered"]
    event_id: uuid.UUID | None = None


class Manual(_Part):
    """Nobody enters by themselves: leads put members in (API: POST …/runs)."""

    type: Literal["manual"]


Trigger = Annotated[
    JoinedWorkspace
    | JoinedGroup
    | TagAdded
    | TagRemoved
    | CodeWordReceived
    | SignalReceived
    | Inactive
    | Schedule
    | Unanswered
    | Manual,
    Field(discriminator="type"),
]


# --- steps ------------------------------------------------------------------------------------


class Message(_Part):
    """A saved template (its language variants and link buttons come with it), or text."""

    template_id: uuid.UUID | None = None
    text: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> Message:
        if (self.template_id is None) == (self.text is None):
            raise ValueError("give exactly one of template_id and text")
        return self


class _Step(_Part):
    key: StepKey
    title: Annotated[str, StringConstraints(max_length=200)] = ""


class Send(_Step):
    type: Literal["send"]
    message: Message


class Wait(_Step):
    """One of: a duration; until a local time of day; until the member's preferred time of day
    (morning 09:00, day 13:00, evening 19:00); until a date and time (in the member's zone when
    it has no offset)."""

    type: Literal["wait"]
    minutes: Annotated[int, Field(ge=1, le=525_600)] | None = None
    until_time: time | None = None
    preferred_time: bool = False
    until: datetime | None = None

    @model_validator(mode="after")
    def _one(self) -> Wait:
        given = [
            self.minutes is not None,
            self.until_time is not None,
            self.preferred_time,
            self.until is not None,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of minutes, until_time, preferred_time, until")
        return self


class Choice(_Part):
    label: Label
    to: StepKey | None = None


class CodeWordReply(_Part):
    code_word_id: uuid.UUID
    to: StepKey | None = None


class SignalReply(_Part):
    name: SignalName
    op: Literal[">=", ">", "<=", "<", "==", "!="] | None = None
    value: float | None = None
    to: StepKey | None = None


class WaitForReply(_Step):
    """Optionally send a message with ``choices`` as buttons, then wait for a button, a code
    word or a signal; each goes where it says. Silence for ``timeout_minutes`` goes to
    ``on_timeout`` (the next step if not given)."""

    type: Literal["wait_for_reply"]
    message: Message | None = None
    choices: Annotated[list[Choice], Field(max_length=6)] = Field(default_factory=list)
    code_words: Annotated[list[CodeWordReply], Field(max_length=20)] = Field(default_factory=list)
    signals: Annotated[list[SignalReply], Field(max_length=20)] = Field(default_factory=list)
    timeout_minutes: Annotated[int, Field(ge=1, le=525_600)]
    on_timeout: StepKey | None = None

    @model_validator(mode="after")
    def _something_to_wait_for(self) -> WaitForReply:
        if not (self.choices or self.code_words or self.signals):
            raise ValueError("wait for at least one of choices, code_words, signals")
        if self.choices and self.message is None:
            raise ValueError("choices are buttons under a message: give the message")
        return self


class Condition(_Step):
    type: Literal["condition"]
    test: Test
    then: StepKey | None = None
    else_: StepKey | None = Field(default=None, alias="else")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Tags(_Step):
    type: Literal["tags"]
    add: Ids = Field(default_factory=list)
    remove: Ids = Field(default_factory=list)


class Groups(_Step):
    type: Literal["groups"]
    add: Ids = Field(default_factory=list)
    remove: Ids = Field(default_factory=list)


class Alert(_Step):
    """A message to the workspace's leads naming the member, the journey and ``reason``."""

    type: Literal["alert"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Webhook(_Step):
    """POST the run as JSON to ``url``, signed (X-Vestnik-Signature: sha256=HMAC of the body
    with the journey's webhook secret); retried with backoff, every try logged."""

    type: Literal["webhook"]
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]


class GoTo(_Step):
    type: Literal["goto"]
    to: StepKey


class End(_Step):
    type: Literal["end"]


Step = Annotated[
    Send | Wait | WaitForReply | Condition | Tags | Groups | Alert | Webhook | GoTo | End,
    Field(discriminator="type"),
]
WAITS = ("wait", "wait_for_reply")


class Definition(_Part):
    """The part of a journey its editors write (and copy between workspaces)."""

    trigger: Trigger
    reentry: Literal["once", "after_end", "never_inside"] = "once"
    # A draft may have no steps yet (the builder adds them one by one); it cannot be activated.
    steps: Annotated[list[Step], Field(max_length=MAX_STEPS)]
    stuck_after_hours: Annotated[int, Field(ge=1, le=8760)] = 72


def next_keys(step: Step, following: str | None) -> list[tuple[str, str | None]]:
    """Where a step may lead: (field, key) pairs; None means "the run ends"."""
    if isinstance(step, GoTo):
        return [("to", step.to)]
    if isinstance(step, End):
        return []
    if isinstance(step, Condition):
        return [("then", step.then or following), ("else", step.else_ or following)]
    if isinstance(step, WaitForReply):
        out: list[tuple[str, str | None]] = [("on_timeout", step.on_timeout or following)]
        out += [(f"choices[{i}].to", c.to or following) for i, c in enumerate(step.choices)]
        out += [(f"code_words[{i}].to", c.to or following) for i, c in enumerate(step.code_words)]
        out += [(f"signals[{i}].to", c.to or following) for i, c in enumerate(step.signals)]
        return out
    return [("next", following)]
