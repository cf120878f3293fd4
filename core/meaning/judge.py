"""Deciding what a reply means, for a confirmation request (going / not going / maybe), a
journey's question (which of its buttons) or a code word (is it this phrase).

The embedding finds what a reply is close to; rules cover what embeddings get wrong: a negation
("не приду" sits right next to "приду") disqualifies every positive reading, and after a
contrast ("спасибо, но нет") the last clause is the one that counts. Between a clear yes and a
clear no there is an explicit band where the decision is "unclear": the caller asks again with
buttons rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from core.meaning.model import embed, similarity
from core.meaning.text import clauses, negated, spell_out

if TYPE_CHECKING:
    from core.meaning.model import Vector

# Cosine similarity of USE-multilingual-v3 vectors. Chosen from tests/data/replies.csv (the
# closing note of the journeys-in-the-Mini-App issue gives the precision and recall they give).
SURE = 0.62  # at least this close to a class's nearest example, and …
MARGIN = 0.06  # … this much closer than to any other class: decided
RELATED = 0.45  # below this for every class: the reply is about something else
PHRASE_SURE = 0.78  # a code word matched by meaning
PHRASE_UNSURE = 0.62  # between: unclear (a code word does not fire; a lead sees why)


class Intent(StrEnum):
    yes = "yes"
    no = "no"
    maybe = "maybe"
    unrelated = "unrelated"
    unclear = "unclear"  # related to the question, but not clearly one answer: ask again


EXAMPLES: dict[Intent, tuple[str, ...]] = {
    Intent.yes: (
        "да",
        "да приду",
        "буду",
        "приду",
        "иду",
        "конечно буду",
        "обязательно",
        "участвую",
        "записывайте меня",
        "я в деле",
        "yes",
        "i will be there",
        "i am coming",
        "count me in",
        "sure",
        "going",
        "i can make it",
    ),
    Intent.no: (
        "нет",
        "не приду",
        "не смогу",
        "не получится",
        "не буду",
        "меня не будет",
        "я пас",
        "без меня",
        "занят",
        "no",
        "i cannot come",
        "i will not be there",
        "count me out",
        "not this time",
        "i am busy",
        "нет спасибо",
        "no thanks",
    ),
    Intent.maybe: (
        "может быть",
        "возможно",
        "не знаю",
        "пока не знаю",
        "посмотрим",
        "постараюсь",
        "не уверен",
        "как получится",
        "скажу позже",
        "maybe",
        "perhaps",
        "not sure",
        "i do not know yet",
        "we will see",
        "i will try",
        "it depends",
    ),
    Intent.unrelated: (
        "спасибо",
        "спасибо за напоминание",
        "привет",
        "во сколько начало",
        "где это будет",
        "thanks",
        "hello",
        "what time does it start",
        "where is it",
    ),
}
# Negated readings that still are not "no": "не знаю" is a maybe.
_NEGATED_MAYBE = ("не знаю", "не уверен", "не уверена", "не решил", "i do not know", "not sure")


@dataclass(frozen=True)
class Reading:
    intent: Intent
    score: float  # similarity to the nearest example of ``intent``
    runner_up: float  # … and of the next best class
    clause: str  # the part of the reply that was judged
    why: str


@lru_cache(maxsize=1)
def _example_vectors() -> dict[Intent, Vector]:
    """Each intent's examples as one matrix (rows: unit vectors), made once per process."""
    import numpy as np

    return {intent: np.stack([embed(e) for e in examples]) for intent, examples in EXAMPLES.items()}


def _scores(clause: str) -> dict[Intent, float]:
    vector = embed(clause)
    return {intent: float((m @ vector).max()) for intent, m in _example_vectors().items()}


def warm() -> None:
    """Load the model and embed the examples now (a process at start), not on a reply."""
    _example_vectors()


def _judge_clause(clause: str) -> Reading:
    scores = _scores(clause)
    if negated(clause):
        if any(clause.startswith(m) or f" {m}" in f" {clause}" for m in _NEGATED_MAYBE):
            scores[Intent.yes] = 0.0
            scores[Intent.no] = min(scores[Intent.no], scores[Intent.maybe] - MARGIN)
        else:
            # "не приду" is close to "приду": a negation rules every yes out.
            scores[Intent.no] = max(scores[Intent.no], scores[Intent.yes])
            scores[Intent.yes] = 0.0
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, score), (_, second) = ranked[0], ranked[1]
    if score < RELATED:
        return Reading(Intent.unrelated, score, second, clause, "close to no answer")
    if best is Intent.unrelated:
        return Reading(Intent.unrelated, score, second, clause, "closest to small talk")
    if score >= SURE and score - second >= MARGIN:
        return Reading(best, score, second, clause, "clear")
    return Reading(Intent.unclear, score, second, clause, f"between answers (nearest: {best})")


def read_answer(reply: str) -> Reading:
    """What a free-text reply to a yes/no/maybe question means."""
    if "?" in reply:
        return Reading(Intent.unrelated, 0.0, 0.0, reply, "a question, not an answer")
    words = spell_out(reply)
    if not words:
        return Reading(Intent.unrelated, 0.0, 0.0, "", "nothing to read")
    parts = clauses(words)
    if len(parts) > 1:
        last = _judge_clause(parts[-1])
        if last.intent in (Intent.yes, Intent.no, Intent.maybe):
            return Reading(
                last.intent, last.score, last.runner_up, last.clause, "after the contrast"
            )
        first = _judge_clause(parts[0])
        if first.intent in (Intent.yes, Intent.no, Intent.maybe):
            return first
        return last
    return _judge_clause(parts[0])


@dataclass(frozen=True)
class PhraseMatch:
    decision: Intent  # yes (matches), no, or unclear
    score: float
    why: str


def match_phrase(reply: str, phrase: str) -> PhraseMatch:
    """Whether ``reply`` says what ``phrase`` says ("благодарю" for "спасибо", not "спасибо,
    но нет"): the last clause after a contrast is judged, and a negation on one side only is a
    different meaning."""
    words, wanted = spell_out(reply), spell_out(phrase)
    if not words or not wanted:
        return PhraseMatch(Intent.no, 0.0, "nothing to compare")
    parts = clauses(words)
    said = parts[-1] if parts else words
    if words == wanted or said == wanted:
        return PhraseMatch(Intent.yes, 1.0, "the same words")
    if negated(said) != negated(wanted):
        return PhraseMatch(Intent.no, 0.0, "one of them is negated")
    score = similarity(said, wanted)
    if score >= PHRASE_SURE:
        return PhraseMatch(Intent.yes, score, "same meaning")
    if score >= PHRASE_UNSURE:
        return PhraseMatch(Intent.unclear, score, "close, but not close enough to be sure")
    return PhraseMatch(Intent.no, score, "a different meaning")
