"""The one small interface every channel (Telegram, email, log) implements, and its outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from core.notify.messages import OutboundMessage
from core.teams.models import Member


class OutcomeKind(StrEnum):
    sent = "sent"
    retry = "retry"  # 429, 5xx, timeouts: try again after retry_after
    unreachable = "unreachable"  # blocked the bot, chat not found: stop trying this channel
    failed = "failed"  # anything else: recorded with the reason


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

    def address(self, member: Member) -> str | None:
        """Where this member is reached on this channel, or None if they cannot be."""
        ...

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        """Send once. ``button_data`` pairs with ``message.buttons``. Never raises for the
        provider's answers; those become an Outcome."""
        ...
