"""Signing Mini App initData the way Telegram does, so tests can sign in for real."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

BOT_TOKEN = "123456:WEBAPP"


def init_data(user: dict[str, Any], *, age_seconds: int = 0, token: str = BOT_TOKEN) -> str:
    fields = {
        "query_id": "AAH-test",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(time.time()) - age_seconds),
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)
