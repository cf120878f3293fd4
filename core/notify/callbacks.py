"""Answer buttons' callback data: signed, bound to one delivery, small enough for Telegram (64 B).

A delivery names exactly one member, event and occurrence, and the signature stops anyone from
making up data for another delivery. The bot also checks that the person pressing the button is the
delivery's member, so a forwarded message cannot answer for someone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from core.events.models import Answer

_CODES = {Answer.going: "g", Answer.not_going: "n", Answer.maybe: "m"}
_ANSWERS = {code: answer for answer, code in _CODES.items()}
_VERSION = "v1"


@dataclass(frozen=True)
class AnswerButton:
    delivery_id: uuid.UUID
    answer: Answer


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, delivery_id: uuid.UUID, code: str) -> str:
    digest = hmac.new(key, delivery_id.bytes + code.encode(), hashlib.sha256).digest()
    return _b64(digest[:12])


def encode_answer(key: bytes, delivery_id: uuid.UUID, answer: Answer) -> str:
    code = _CODES[answer]
    return f"{_VERSION}.{_b64(delivery_id.bytes)}.{code}.{_mac(key, delivery_id, code)}"


def decode_answer(key: bytes, data: str) -> AnswerButton | None:
    """The button's meaning, or None if the data is malformed or its signature is wrong."""
    parts = data.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or parts[2] not in _ANSWERS:
        return None
    try:
        delivery_id = uuid.UUID(bytes=base64.urlsafe_b64decode(parts[1] + "=="))
    except ValueError:
        return None
    if not hmac.compare_digest(parts[3], _mac(key, delivery_id, parts[2])):
        return None
    return AnswerButton(delivery_id=delivery_id, answer=_ANSWERS[parts[2]])
