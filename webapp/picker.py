"""The audience picker shared by the event editor and the broadcast composer: groups, tags (any
or all), roles, people, and exclusions, with the recipient count and first names updating as the
lead clicks (htmx, debounced)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from core.audience.preview import preview_audience
from core.audience.rule import AudienceRule
from core.filters import contains
from core.teams.models import Group, Member, Role, Tag
from webapp.console import LeadConsole
from webapp.routes import _page

router = APIRouter(route_class=UnitOfWork, prefix="/app/audience", include_in_schema=False)
IdList = Annotated[list[uuid.UUID], Form()]
PEOPLE_FIELDS = ("members", "exclude_members")


async def audience_form(
    groups: IdList = [],  # noqa: B006 (FastAPI reads the default, it is never mutated)
    tags: IdList = [],  # noqa: B006
    tags_mode: Annotated[str, Form(max_length=3)] = "any",
    roles: IdList = [],  # noqa: B006
    members: IdList = [],  # noqa: B006
    exclude_groups: IdList = [],  # noqa: B006
    exclude_tags: IdList = [],  # noqa: B006
    exclude_members: IdList = [],  # noqa: B006
) -> AudienceRule:
    """The audience the picker's checkboxes describe."""
    return AudienceRule(
        groups=groups,
        tags=tags,
        tags_mode="all" if tags_mode == "all" else "any",
        roles=roles,
        members=members,
        exclude_groups=exclude_groups,
        exclude_tags=exclude_tags,
        exclude_members=exclude_members,
    )


AudienceForm = Annotated[AudienceRule, Depends(audience_form)]


async def by_name(session: AsyncSession, model: Any, workspace_id: uuid.UUID) -> list[Any]:
    """The workspace's groups, tags or roles, by name."""
    return list(
        await session.scalars(
            select(model).where(model.workspace_id == workspace_id).order_by(model.name)
        )
    )


async def picker_context(
    session: AsyncSession, workspace_id: uuid.UUID, rule: AudienceRule | None = None
) -> dict[str, Any]:
    """What the picker template needs: the workspace's groups, tags and roles, the rule to show
    as picked, and the names of the people it lists."""
    rule = rule or AudienceRule()
    listed = [*rule.members, *rule.exclude_members]
    names: dict[uuid.UUID, str] = {}
    if listed:
        names = dict(
            (
                await session.execute(
                    select(Member.id, Member.name).where(
                        Member.workspace_id == workspace_id, Member.id.in_(listed)
                    )
                )
            ).all()
        )
    return {
        "groups": await by_name(session, Group, workspace_id),
        "tags": await by_name(session, Tag, workspace_id),
        "roles": await by_name(session, Role, workspace_id),
        "rule": rule,
        "picked": {
            field: [(i, names[i]) for i in getattr(rule, field) if i in names]
            for field in PEOPLE_FIELDS
        },
    }


@router.post("", response_class=HTMLResponse)
async def count(
    request: Request,
    session: SessionDep,
    lead: LeadConsole,
    rule: AudienceForm,
    text: Annotated[str | None, Form(max_length=4000)] = None,
    sample: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    """The live count: how many the picked audience reaches, and the first names. For the
    composer (which sends its text along) also the choice of whom to preview the text for."""
    preview = await preview_audience(session, lead.actor, rule, 8)
    return _page(
        request,
        "_audience.html",
        {
            "words": lead.words,
            "preview": preview,
            "reachable": preview.by_status.active,
            "composer": text is not None,
            "sample": sample,
            "member": lead.member,
        },
    )


@router.get("/people", response_class=HTMLResponse)
async def find_people(
    request: Request, session: SessionDep, lead: LeadConsole, pq: str = "", field: str = "members"
) -> HTMLResponse:
    """People whose name contains the search, as checkboxes the page keeps once ticked."""
    if field not in PEOPLE_FIELDS:
        field = "members"
    found: list[Member] = []
    if pq.strip():
        found = list(
            await session.scalars(
                select(Member)
                .where(
                    Member.workspace_id == lead.actor.workspace_id,
                    Member.name.ilike(contains(pq.strip()[:100])),
                )
                .order_by(Member.name)
                .limit(10)
            )
        )
    return _page(request, "_people_found.html", {"found": found, "field": field})
