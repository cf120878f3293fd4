"""The Mini App's one handler for core's errors: an alert fragment in the member's language,
escaped. An action or an htmx request gets a 422 for every refusal (htmx swaps only 2xx and 422
into the page, and a refusal must be seen whatever its kind); a page opened directly gets the
status of its kind (404, 403, …). Translated by the error's stable code; a message without a
translation yet is shown as core worded it."""

from __future__ import annotations

from html import escape

from fastapi import Request
from fastapi.responses import HTMLResponse

from core.errors import DomainError, Forbidden, Invalid, NotFound, Unauthorized
from webapp.words import WORDS

MINI_APP = "/app"


def describe(exc: DomainError, locale: str) -> str:
    words = WORDS.get(locale, WORDS["en"])
    template = words.get(f"error_{exc.code}")
    if template is None:
        return exc.detail
    if isinstance(exc, Invalid):
        first = exc.errors[0]
        return str(template).format(field=first.field, message=first.message)
    return str(template).format(detail=exc.detail, **exc.params)


async def mini_app_error(request: Request, exc: DomainError) -> HTMLResponse:
    # The member's language, known once the page identified them (webapp.routes.current).
    locale = getattr(request.state, "locale", "en")
    text = escape(describe(exc, locale))
    fragment = request.method != "GET" or request.headers.get("HX-Request") == "true"
    status = 422 if fragment else _status(exc)
    return HTMLResponse(f'<p class="error" role="alert">{text}</p>', status_code=status)


def _status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Unauthorized):
        return 401
    return 422
