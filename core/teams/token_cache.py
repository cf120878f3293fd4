"""Who the API tokens seen lately stand for, so that a request's token costs no query.

Revocation is honoured at once: Postgres notifies ``vestnik_api_tokens`` with a token's hash
when it is revoked, changed or deleted (migration 0022), as that change commits, and every API
process listening drops the token. A revocation made in this process drops it as its
transaction commits, before the answer says "revoked". Entries are trusted only while the
process listens (a notice sent while it did not is lost, so the cache empties and stands aside
until it listens again), and for at most ``MAX_AGE_SECONDS``: a listening connection that died
without a word cannot keep a revoked token alive for long. A lookup that overlapped any notice
is not stored, so a row read before a revocation committed is never kept after hearing of it.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.teams.permissions import Actor

CHANNEL = "vestnik_api_tokens"
MAX_AGE_SECONDS = 30.0
MAX_ENTRIES = 10_000
_TO_FORGET = "vestnik_tokens_to_forget"


@dataclass(frozen=True, slots=True)
class Known:
    actor: Actor
    last_used_at: datetime | None
    stored_at: float  # time.monotonic()


class TokenCache:
    def __init__(self) -> None:
        self._known: dict[str, Known] = {}
        self._listening = False
        # Bumped by every notice, and whenever listening starts or stops.
        self.generation = 0
        _CACHES.add(self)

    def get(self, token_hash: str) -> Known | None:
        known = self._known.get(token_hash) if self._listening else None
        if known is None or time.monotonic() - known.stored_at > MAX_AGE_SECONDS:
            return None
        return known

    def put(self, token_hash: str, known: Known, generation: int) -> None:
        """Keep ``known``, read when the cache was at ``generation``, unless a notice came since."""
        if not self._listening or generation != self.generation:
            return
        self._known.pop(token_hash, None)
        if len(self._known) >= MAX_ENTRIES:
            del self._known[next(iter(self._known))]  # the longest kept
        self._known[token_hash] = known

    def heard(self, token_hash: str) -> None:
        self.generation += 1
        self._known.pop(token_hash, None)

    def listening(self) -> None:
        self.generation += 1
        self._known.clear()
        self._listening = True

    def deaf(self) -> None:
        self.generation += 1
        self._known.clear()
        self._listening = False


_CACHES: weakref.WeakSet[TokenCache] = weakref.WeakSet()


def forget_on_commit(session: AsyncSession, token_hash: str) -> None:
    """Drop the token from this process's caches once ``session`` commits (other processes hear
    of it from Postgres)."""
    session.info.setdefault(_TO_FORGET, set()).add(token_hash)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    for token_hash in session.info.pop(_TO_FORGET, ()):
        for cache in list(_CACHES):
            cache.heard(token_hash)


@event.listens_for(Session, "after_soft_rollback")
def _keep_rolled_back(session: Session, _: object) -> None:
    session.info.pop(_TO_FORGET, None)
