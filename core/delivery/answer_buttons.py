"""Answer buttons' callback data: signed, bound to one delivery, small enough for Telegram (64 B).

A delivery names exactly one member and one job, and the signature stops anyone from making up
data for another delivery. The answers are the subject's words (``going``, ``not_going``,
``maybe``), carried as one letter each; what they mean is not the engine's business. The bot also checks that the person pressing the button is the
delivery's member, so a forwarded message cannot answer for someone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

# A journey's question has up to six choices, "choice0" … "choice5": one digit each.
_CODES = {"going": "g", "not_going": "n", "maybe": "m", **{f"choice{i}": str(i) for i in range(6)}}
_ANSWERS = {code: answer for answer, code in _CODES.items()}
BUTTON_VERSION = "v1"  # under a message to one member: names a delivery
LINK_VERSION = "e1"  # an emailed answer link: names a delivery, no presser to check
CHAT_VERSION = "c1"  # under an announcement in a group chat: names a chat post


@dataclass(frozen=True)
class AnswerButton:
    delivery_id: uuid.UUID
    answer: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, version: str, ident: uuid.UUID, code: str) -> str:
    # The version is signed too: data for a chat post can never pass for a delivery's.
    message = version.encode() + ident.bytes + code.encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest()[:12])


def encode_answer(key: bytes, ident: uuid.UUID, answer: str, version: str = BUTTON_VERSION) -> str:
    code = _CODES[answer]
    return f"{version}.{_b64(ident.bytes)}.{code}.{_mac(key, version, ident, code)}"


def decode_answer(key: bytes, data: str, version: str = BUTTON_VERSION) -> AnswerButton | None:
    """The button's meaning, or None if the data is malformed or its signature is wrong.
    ``delivery_id`` holds the chat post's id for ``CHAT_VERSION`` data."""
    parts = data.split(".")
    if len(parts) != 4 or parts[0] != version or parts[2] not in _ANSWERS:
        return None
    try:
        ident = uuid.UUID(bytes=base64.urlsafe_b64decode(parts[1] + "=="))
    except ValueError:
        return None
    if not hmac.compare_digest(parts[3], _mac(key, version, ident, parts[2])):
        return None
    return AnswerButton(delivery_id=ident, answer=_ANSWERS[parts[2]])
