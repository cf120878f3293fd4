"""The Mini App's one handler for core's errors: an alert fragment in the member's language,
escaped. An action or an htmx request gets a 422 for every refusal (htmx swaps only 2xx and 422
into the page, and a refusal must be seen whatever its kind); a page opened directly gets the
status of its kind (404, 403, …). Translated by the error's stable code; a message without a
translation yet is shown as core worded it."""

from __future__ import annotations

from html import escape

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.statuses import status_of
from core.errors import DomainError, Invalid
from webapp.words import WORDS

MINI_APP = "/app"


def describe(exc: DomainError, locale: str) -> str:
    key, values = exc.wording()
    template = WORDS.get(locale, WORDS["en"]).get(key)
    return exc.detail if template is None else str(template).format(**values)


async def mini_app_error(
    request: Request, exc: DomainError, page_status: int | None = None
) -> HTMLResponse:
    """``page_status``: the status for a page opened directly, if not the kind's."""
    # The member's language, known once the page identified them (webapp.routes.current).
    locale = getattr(request.state, "locale", "en")
    text = escape(describe(exc, locale))
    fragment = request.method != "GET" or request.headers.get("HX-Request") == "true"
    # A page opened directly: the API's status for the kind; bad input (a conflict too) is 422.
    status = 422 if fragment or isinstance(exc, Invalid) else page_status or status_of(exc, 422)
    return HTMLResponse(f'<p class="error" role="alert">{text}</p>', status_code=status)
