"""Every change of a delivery's state, named, in one place.

A delivery lives ``queued`` → ``sending`` → its outcome (``sent``, ``deferred``, ``unreachable``,
``not_joined``, ``failed``), or is made ``deferred`` / ``unreachable`` outright. ``sending`` rows are
committed just before the channel is called and never handed again: a worker that dies before
recording the answer leaves them for ``mark_unknown``, and only a lead sends those again
(``core.notify.unheard.resend_unknown``). A crash can leave a few messages of unknown fate; it can
never double one. Each function takes a session; the caller commits.

The hot statements are SQL over ``unnest`` of a few arrays: a batch of thousands is one statement
with a handful of parameters (no per-row compiling or binding), and the statistics triggers
(statement-level, migration 0010) run once per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery import retries
from core.delivery.models import Delivery, DeliveryStatus

LEFT_SENDING = "the worker sending it stopped before recording an answer; it may not have arrived"

_INSERT = text(
    """
    INSERT INTO deliveries (id, workspace_id, job_id, member_id, channel, status,
                            next_attempt_at, last_error, attempts, created_at)
    SELECT u.id, :workspace_id, :job_id, u.member_id, u.channel, u.status,
           u.next_attempt_at, u.last_error, 0, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:members AS uuid[]), CAST(:channels AS text[]),
                CAST(:statuses AS text[]), CAST(:next_at AS timestamptz[]),
                CAST(:errors AS text[]))
         AS u(id, member_id, channel, status, next_attempt_at, last_error)
    ON CONFLICT (job_id, member_id, channel) DO NOTHING
    RETURNING id, member_id, channel, status
    """
)
# ``unknown`` too: a very late answer (after the lease, when the row was given up on) is still
# the truth about that message.
_RECORD = text(
    """
    UPDATE deliveries AS d SET
        status = u.status,
        provider_message_id = coalesce(u.provider_message_id, d.provider_message_id),
        sent_at = coalesce(u.sent_at, d.sent_at),
        last_error = u.last_error,
        next_attempt_at = CASE
            WHEN u.status <> 'deferred' THEN d.next_attempt_at
            -- backoff: the wait grows with the attempts made (core.delivery.retries), drawn from
            -- its upper half; never sooner than the provider asked.
            WHEN u.backoff THEN greatest(
                u.next_attempt_at,
                u.at + make_interval(secs => least(:cap, :base * power(2, greatest(d.attempts, 1) - 1))
                                              * (0.5 + random() / 2)))
            ELSE u.next_attempt_at END,
        attempts = d.attempts + u.attempts_delta,
        handed_at = NULL
    FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:message_ids AS text[]),
                CAST(:sent_at AS timestamptz[]), CAST(:errors AS text[]),
                CAST(:next_at AS timestamptz[]), CAST(:deltas AS int[]),
                CAST(:backoff AS boolean[]), CAST(:at AS timestamptz[]))
         AS u(id, status, provider_message_id, sent_at, last_error, next_attempt_at,
              attempts_delta, backoff, at)
    WHERE d.id = u.id AND d.status IN ('sending', 'unknown')
    """
)


@dataclass(frozen=True)
class Planned:
    """A row about to be made: ``queued`` to go now, ``deferred`` until ``next_attempt_at``, or
    ``unreachable`` with the reason."""

    id: uuid.UUID
    member_id: uuid.UUID
    channel: str
    status: DeliveryStatus
    next_attempt_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class Made:
    id: uuid.UUID
    member_id: uuid.UUID
    channel: str
    status: DeliveryStatus


@dataclass(frozen=True)
class Recorded:
    """What became of one ``sending`` row."""

    id: uuid.UUID
    status: DeliveryStatus
    provider_message_id: str | None = None
    sent_at: datetime | None = None
    reason: str | None = None
    next_attempt_at: datetime | None = None
    # -1 gives back the attempt ``mark_sending`` counted: a rate limit is not a failed attempt.
    attempts_delta: int = 0
    # A failure that may pass: wait longer after each attempt (core.delivery.retries).
    backoff: bool = False
    at: datetime | None = None


async def plan(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    job_id: uuid.UUID,
    rows: Sequence[Planned],
    at: datetime,
) -> list[Made]:
    """Make a part of a job's rows; returns those made now. A member an earlier attempt of the
    job already has a row for is skipped (the unique (job, member, channel))."""
    if not rows:
        return []
    result = await session.execute(
        _INSERT,
        {
            "workspace_id": workspace_id,
            "job_id": job_id,
            "now": at,
            "ids": [r.id for r in rows],
            "members": [r.member_id for r in rows],
            "channels": [r.channel for r in rows],
            "statuses": [r.status.value for r in rows],
            "next_at": [r.next_attempt_at for r in rows],
            "errors": [r.reason for r in rows],
        },
    )
    return [Made(d, m, c, DeliveryStatus(s)) for d, m, c, s in result]


async def mark_sending(
    session: AsyncSession, ids: Sequence[uuid.UUID], at: datetime, *still: ColumnElement[bool]
) -> set[uuid.UUID]:
    """Take the rows of ``ids`` that are ``still`` as they were, as ``sending``: each row is
    taken by one worker only, whoever else tries. Returns the ids taken."""
    return set(
        await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(ids), *still)
            .values(
                status=DeliveryStatus.sending.value, attempts=Delivery.attempts + 1, handed_at=at
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )


async def record_outcomes(session: AsyncSession, outcomes: Sequence[Recorded]) -> None:
    """Record a whole batch's outcomes in one statement."""
    if not outcomes:
        return
    await session.execute(
        _RECORD,
        {
            "ids": [o.id for o in outcomes],
            "statuses": [o.status.value for o in outcomes],
            "message_ids": [o.provider_message_id for o in outcomes],
            "sent_at": [o.sent_at for o in outcomes],
            "errors": [o.reason for o in outcomes],
            "next_at": [o.next_attempt_at for o in outcomes],
            "deltas": [o.attempts_delta for o in outcomes],
            "backoff": [o.backoff for o in outcomes],
            "at": [o.at for o in outcomes],
            "base": retries.BASE_SECONDS,
            "cap": retries.CAP_SECONDS,
        },
    )


async def mark_unknown(session: AsyncSession, now: datetime, lease: timedelta) -> int:
    """Mark ``unknown`` every row left ``sending`` for longer than ``lease`` (no live worker holds
    a send that long). Returns how many."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.sending.value,
            Delivery.handed_at < now - lease,
        )
        .values(status=DeliveryStatus.unknown.value, last_error=LEFT_SENDING)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())


async def fail_stale(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    reason: str,
    *,
    was: DeliveryStatus = DeliveryStatus.queued,
) -> set[uuid.UUID]:
    """Fail rows that no longer apply (the member left the audience, the channel went, too late,
    too many attempts) if they are still ``was``. Returns the ids failed."""
    if not ids:
        return set()
    return set(
        await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == was.value)
            .values(status=DeliveryStatus.failed.value, last_error=reason)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )


async def drop_queued(session: AsyncSession, job_id: uuid.UUID, reason: str) -> None:
    """Fail every row of a job still ``queued``: what it was about changed while it went out."""
    await session.execute(
        update(Delivery)
        .where(Delivery.job_id == job_id, Delivery.status == DeliveryStatus.queued.value)
        .values(status=DeliveryStatus.failed.value, last_error=reason)
        .execution_options(synchronize_session=False)
    )
