"""Figures for operators (Prometheus ``/metrics``): how much waits, what came of deliveries, and
how late things go. Read from Postgres, the source of truth, so every API process reports the
same numbers whichever workers did the sending; totals only, never per workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.models import Delivery, DeliveryStatus, DeliveryTally, Job, JobStatus

LATENESS_WINDOW = timedelta(hours=1)


@dataclass
class OperatorFigures:
    jobs_due: int = 0  # pending and due: the scheduler has not claimed them yet
    jobs_claimed: int = 0
    deliveries_waiting: dict[str, int] = field(default_factory=dict)  # queued/sending/deferred
    deliveries_total: dict[tuple[str, str], int] = field(default_factory=dict)  # channel, status
    oldest_due_seconds: float = 0.0  # how long the oldest unclaimed due job has waited
    lateness_quantiles: dict[float, float] = field(default_factory=dict)  # finished jobs, last hour
    lateness_count: int = 0
    lateness_sum: float = 0.0


async def operator_figures(session: AsyncSession, now: datetime) -> OperatorFigures:
    figures = OperatorFigures()
    pending_due = (Job.status == JobStatus.pending.value) & (Job.due_at <= now)
    figures.jobs_due, oldest = (
        await session.execute(select(func.count(), func.min(Job.due_at)).where(pending_due))
    ).one()
    if oldest is not None:
        figures.oldest_due_seconds = (now - oldest).total_seconds()
    figures.jobs_claimed = (
        await session.scalar(select(func.count()).where(Job.status == JobStatus.claimed.value))
    ) or 0
    waiting = [DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.deferred]
    figures.deliveries_waiting = {s.value: 0 for s in waiting}
    for status, n in await session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.status.in_([s.value for s in waiting]))
        .group_by(Delivery.status)
    ):
        figures.deliveries_waiting[status] = int(n)
    for channel, tallied, n in await session.execute(
        select(DeliveryTally.channel, DeliveryTally.status, func.sum(DeliveryTally.n)).group_by(
            DeliveryTally.channel, DeliveryTally.status
        )
    ):
        figures.deliveries_total[(channel, tallied)] = int(n)
    late = func.extract("epoch", Job.done_at - Job.due_at)
    quantiles = (0.5, 0.9, 0.99)
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(late), 0),
                *(func.percentile_cont(q).within_group(late) for q in quantiles),
            ).where(
                Job.status == JobStatus.done.value,
                Job.due_at > now - LATENESS_WINDOW,
                Job.done_at.is_not(None),
            )
        )
    ).one()
    figures.lateness_count, figures.lateness_sum = int(row[0]), float(row[1])
    if figures.lateness_count:
        figures.lateness_quantiles = {q: float(v) for q, v in zip(quantiles, row[2:], strict=True)}
    return figures
