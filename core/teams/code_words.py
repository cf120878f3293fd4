"""Code words: phrases members send the bot ("хочу на митап") that tag them and/or get a reply.

Matching is forgiving the way people type: case, punctuation, ё/е and emoji around the words do
not matter (``normalize``); a phrase matched by ``meaning`` also takes other words for the same
thing ("благодарю", "спс" for "спасибо"; core.meaning). A negative phrase ("спасибо, но нет") vetoes every code word on a
message that matches it, so "спасибо" can fire on thanks without firing on a polite no.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Invalid
from core.meaning.judge import Intent, match_phrase
from core.meaning.text import normalize
from core.notify.messages import check_broadcast_template, render_broadcast
from core.scoping import get_scoped, require_in_workspace
from core.teams.happenings import Happening, happened
from core.teams.models import CodeWord, CodeWordMatch, Member, Tag
from core.teams.permissions import Action, Actor, system_actor
from core.teams.schemas import IdList, MemberIds, Ref, _In
from core.teams.tags import tag_members

Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CodeWordCreate(_In):
    phrase: Phrase
    match: CodeWordMatch = CodeWordMatch.normalized
    negative: bool = Field(default=False, description="Vetoes code words on matching messages")
    tag_ids: IdList = Field(default_factory=list, description="Tags the sender gets")
    reply: Annotated[str, Field(max_length=4000)] = Field(
        default="", description="Answer, a template: {{ member.first_name }}, {{ member.name }}"
    )

    @model_validator(mode="after")
    def _does_something(self) -> CodeWordCreate:
        if self.negative and (self.tag_ids or self.reply):
            raise ValueError("a negative phrase only vetoes; it has no tags or reply")
        if not self.negative and not self.tag_ids and not self.reply.strip():
            raise ValueError("give tag_ids, a reply, or both")
        if not normalize(self.phrase):
            raise ValueError("phrase: has no letters or digits")
        return self


class CodeWordOut(BaseModel):
    id: uuid.UUID
    phrase: str
    match: CodeWordMatch
    negative: bool
    tags: list[Ref]
    reply: str


class MeaningScore(BaseModel):
    phrase: str
    score: float = Field(description="Similarity of meaning, 0 to 1")
    decision: str = Field(description="match, no, or unclear (close but not sure: no match)")
    why: str


class CodeWordHit(BaseModel):
    """What a message would do: the code words that fire (none if a negative phrase matched),
    and for the phrases matched by meaning, how close the message came."""

    vetoed_by: str | None
    fired: list[CodeWordOut]
    meaning: list[MeaningScore] = Field(default_factory=list)


async def _view(session: AsyncSession, word: CodeWord) -> CodeWordOut:
    tags = []
    if word.tag_ids:
        rows = await session.scalars(
            select(Tag).where(Tag.id.in_([uuid.UUID(t) for t in word.tag_ids])).order_by(Tag.name)
        )
        tags = [Ref(id=t.id, name=t.name) for t in rows]
    return CodeWordOut(
        id=word.id,
        phrase=word.phrase,
        match=CodeWordMatch(word.match),
        negative=word.negative,
        tags=tags,
        reply=word.reply,
    )


async def create_code_word(
    session: AsyncSession, actor: Actor, data: CodeWordCreate
) -> CodeWordOut:
    actor.require(Action.manage_people)
    await require_in_workspace(session, Tag, actor.workspace_id, data.tag_ids, "tag_ids", "tag")
    if data.reply.strip():
        try:
            check_broadcast_template(data.reply)
        except ValueError as exc:
            raise Invalid("reply", str(exc)) from None
    normalized = normalize(data.phrase)
    clash = await session.scalar(
        select(CodeWord.id).where(
            CodeWord.workspace_id == actor.workspace_id,
            CodeWord.normalized == normalized,
            CodeWord.match == data.match.value,
            CodeWord.negative.is_(data.negative),
        )
    )
    if clash is not None:
        raise Conflict("phrase", "this workspace already has this code word")
    word = CodeWord(
        workspace_id=actor.workspace_id,
        phrase=data.phrase,
        normalized=normalized,
        match=data.match.value,
        negative=data.negative,
        tag_ids=[str(t) for t in dict.fromkeys(data.tag_ids)],
        reply=data.reply.strip(),
    )
    session.add(word)
    await session.flush()
    return await _view(session, word)


async def list_code_words(session: AsyncSession, actor: Actor) -> list[CodeWordOut]:
    actor.require(Action.read)
    rows = await session.scalars(
        select(CodeWord)
        .where(CodeWord.workspace_id == actor.workspace_id)
        .order_by(CodeWord.negative, CodeWord.phrase)
    )
    return [await _view(session, w) for w in rows]


async def delete_code_word(session: AsyncSession, actor: Actor, word_id: uuid.UUID) -> None:
    actor.require(Action.manage_people)
    word = await get_scoped(session, CodeWord, actor.workspace_id, word_id, "code word")
    await session.delete(word)
    await session.flush()


def _matches(word: CodeWord, raw: str, normalized: str) -> bool:
    if word.match == CodeWordMatch.meaning.value:
        return match_phrase(raw, word.phrase).decision is Intent.yes
    if word.match == CodeWordMatch.exact.value:
        return raw.strip() == word.phrase
    if word.match == CodeWordMatch.normalized.value:
        return normalized == word.normalized
    return re.search(rf"(?<!\w){re.escape(word.normalized)}(?!\w)", normalized) is not None


@dataclass(frozen=True)
class Firing:
    vetoed_by: CodeWord | None
    fired: list[CodeWord]


async def match_message(session: AsyncSession, workspace_id: uuid.UUID, text: str) -> Firing:
    words = list(
        await session.scalars(select(CodeWord).where(CodeWord.workspace_id == workspace_id))
    )
    normalized = normalize(text)
    veto = next((w for w in words if w.negative and _matches(w, text, normalized)), None)
    if veto is not None:
        return Firing(veto, [])
    return Firing(None, [w for w in words if not w.negative and _matches(w, text, normalized)])


async def test_message(session: AsyncSession, actor: Actor, text: str) -> CodeWordHit:
    """What ``text`` would do if a member sent it (for leads setting code words up)."""
    actor.require(Action.read)
    firing = await match_message(session, actor.workspace_id, text)
    by_meaning = await session.scalars(
        select(CodeWord)
        .where(
            CodeWord.workspace_id == actor.workspace_id,
            CodeWord.match == CodeWordMatch.meaning.value,
        )
        .order_by(CodeWord.phrase)
    )
    scores = []
    for word in by_meaning:
        found = match_phrase(text, word.phrase)
        decision = {Intent.yes: "match", Intent.unclear: "unclear"}.get(found.decision, "no")
        scores.append(
            MeaningScore(
                phrase=word.phrase, score=round(found.score, 3), decision=decision, why=found.why
            )
        )
    return CodeWordHit(
        vetoed_by=firing.vetoed_by.phrase if firing.vetoed_by else None,
        fired=[await _view(session, w) for w in firing.fired],
        meaning=scores,
    )


async def apply_code_words(session: AsyncSession, member: Member, text: str) -> list[str] | None:
    """Fire the code words ``text`` matches for ``member``: tags (audited, by "code word …") and
    the replies to send. None if nothing matched (the bot then answers as usual)."""
    firing = await match_message(session, member.workspace_id, text)
    if not firing.fired:
        return None
    replies = []
    for word in firing.fired:
        await happened(session, Happening("code_word", member.workspace_id, [member.id], word.id))
        actor = system_actor(member.workspace_id, label=f"code word “{word.phrase}”")
        for tag_id in word.tag_ids:
            await tag_members(session, actor, uuid.UUID(tag_id), MemberIds(member_ids=[member.id]))
        if word.reply:
            replies.append(render_broadcast(word.reply, member).text)
    return replies
