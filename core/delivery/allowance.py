"""The workspace's daily allowance: how many more messages it may send today (UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery.models import Delivery, DeliveryStatus
from core.teams.models import Workspace
from core.timezones import utc_midnight


def next_utc_day(now: datetime) -> datetime:
    return utc_midnight(now.date() + timedelta(days=1))


async def daily_allowance(session: AsyncSession, workspace: Workspace, now: datetime) -> int | None:
    """How many more messages the workspace may send today (UTC), or None without a limit.
    Counts what went out today and what is queued or on the wire now."""
    if workspace.daily_limit is None:
        return None
    midnight = utc_midnight(now.date())
    used = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.workspace_id == workspace.id,
            or_(
                and_(Delivery.status == DeliveryStatus.sent.value, Delivery.sent_at >= midnight),
                Delivery.status.in_([DeliveryStatus.queued.value, DeliveryStatus.sending.value]),
            ),
        )
    )
    return max(0, workspace.daily_limit - (used or 0))
