"""The MAX channel for the engine: sends through the MAX Bot API (worker.max_api).

MAX answers 429 without saying how long to wait, so a 429 is retried after RATE_LIMITED_WAIT
(and the shared limiter pauses the whole lane for it); the lane's limits (about 30 a second per
bot, 2 a second per chat) are kept by the shared Redis limiter below what MAX enforces.
"""

from __future__ import annotations

import httpx

from core.delivery.channels import OutboundMessage, Outcome, OutcomeKind
from core.delivery.ratelimit import Lane, Limits
from core.teams.models import Member, Messenger
from worker.channels import Warmth
from worker.max_api import MaxClient, MaxError, keyboard

RATE_LIMITED_WAIT = 1.0
SERVER_ERROR_WAIT = 1.0


class MaxChannel:
    name = "max"
    answers_by_link = False
    button_data_limit = 1024  # MAX: callback payload up to 1,024 bytes
    posts_in_group_chats = True

    def __init__(self, client: MaxClient, bot_id: str, limits: Limits | None = None) -> None:
        self.client = client
        self.lane = Lane(f"max:{bot_id}", limits or Limits(30.0, 2.0, None))
        self._warmth = Warmth(client.me)

    async def warm(self) -> None:
        await self._warmth.warm()

    async def close(self) -> None:
        await self.client.close()

    def address(self, member: Member) -> str | None:
        """``chat:<id>`` once the bot knows their dialog, else ``user:<id>`` (MAX then finds it)."""
        account = member.account(Messenger.max)
        if account is None:
            return None
        return f"chat:{account.chat_id}" if account.chat_id else f"user:{account.external_id}"

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        buttons = [
            (label, data) for (label, _), data in zip(message.buttons, button_data, strict=True)
        ]
        self._warmth.used()
        try:
            # A member's address says which; a group chat's is its id alone.
            kind, _, ident = address.rpartition(":") if ":" in address else ("chat", "", address)
            sent = await self.client.send(
                message.text,
                chat_id=int(ident) if kind == "chat" else None,
                user_id=int(ident) if kind == "user" else None,
                attachments=keyboard(buttons, list(message.links)),
            )
        except MaxError as exc:
            reason = str(exc)
            if exc.status == 429:
                return Outcome(
                    OutcomeKind.retry,
                    retry_after=RATE_LIMITED_WAIT,
                    reason=reason,
                    rate_limited=True,
                )
            if exc.status == 403 and exc.code == "chat.denied":
                return Outcome(OutcomeKind.unreachable, reason=reason)
            if exc.status == 404:
                return Outcome(OutcomeKind.unreachable, reason=reason)
            if exc.status >= 500:
                return Outcome(OutcomeKind.retry, retry_after=SERVER_ERROR_WAIT, reason=reason)
            return Outcome(OutcomeKind.failed, reason=reason)
        except httpx.ConnectError as exc:  # the request never left: safe to send again
            return Outcome(OutcomeKind.retry, retry_after=SERVER_ERROR_WAIT, reason=repr(exc))
        except httpx.HTTPError as exc:  # it may have arrived
            return Outcome(OutcomeKind.unknown, reason=f"no answer from MAX: {exc!r}"[:500])
        body = sent.get("body") or {}
        return Outcome(OutcomeKind.sent, provider_message_id=str(body.get("mid", "")) or None)
