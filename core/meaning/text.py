"""Text as people type it, made comparable: case, punctuation, ё/е and emoji set aside; slang,
signs and contractions spelled out; clauses split at a contrast ("…, но нет")."""

from __future__ import annotations

import re
import unicodedata

# Replies that are a sign or an emoji say something; normalizing would erase them.
SIGNS = {
    "+": "да",
    "++": "да",
    "+1": "да",
    "👍": "да",
    "👌": "да",
    "✅": "да",
    "✔": "да",
    "✔️": "да",
    "-": "нет",
    "👎": "нет",
    "❌": "нет",
    "🚫": "нет",
    "🤔": "не знаю",
    "🤷": "не знаю",
    "🤷‍♂️": "не знаю",
    "🤷‍♀️": "не знаю",
}
# Short forms a sentence model has rarely seen, as the words it knows.
SLANG = {
    "спс": "спасибо",
    "спасиб": "спасибо",
    "пасиб": "спасибо",
    "пасибо": "спасибо",
    "сенкс": "спасибо",
    "сяп": "спасибо",
    "благодарочка": "спасибо",
    "thx": "thanks",
    "thnx": "thanks",
    "ty": "thanks",
    "ок": "да",
    "окей": "да",
    "окс": "да",
    "ага": "да",
    "угу": "да",
    "ес": "да",
    "дааа": "да",
    "даа": "да",
    "ok": "yes",
    "okay": "yes",
    "k": "yes",
    "yep": "yes",
    "yup": "yes",
    "yeah": "yes",
    "ya": "yes",
    "неа": "нет",
    "нее": "нет",
    "неее": "нет",
    "нет-нет": "нет",
    "nope": "no",
    "nah": "no",
    "хз": "не знаю",
    "прийду": "приду",
    "бужу": "буду",
    "пжл": "пожалуйста",
    "пж": "пожалуйста",
}
NEGATIONS = frozenset(
    {"не", "нет", "ни", "нельзя", "no", "not", "never", "cannot", "nobody", "out", "без"}
)
CONTRASTS = frozenset({"но", "однако", "зато", "а", "but", "however", "though", "although"})


def normalize(text: str) -> str:
    """Lower case, ё as е, no punctuation, symbols or emoji, single spaces."""
    kept = []
    for char in unicodedata.normalize("NFC", text.casefold().replace("ё", "е")):
        category = unicodedata.category(char)
        if category[0] in "PS" or category in ("Cf", "Mn", "Me"):
            kept.append(" ")
        else:
            kept.append(char)
    return " ".join("".join(kept).split())


def spell_out(text: str) -> str:
    """``normalize`` after signs, contractions ("can't") and slang ("спс") are written out."""
    stripped = text.strip()
    if stripped in SIGNS:
        return SIGNS[stripped]
    for sign, meaning in SIGNS.items():
        if len(sign) > 1 or not sign.isascii():
            stripped = stripped.replace(sign, f" {meaning} ")
    stripped = re.sub(r"(?i)\bcan[’']t\b", "cannot", stripped)
    stripped = re.sub(r"(?i)\bwon[’']t\b", "will not", stripped)
    stripped = re.sub(r"(?i)n[’']t\b", " not", stripped)
    words = normalize(stripped).split()
    return " ".join(SLANG.get(w, w) for w in words)


def clauses(words: str) -> list[str]:
    """The clauses of a spelled-out reply, split at each contrast word ("но", "but")."""
    parts: list[list[str]] = [[]]
    for word in words.split():
        if word in CONTRASTS and parts[-1]:
            parts.append([])
        elif word not in CONTRASTS:
            parts[-1].append(word)
    return [" ".join(p) for p in parts if p]


def negated(words: str) -> bool:
    return any(w in NEGATIONS for w in words.split())
