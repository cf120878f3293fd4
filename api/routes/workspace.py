from __future__ import annotations

from fastapi import APIRouter

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.teams import workspace_settings as settings
from core.teams.workspace_settings import WorkspaceSettings, WorkspaceSettingsUpdate

router = APIRouter(route_class=UnitOfWork, prefix="/workspace", tags=["workspace"])


@router.get("")
async def get_settings(actor: ActorDep, session: SessionDep) -> WorkspaceSettings:
    """The workspace's name, default time zone, default reminders and send limits."""
    return await settings.get_workspace_settings(session, actor)


@router.patch("")
async def update_settings(
    patch: WorkspaceSettingsUpdate, actor: ActorDep, session: SessionDep
) -> WorkspaceSettings:
    """Change them (owner only). Give `null` for a limit to lift it."""
    out = await settings.update_workspace_settings(session, actor, patch)
    return out
