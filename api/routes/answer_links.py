"""Answer links sent by email: a page that asks to confirm, then records the answer.

The GET only shows what will be recorded, because mail scanners open links; the answer is
recorded by the form's POST. The signed link is the only credential, as with button data.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.clock import utcnow
from core.events.models import Answer
from core.notify.answers import (
    ButtonResult,
    ButtonVerdict,
    describe_answer_link,
    record_link_answer,
)
from core.notify.messages import BUTTONS

router = APIRouter(
    route_class=UnitOfWork, prefix="/answer", tags=["answer links"], include_in_schema=False
)

_TEXT = {
    "en": {
        "confirm": "Your answer for «{title}»:",
        "send": "Confirm",
        "recorded": "Recorded: «{title}» — {answer}. You can change it until the deadline.",
        "closed": "Answers for «{title}» are closed.",
        "forged": "This link is not valid.",
    },
    "ru": {
        "confirm": "Ваш ответ про «{title}»:",
        "send": "Подтвердить",
        "recorded": "Записали: «{title}» — {answer}. Ответ можно изменить до срока.",
        "closed": "Ответы на «{title}» больше не принимаются.",
        "forged": "Эта ссылка недействительна.",
    },
}


def _page(locale: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>vestnik</title></head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _words(result: ButtonResult) -> dict[str, str]:
    return _TEXT.get(result.locale, _TEXT["en"])


def _label(result: ButtonResult) -> str:
    answer = result.answer or Answer.maybe
    return BUTTONS.get(result.locale, BUTTONS["en"])[answer]


@router.get("/{data}", response_class=HTMLResponse)
async def confirm_page(data: str, request: Request, session: SessionDep) -> HTMLResponse:
    result = await describe_answer_link(session, request.app.state.settings.signing_key, data)
    words = _words(result)
    if result.verdict is ButtonVerdict.forged:
        return _page("en", f"<p>{escape(words['forged'])}</p>", 404)
    question = escape(words["confirm"].format(title=result.event_title))
    return _page(
        result.locale,
        f"<p>{question} <strong>{escape(_label(result))}</strong></p>"
        f'<form method="post"><button type="submit">{escape(words["send"])}</button></form>',
    )


@router.post("/{data}", response_class=HTMLResponse)
async def record(data: str, request: Request, session: SessionDep) -> HTMLResponse:
    key = request.app.state.settings.signing_key
    result = await record_link_answer(session, key, data, utcnow())
    words = _words(result)
    if result.verdict is ButtonVerdict.forged:
        return _page("en", f"<p>{escape(words['forged'])}</p>", 404)
    if result.verdict is ButtonVerdict.closed:
        return _page(
            result.locale, f"<p>{escape(words['closed'].format(title=result.event_title))}</p>", 409
        )
    text = words["recorded"].format(title=result.event_title, answer=_label(result))
    return _page(result.locale, f"<p>{escape(text)}</p>")
