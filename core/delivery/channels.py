"""The one small interface every channel (Telegram, email, MAX, log) implements: what it is given
(an OutboundMessage), what it can do (its capabilities), and what it answers (an Outcome)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from core.delivery.ratelimit import Lane
from core.teams.models import Member


@dataclass(frozen=True)
class OutboundMessage:
    """Text, plus answer buttons (label, answer) when the message asks for an answer, and link
    buttons (label, URL) a lead added to a broadcast. The engine signs each answer into the
    button's data (core.delivery.answer_buttons); what an answer means is the subject's business."""

    text: str
    buttons: Sequence[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        """A one-line title for channels that need one (email): the text's first line."""
        first = self.text.split("\n", 1)[0]
        return first if len(first) <= 120 else first[:119] + "…"


class OutcomeKind(StrEnum):
    sent = "sent"
    retry = "retry"  # 429, 5xx, timeouts: try again after retry_after
    unreachable = "unreachable"  # blocked the bot, chat not found: stop trying this channel
    # The member never opened the bot: a bot cannot write first (Telegram's 403 "bot can't
    # initiate conversation"). Not a block: an invite is what helps, and once they press Start
    # the next messages arrive.
    not_joined = "not_joined"
    failed = "failed"  # anything else: recorded with the reason
    unknown = "unknown"  # the call may or may not have reached the messenger: never resent alone


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    provider_message_id: str | None = None
    retry_after: float | None = None
    reason: str = ""
    # A rate limit (429) says when to come back; it is not a failure and does not use up one of
    # the bounded attempts (the message still gives up once it would arrive too late).
    rate_limited: bool = False


class Channel(Protocol):
    name: str
    # Answers come back as links opened from the member's own mailbox (the address is the proof),
    # not as button presses whose presser the messenger names: signed apart, never interchangeable.
    answers_by_link: bool
    # Whose limits its sends count against (a bot, a mail server), shared by every worker.
    lane: Lane
    # Capabilities. The most bytes a button's data may hold (Telegram: 64), None without buttons
    # that carry data; and whether it can post into group chats a workspace linked.
    button_data_limit: int | None
    posts_in_group_chats: bool

    def address(self, member: Member) -> str | None:
        """Where this member is reached on this channel, or None if they cannot be."""
        ...

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        """Send once. ``button_data`` pairs with ``message.buttons``. Never raises for the
        provider's answers; those become an Outcome."""
        ...

    async def warm(self) -> None:
        """Have a connection open before a batch takes its slots: the first request on a cold
        one (TCP, TLS) arrives late and bunches with the next, and a messenger counts its limit
        where messages arrive. Cheap when the channel sent a moment ago; never raises."""
        ...
