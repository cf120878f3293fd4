"""MAX Bot API over plain HTTP (httpx): the calls vestnik makes, and MAX's errors as one type.

Not the ``maxapi`` SDK: read from its code (1.2.3), it does not handle 429 (MAX gives no retry
hint, so the caller must pace and back off), its edits always send ``attachments: []`` (which
drops the keyboard), it refuses texts of exactly 4,000 characters and counts characters where MAX
counts UTF-16 units, and it calls ``GET /chats/{id}`` for every incoming update. Six endpoints
over httpx are less code than working around those, and each call's outcome stays ours to map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

API_URL = "https://platform-api2.max.ru"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass
class MaxError(Exception):
    """MAX answered with an error: HTTP ``status`` and its ``{code, message}``."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def keyboard(
    buttons: list[tuple[str, str]], links: list[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    """``attachments`` with an inline keyboard: callback buttons in one row (MAX allows 7), each
    link on a row of its own; [] for none (on an edit, [] removes the keyboard)."""
    rows: list[list[dict[str, Any]]] = []
    if buttons:
        rows.append([{"type": "callback", "text": t, "payload": p} for t, p in buttons])
    rows += [[{"type": "link", "text": t, "url": u}] for t, u in links or []]
    return [{"type": "inline_keyboard", "payload": {"buttons": rows}}] if rows else []


class MaxClient:
    """One bot's calls. The token goes in the Authorization header only (MAX refuses it in the
    query), without "Bearer"."""

    def __init__(self, token: str, api_url: str = API_URL, http: httpx.AsyncClient | None = None):
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._own = http is None
        self._base = api_url.rstrip("/")
        self.token = token
        self._headers = {"Authorization": token}

    async def close(self) -> None:
        if self._own:
            await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        wait: float | None = None,
    ) -> dict[str, Any]:
        response = await self._http.request(
            method,
            f"{self._base}{path}",
            params=params,
            json=body,
            headers=self._headers,
            timeout=wait if wait is not None else TIMEOUT,
        )
        if response.status_code >= 400:
            try:
                error = response.json()
            except ValueError:
                error = {}
            raise MaxError(
                response.status_code,
                str(error.get("code", "http")),
                str(error.get("message", response.text[:200])),
            )
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def me(self) -> dict[str, Any]:
        return await self._call("GET", "/me")

    async def send(
        self,
        text: str,
        *,
        user_id: int | None = None,
        chat_id: int | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """POST /messages to a user (their dialog) or a chat; the sent message."""
        params = {"user_id": user_id} if user_id is not None else {"chat_id": chat_id}
        assert user_id is not None or chat_id is not None
        body: dict[str, Any] = {"text": text}
        if attachments:
            body["attachments"] = attachments
        found = await self._call("POST", "/messages", params=params, body=body)
        return dict(found.get("message") or {})

    async def edit(
        self, message_id: str, text: str | None, attachments: list[dict[str, Any]]
    ) -> None:
        """PUT /messages: ``attachments`` replace the old ones ([] removes the keyboard); a
        ``text`` of None leaves the text as it is."""
        body: dict[str, Any] = {"attachments": attachments}
        if text is not None:
            body["text"] = text
        await self._call("PUT", "/messages", params={"message_id": message_id}, body=body)

    async def answer(self, callback_id: str, notification: str) -> None:
        await self._call(
            "POST",
            "/answers",
            params={"callback_id": callback_id},
            body={"notification": notification},
        )

    async def updates(
        self, marker: int | None, seconds: int = 30
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A long poll: the updates after ``marker`` (waits up to ``seconds`` for one)."""
        params: dict[str, Any] = {"timeout": seconds, "limit": 100}
        if marker is not None:
            params["marker"] = marker
        found = await self._call("GET", "/updates", params=params, wait=seconds + 10)
        return list(found.get("updates") or []), found.get("marker", marker)

    async def subscribe(self, url: str, secret: str) -> None:
        await self._call(
            "POST",
            "/subscriptions",
            body={
                "url": url,
                "secret": secret,
                "update_types": [
                    "bot_started",
                    "bot_stopped",
                    "message_created",
                    "message_callback",
                ],
            },
        )
