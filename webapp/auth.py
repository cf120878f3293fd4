"""Who is using the Mini App: Telegram's or MAX's signed initData, exchanged for a short-lived
session (which says on which messenger the person signed in).

The raw initData string is checked server side (HMAC with the bot token, via aiogram's helper,
which compares in constant time and takes whatever fields the platform sent) and, because that
helper does not, for freshness of ``auth_date``. The session cookie is signed with vestnik's
secret key and carries its own CSRF token, which every htmx POST must send back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

COOKIE = "vestnik_session"
SESSION_LIFETIME = timedelta(hours=12)


class AuthError(Exception):
    """initData or a session that cannot be trusted; the message says why (no secrets)."""


@dataclass(frozen=True)
class Session:
    telegram_user_id: int  # the user id on ``messenger`` (named for the first one, Telegram)
    member_id: uuid.UUID
    csrf: str
    expires: datetime
    messenger: str = "telegram"


def max_user_from_init_data(
    bot_token: str, init_data: str, now: datetime, max_age: timedelta
) -> tuple[int, str]:
    """The MAX user (id, language) in valid, fresh initData; AuthError otherwise. MAX signs its
    Mini App data as Telegram does: HMAC-SHA256 keyed by HMAC-SHA256("WebAppData", bot token)
    over the sorted ``key=value`` lines without ``hash``, compared in constant time; freshness
    (``auth_date``) is ours to check."""
    fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=False))
    sent = fields.pop("hash", "")
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise AuthError("the MAX sign-in data is not valid")
    try:
        auth_date = datetime.fromtimestamp(int(fields["auth_date"]), UTC)
        user = json.loads(fields["user"])
        user_id = int(user.get("id") or user["user_id"])
    except (KeyError, ValueError, TypeError):
        raise AuthError("the MAX sign-in data names no user") from None
    if now - auth_date > max_age:
        raise AuthError("the MAX sign-in data is too old; reopen the app")
    if auth_date - now > timedelta(minutes=5):
        raise AuthError("the MAX sign-in data is from the future")
    return user_id, str(user.get("language_code") or "")


def telegram_user_from_init_data(
    bot_token: str, init_data: str, now: datetime, max_age: timedelta
) -> int:
    """The Telegram user id in valid, fresh initData; AuthError otherwise."""
    # Imported on use: aiogram takes seconds to import, which the API's start should not wait
    # for (the API warms it up in the background once it answers; see api/app.py).
    from aiogram.utils.web_app import safe_parse_webapp_init_data

    try:
        parsed = safe_parse_webapp_init_data(bot_token, init_data)
    except ValueError:
        raise AuthError("the Telegram sign-in data is not valid") from None
    auth_date = parsed.auth_date
    if auth_date.tzinfo is None:
        auth_date = auth_date.replace(tzinfo=UTC)
    if now - auth_date > max_age:
        raise AuthError("the Telegram sign-in data is too old; reopen the app")
    if auth_date - now > timedelta(minutes=5):
        raise AuthError("the Telegram sign-in data is from the future")
    if parsed.user is None:
        raise AuthError("the Telegram sign-in data names no user")
    return parsed.user.id


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, b"session:" + payload.encode(), hashlib.sha256).digest())


def issue_session(
    key: bytes,
    telegram_user_id: int,
    member_id: uuid.UUID,
    now: datetime,
    messenger: str = "telegram",
) -> str:
    payload = _b64(
        json.dumps(
            {
                "t": telegram_user_id,
                "m": str(member_id),
                "c": secrets.token_urlsafe(24),
                "e": int((now + SESSION_LIFETIME).timestamp()),
                "n": messenger,
            }
        ).encode()
    )
    return f"{payload}.{_mac(key, payload)}"


def read_session(key: bytes, cookie: str | None, now: datetime) -> Session | None:
    if not cookie or cookie.count(".") != 1:
        return None
    payload, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=="))
        session = Session(
            telegram_user_id=int(data["t"]),
            member_id=uuid.UUID(data["m"]),
            csrf=str(data["c"]),
            expires=datetime.fromtimestamp(int(data["e"]), UTC),
            messenger=str(data.get("n", "telegram")),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None


def csrf_ok(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), session.csrf.encode())
