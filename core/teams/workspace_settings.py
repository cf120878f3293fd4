"""A workspace's own settings: its name, default time zone, default reminders and send limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import record_by
from core.errors import Conflict
from core.events.schemas import Offsets
from core.teams.models import Workspace
from core.teams.permissions import Action, Actor
from core.teams.schemas import _In
from core.timezones import check_timezone

WorkspaceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class WorkspaceSettings(BaseModel):
    name: str
    timezone: str = Field(description="For events and broadcasts given without a zone")
    default_reminder_offsets: list[int] = Field(
        description="Minutes before the start, for events created without reminder_offsets"
    )
    rate_per_second: float | None = Field(
        description="Most messages a second this workspace sends (null: only the bot's limit)"
    )
    daily_limit: int | None = Field(
        description="Most messages a UTC day this workspace sends (null: no limit); "
        "messages over it wait for the next day"
    )
    member_hourly_cap: int | None = Field(
        default=3,
        description="Most journey messages and broadcasts one member gets in an hour "
        "(null: no cap); journey messages over it wait",
    )
    member_daily_cap: int | None = Field(
        default=10, description="The same over a day (null: no cap)"
    )


class WorkspaceSettingsUpdate(_In):
    """Fields to change; those left out keep their value. Limits take null to lift them."""

    name: WorkspaceName | None = None
    timezone: Annotated[str, AfterValidator(check_timezone)] | None = None
    default_reminder_offsets: Offsets | None = None
    rate_per_second: Annotated[float, Field(gt=0, le=1000)] | None = None
    daily_limit: Annotated[int, Field(gt=0, le=10_000_000)] | None = None
    member_hourly_cap: Annotated[int, Field(gt=0, le=1000)] | None = None
    member_daily_cap: Annotated[int, Field(gt=0, le=10_000)] | None = None


def _view(workspace: Workspace) -> WorkspaceSettings:
    return WorkspaceSettings(
        name=workspace.name,
        timezone=workspace.timezone,
        default_reminder_offsets=list(workspace.default_reminder_offsets or []),
        rate_per_second=workspace.rate_per_second,
        daily_limit=workspace.daily_limit,
        member_hourly_cap=workspace.member_hourly_cap,
        member_daily_cap=workspace.member_daily_cap,
    )


async def get_workspace_settings(session: AsyncSession, actor: Actor) -> WorkspaceSettings:
    actor.require(Action.read)
    return _view(await session.get_one(Workspace, actor.workspace_id))


async def update_workspace_settings(
    session: AsyncSession, actor: Actor, patch: WorkspaceSettingsUpdate
) -> WorkspaceSettings:
    """Change the settings (owner only); a taken name is refused and nothing changes."""
    actor.require(Action.manage_workspace)
    workspace = await session.get_one(Workspace, actor.workspace_id)
    given = patch.model_fields_set
    if patch.name is not None:
        taken = await session.scalar(
            select(Workspace.id).where(
                func.lower(Workspace.name) == patch.name.lower(), Workspace.id != workspace.id
            )
        )
        if taken is not None:
            raise Conflict("name", f"a workspace named {patch.name!r} already exists")
        workspace.name = patch.name
    if patch.timezone is not None:
        workspace.timezone = patch.timezone
    if patch.default_reminder_offsets is not None:
        workspace.default_reminder_offsets = sorted(
            set(patch.default_reminder_offsets), reverse=True
        )
    if "rate_per_second" in given:
        workspace.rate_per_second = patch.rate_per_second
    if "daily_limit" in given:
        workspace.daily_limit = patch.daily_limit
    if "member_hourly_cap" in given:
        workspace.member_hourly_cap = patch.member_hourly_cap
    if "member_daily_cap" in given:
        workspace.member_daily_cap = patch.member_daily_cap
    await session.flush()
    record_by(
        session, actor, "workspace.changed", workspace, f"settings: {', '.join(sorted(given))}"
    )
    return _view(workspace)
