"""The email channel: plain-text mail over SMTP (aiosmtplib), answer buttons as signed links."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from core.delivery.channels import OutboundMessage, Outcome, OutcomeKind
from core.delivery.ratelimit import Lane, Limits
from core.settings import Settings
from core.teams.models import Member

# SMTP gives no retry-after; a temporary failure (4xx, connection trouble) waits this long.
TEMPORARY_FAILURE_WAIT = 60.0
ANSWER_PATH = "/answer/"


class EmailChannel:
    name = "email"
    answers_by_link = True
    button_data_limit = None  # answers are links, not button data
    posts_in_group_chats = False
    # The mail server sets no rate here; a workspace's own per-second limit still applies.
    lane = Lane("email", Limits(None, None, None))

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings
        self.hostname = settings.smtp_host

    def address(self, member: Member) -> str | None:
        return member.email or None

    def answer_link(self, data: str) -> str:
        return f"{self.settings.public_url}{ANSWER_PATH}{data}"

    def compose(
        self, address: str, message: OutboundMessage, button_data: list[str]
    ) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.smtp_from
        mail["To"] = address
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{uuid.uuid4().hex}@vestnik>"
        lines = [message.text]
        if message.buttons:
            lines.append("")
            lines += [
                f"{label}: {self.answer_link(data)}"
                for (label, _), data in zip(message.buttons, button_data, strict=True)
            ]
        if message.links:
            lines.append("")
            lines += [f"{label}: {url}" for label, url in message.links]
        mail.set_content("\n".join(lines))
        return mail

    async def warm(self) -> None:
        """Nothing to open ahead: each message is its own SMTP session."""

    async def send(self, address: str, message: OutboundMessage, button_data: list[str]) -> Outcome:
        mail = self.compose(address, message, button_data)
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.hostname,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            if 500 <= refusal.code < 600:
                return Outcome(OutcomeKind.unreachable, reason=f"{refusal.code} {refusal.message}")
            return _temporary(f"{refusal.code} {refusal.message}")
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                return _temporary(f"{exc.code} {exc.message}")
            return Outcome(OutcomeKind.failed, reason=f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return _temporary(str(exc) or type(exc).__name__)
        return Outcome(OutcomeKind.sent, provider_message_id=mail["Message-ID"])


def _temporary(reason: str) -> Outcome:
    return Outcome(OutcomeKind.retry, retry_after=TEMPORARY_FAILURE_WAIT, reason=reason)
