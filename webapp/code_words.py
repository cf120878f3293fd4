"""Code words in the Mini App: the workspace's phrases, adding one (matched exactly, normalized,
as whole words, or by meaning), and trying a phrase a member might send: which code words fire,
and for those matched by meaning, the score and the decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.errors import DomainError
from core.teams.code_words import (
    CodeWordCreate,
    CodeWordHit,
    create_code_word,
    list_code_words,
    test_message,
)
from core.teams.models import CodeWordMatch
from webapp.console import Console, LeadConsole, field_errors, undo
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/code-words", include_in_schema=False)


async def _section(
    request: Request,
    session: SessionDep,
    lead: Console,
    *,
    new: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    trial: str = "",
    hit: CodeWordHit | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = lead.context(
        words_list=await list_code_words(session, lead.actor),
        matches=[m.value for m in CodeWordMatch],
        new=new or {"phrase": "", "match": CodeWordMatch.meaning.value, "reply": ""},
        errors=errors or {},
        trial=trial,
        hit=hit,
    )
    return _page(request, "code_words.html", context, status)


@router.get("", response_class=HTMLResponse)
async def code_words_page(request: Request, session: SessionDep, lead: LeadConsole) -> HTMLResponse:
    return await _section(request, session, lead)


@router.post("", response_class=HTMLResponse)
async def add(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    phrase: Annotated[str, Form(max_length=200)] = "",
    match: Annotated[str, Form(max_length=16)] = "meaning",
    reply: Annotated[str, Form(max_length=4000)] = "",
) -> HTMLResponse:
    values = {"phrase": phrase, "match": match, "reply": reply}
    try:
        await create_code_word(session, lead.actor, CodeWordCreate.model_validate(values))
    except (DomainError, ValidationError) as exc:
        await undo(session, lead)
        errors = field_errors(exc, {"phrase": "phrase", "match": "match", "reply": "reply"})
        return await _section(request, session, lead, new=values, errors=errors, status=422)
    return await _section(request, session, lead)


@router.post("/test", response_class=HTMLResponse)
async def try_phrase(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> HTMLResponse:
    """What ``text`` would do if a member sent it: nothing is tagged or answered."""
    if not text.strip():
        return await _section(request, session, lead, status=422)
    hit = await test_message(session, lead.actor, text)
    return await _section(request, session, lead, trial=text, hit=hit)
