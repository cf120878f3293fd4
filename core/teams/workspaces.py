"""Workspaces: the sealed unit every other row belongs to."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Invalid, NotFound
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import Role, Workspace
from core.teams.tokens import IssuedToken, issue_token
from core.timezones import check_timezone


class CreatedWorkspace(BaseModel):
    id: str
    name: str
    timezone: str
    owner_token: IssuedToken


async def create_workspace(
    session: AsyncSession, name: str, timezone: str = "UTC"
) -> CreatedWorkspace:
    """Create a workspace with its built-in roles and a first owner token."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("name", "a workspace name is 1 to 100 characters")
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise Invalid("timezone", str(exc)) from None
    taken = await session.scalar(
        select(Workspace.id).where(func.lower(Workspace.name) == name.lower())
    )
    if taken is not None:
        raise Conflict("name", f"a workspace named {name!r} already exists")
    workspace = Workspace(name=name, timezone=timezone)
    session.add(workspace)
    await session.flush()
    session.add_all(
        Role(workspace_id=workspace.id, name=role.value, builtin=True) for role in BuiltinRole
    )
    token = await issue_token(session, workspace.id, BuiltinRole.owner, "owner")
    return CreatedWorkspace(
        id=str(workspace.id), name=workspace.name, timezone=timezone, owner_token=token
    )


async def get_workspace_by_name(session: AsyncSession, name: str) -> Workspace:
    workspace = await session.scalar(
        select(Workspace).where(func.lower(Workspace.name) == name.strip().lower())
    )
    if workspace is None:
        raise NotFound("workspace", repr(name))
    return workspace
