"""Signing Mini App initData the way Telegram does, so tests can sign in for real; the Mini App
served in-process for server-side tests."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from core.clock import utcnow
from core.settings import Settings

BOT_TOKEN = "123456:WEBAPP"


def init_data(
    user: dict[str, Any], *, age_seconds: int = 0, token: str = BOT_TOKEN, **extra: str
) -> str:
    """initData signed as Telegram signs it (MAX signs its own the same way)."""
    fields = {
        "query_id": "AAH-test",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(utcnow().timestamp()) - age_seconds),
        **extra,
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(update={"telegram_token": SecretStr(BOT_TOKEN)})
    app = create_app(configured)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
        ) as client,
    ):
        yield client


async def sign_in(site: httpx.AsyncClient, user: dict[str, Any]) -> str:
    """Sign in as a Telegram user; returns the page's CSRF token."""
    site.cookies.clear()
    response = await site.post("/app/auth", data={"init_data": init_data(user)})
    assert response.status_code == 204, response.text
    page = await site.get("/app")
    return page.text.split('"X-CSRF-Token": "')[1].split('"')[0]
