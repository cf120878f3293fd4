"""Refuse text with the NUL character (U+0000) in a query, a JSON body or a form, as a 422 naming
the field: Postgres cannot store it, and a query with it fails inside the database otherwise."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import field_name, send_problem

NUL = "\x00"
MESSAGE = "must not contain the NUL character (U+0000)"


def _nul_fields(value: Any, path: tuple[int | str, ...] = ()) -> list[str]:
    """Dotted names of every string (key or value) in parsed JSON that holds a NUL."""
    if isinstance(value, str):
        return [field_name(path)] if NUL in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                found.append(field_name((*path, key)))
            found += _nul_fields(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nul_fields(item, (*path, index))
    return found


def _form_fields(raw: str) -> list[str]:
    return [name for name, value in parse_qsl(raw, keep_blank_values=True) if NUL in name + value]


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = _form_fields(scope["query_string"].decode("latin-1"))
        if NUL in scope["path"]:
            fields.append("path")
        kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
        body: bytes | None = None
        if kind in (b"application/json", b"application/x-www-form-urlencoded"):
            body = await _read_all(receive)  # at most the size limit (BodySizeLimit runs first)
            text = body.decode("utf-8", errors="replace")
            if kind == b"application/x-www-form-urlencoded":
                fields += _form_fields(text)
            elif "\\u0000" in text or NUL in text:
                with contextlib.suppress(ValueError):  # not JSON: the route says so
                    fields += _nul_fields(json.loads(text))
        if fields:
            await _refuse(send, fields)
            return
        await self.app(scope, _replay(body, receive) if body is not None else receive, send)


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send: Send, fields: list[str]) -> None:
    errors = [{"field": f, "message": MESSAGE} for f in dict.fromkeys(fields)]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    await send_problem(send, 422, "Invalid input", detail, errors)
