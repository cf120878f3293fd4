from __future__ import annotations

from fastapi import APIRouter

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.audience.rule import (
    AudiencePreview,
    AudiencePreviewRequest,
    AudienceRule,
    preview_audience,
)

router = APIRouter(route_class=UnitOfWork, prefix="/audience", tags=["audience"])


@router.post("/preview")
async def preview(
    data: AudiencePreviewRequest, actor: ActorDep, session: SessionDep
) -> AudiencePreview:
    """Who would this audience reach? The count (by status) and the first members by name."""
    rule = AudienceRule.model_validate(data.model_dump(exclude={"limit"}))
    return await preview_audience(session, actor, rule, data.limit)
