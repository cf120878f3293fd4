"""Answer links sent by email: a page that asks to confirm, then records the answer (to an
event's confirmation request, or a journey's question).

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
from core.journeys.triggers import ChoiceVerdict, describe_choice_link, is_choice, press_choice
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
        "choice": "Your answer:",
        "chosen": "Recorded: {answer}.",
        "choice_closed": "This question is closed: it was answered or its time ran out.",
    },
    "ru": {
        "confirm": "Ваш ответ про «{title}»:",
        "send": "Подтвердить",
        "recorded": "Записали: «{title}» — {answer}. Ответ можно изменить до срока.",
        "closed": "Ответы на «{title}» больше не принимаются.",
        "forged": "Эта ссылка недействительна.",
        "choice": "Ваш ответ:",
        "chosen": "Записали: {answer}.",
        "choice_closed": "На этот вопрос уже ответили, или время ответа вышло.",
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


def _confirm_form(locale: str, question: str, answer: str) -> HTMLResponse:
    words = _TEXT.get(locale, _TEXT["en"])
    return _page(
        locale,
        f"<p>{escape(question)} <strong>{escape(answer)}</strong></p>"
        f'<form method="post"><button type="submit">{escape(words["send"])}</button></form>',
    )


async def _choice_page(data: str, request: Request, session: SessionDep) -> HTMLResponse:
    result = await describe_choice_link(session, request.app.state.settings.signing_key, data)
    words = _TEXT.get(result.locale, _TEXT["en"])
    if result.verdict is ChoiceVerdict.forged:
        return _page("en", f"<p>{escape(words['forged'])}</p>", 404)
    return _confirm_form(result.locale, words["choice"], result.label)


async def _choose(data: str, request: Request, session: SessionDep) -> HTMLResponse:
    key = request.app.state.settings.signing_key
    result = await press_choice(session, key, data, None, utcnow())
    words = _TEXT.get(result.locale, _TEXT["en"])
    if result.verdict is ChoiceVerdict.forged:
        return _page("en", f"<p>{escape(words['forged'])}</p>", 404)
    if result.verdict is not ChoiceVerdict.moved:
        return _page(result.locale, f"<p>{escape(words['choice_closed'])}</p>", 409)
    return _page(result.locale, f"<p>{escape(words['chosen'].format(answer=result.label))}</p>")


@router.get("/{data}", response_class=HTMLResponse)
async def confirm_page(data: str, request: Request, session: SessionDep) -> HTMLResponse:
    if is_choice(request.app.state.settings.signing_key, data, link=True):
        return await _choice_page(data, request, session)
    result = await describe_answer_link(session, request.app.state.settings.signing_key, data)
    words = _words(result)
    if result.verdict is ButtonVerdict.forged:
        return _page("en", f"<p>{escape(words['forged'])}</p>", 404)
    return _confirm_form(
        result.locale, words["confirm"].format(title=result.event_title), _label(result)
    )


@router.post("/{data}", response_class=HTMLResponse)
async def record(data: str, request: Request, session: SessionDep) -> HTMLResponse:
    key = request.app.state.settings.signing_key
    if is_choice(key, data, link=True):
        return await _choose(data, request, session)
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
