from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.cached_reads import cached_json
from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.audience.preview import preview_audience
from core.audience.rule import AudiencePreview, AudiencePreviewRequest, AudienceRule
from core.reads.cache import Kind

router = APIRouter(route_class=UnitOfWork, prefix="/audience", tags=["audience"])


@router.post("/preview", response_model=AudiencePreview)
async def preview(
    request: Request, data: AudiencePreviewRequest, actor: ActorDep, session: SessionDep
) -> Response:
    """Who would this audience reach? The count (by status) and the first members by name."""
    rule = AudienceRule.model_validate(data.model_dump(exclude={"limit"}))
    return await cached_json(
        request,
        session,
        actor,
        Kind.audience,
        data.model_dump_json(),
        lambda: preview_audience(session, actor, rule, data.limit),
    )
