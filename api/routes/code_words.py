from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.teams import code_words
from core.teams.code_words import CodeWordCreate, CodeWordHit, CodeWordOut

router = APIRouter(route_class=UnitOfWork, prefix="/code-words", tags=["code words"])


class TrialMessage(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


@router.post("", status_code=201)
async def create_code_word(
    data: CodeWordCreate, actor: ActorDep, session: SessionDep
) -> CodeWordOut:
    """A phrase members may send the bot: it gives them ``tag_ids`` and/or answers with
    ``reply``. ``negative`` phrases veto code words on the messages they match."""
    out = await code_words.create_code_word(session, actor, data)
    return out


@router.get("")
async def list_code_words(actor: ActorDep, session: SessionDep) -> list[CodeWordOut]:
    return await code_words.list_code_words(session, actor)


@router.post("/test")
async def test_code_words(data: TrialMessage, actor: ActorDep, session: SessionDep) -> CodeWordHit:
    """What a member's message would trigger, without doing it."""
    return await code_words.test_message(session, actor, data.text)


@router.delete("/{word_id}", status_code=204)
async def delete_code_word(word_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    await code_words.delete_code_word(session, actor, word_id)
    return Response(status_code=204)
