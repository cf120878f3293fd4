"""Who would a rule reach? The preview a lead sees while choosing an audience.

Answered from the workspace's audience index (``core.audience.index``) when one is held at the
current stamp, or one held at an earlier stamp can be brought to it by reading only the groups,
tags, roles and members that changed since (``AudienceIndexes.refresh``); otherwise by Postgres
(``preview_in_sql``). The index is read whole once previews at one stamp have cost what reading
it last cost, or after three (``AudienceIndexes.worth_reading``), on a connection of its own
while that preview is answered by Postgres (``read_apart``). A transaction that has written
anything is answered by Postgres, the only one that sees its writes.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.audience.index import AudienceIndexes
from core.audience.rule import (
    FIRST_NAMES_WINDOW,
    AudienceCounts,
    AudiencePreview,
    AudienceRule,
    preview_in_sql,
    validate_audience,
)
from core.reads.cache import Kind, current_stamp
from core.teams.permissions import Action, Actor

# The process's indexes (as the rendered VEVENTs of ``core.calendar.vevents`` are the process's).
INDEXES = AudienceIndexes()


async def preview_audience(
    session: AsyncSession, actor: Actor, rule: AudienceRule, limit: int = 20
) -> AudiencePreview:
    """How many members a rule reaches (by status) and the first ``limit`` of them by name;
    Invalid naming ``audience.<field>[i]`` for an id not of the actor's workspace."""
    actor.require(Action.read)
    workspace_id = actor.workspace_id
    await validate_audience(session, workspace_id, rule)
    stamp = await current_stamp(session, workspace_id, Kind.audience)
    if stamp is not None:
        index = INDEXES.at(workspace_id, stamp)
        if index is None:
            index = await INDEXES.refresh(session, workspace_id, stamp)
        engine = session.bind  # vestnik's sessions are bound to the engine, never a connection
        worth = index is None and INDEXES.worth_reading(workspace_id, stamp)
        if worth and isinstance(engine, AsyncEngine):
            INDEXES.read_apart(engine, workspace_id, stamp)
        if index is not None:
            counts, members = index.preview(rule, limit)
            return AudiencePreview(
                count=counts["total"], by_status=AudienceCounts(**counts), members=members
            )
    started = time.perf_counter()
    preview = await preview_in_sql(session, workspace_id, rule, limit, window=FIRST_NAMES_WINDOW)
    if stamp is not None:
        INDEXES.spent(workspace_id, stamp, time.perf_counter() - started)
    return preview
