"""Roles: built-in owner, lead and member, plus a workspace's own (custom) roles."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Invalid
from core.scoping import get_scoped, require_in_workspace
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import MemberRole, Role
from core.teams.permissions import RANK, Action, Actor
from core.teams.schemas import RoleCreate, RoleOut


async def list_roles(session: AsyncSession, actor: Actor) -> list[RoleOut]:
    actor.require(Action.read)
    rows = await session.scalars(
        select(Role)
        .where(Role.workspace_id == actor.workspace_id)
        .order_by(Role.builtin.desc(), Role.name)
    )
    return [RoleOut.model_validate(r) for r in rows]


async def create_role(session: AsyncSession, actor: Actor, data: RoleCreate) -> RoleOut:
    """Create a custom role; names are unique per workspace, case-insensitively."""
    actor.require(Action.manage_roles)
    taken = await session.scalar(
        select(Role.id).where(
            Role.workspace_id == actor.workspace_id, func.lower(Role.name) == data.name.lower()
        )
    )
    if taken is not None:
        raise Conflict("name", f"a role named {data.name!r} already exists")
    role = Role(workspace_id=actor.workspace_id, name=data.name, builtin=False)
    session.add(role)
    await session.flush()
    return RoleOut.model_validate(role)


async def delete_role(session: AsyncSession, actor: Actor, role_id: uuid.UUID) -> None:
    """Delete a custom role (members simply stop holding it). Built-in roles stay."""
    actor.require(Action.manage_roles)
    role = await get_scoped(session, Role, actor.workspace_id, role_id, "role")
    if role.builtin:
        raise Invalid("role_id", f"the built-in role {role.name!r} cannot be deleted")
    await session.delete(role)
    await session.flush()


async def builtin_role_id(
    session: AsyncSession, workspace_id: uuid.UUID, role: BuiltinRole
) -> uuid.UUID:
    role_id = await session.scalar(
        select(Role.id).where(
            Role.workspace_id == workspace_id, Role.builtin.is_(True), Role.name == role.value
        )
    )
    assert role_id is not None, "every workspace is created with its built-in roles"
    return role_id


async def highest_role(session: AsyncSession, member_id: uuid.UUID) -> BuiltinRole:
    """The highest built-in role a member holds (owner > lead > member)."""
    held = set(
        await session.scalars(
            select(Role.name)
            .join(MemberRole, MemberRole.role_id == Role.id)
            .where(MemberRole.member_id == member_id, Role.builtin.is_(True))
        )
    )
    return max(
        (BuiltinRole(name) for name in held), key=RANK.__getitem__, default=BuiltinRole.member
    )


async def require_another_owner(
    session: AsyncSession, workspace_id: uuid.UUID, member_id: uuid.UUID, field: str
) -> None:
    """Refuse to leave the workspace without an owner among its members."""
    owner_id = await builtin_role_id(session, workspace_id, BuiltinRole.owner)
    others = await session.scalar(
        select(func.count())
        .select_from(MemberRole)
        .where(MemberRole.role_id == owner_id, MemberRole.member_id != member_id)
    )
    if not others:
        raise Conflict(field, "the last owner cannot be removed; make someone else owner first")


async def set_member_roles(
    session: AsyncSession, actor: Actor, member_id: uuid.UUID, role_ids: Sequence[uuid.UUID]
) -> None:
    """Make ``role_ids`` exactly the member's roles. Granting or taking 'owner' needs an owner."""
    await require_in_workspace(session, Role, actor.workspace_id, role_ids, "role_ids", "role")
    wanted = set(role_ids)
    current = set(
        await session.scalars(select(MemberRole.role_id).where(MemberRole.member_id == member_id))
    )
    owner_id = await builtin_role_id(session, actor.workspace_id, BuiltinRole.owner)
    if owner_id in wanted ^ current:
        actor.require(Action.grant_owner)
    if owner_id in current - wanted:
        await require_another_owner(session, actor.workspace_id, member_id, "role_ids")
    if current - wanted:
        await session.execute(
            delete(MemberRole).where(
                MemberRole.member_id == member_id, MemberRole.role_id.in_(current - wanted)
            )
        )
    session.add_all(
        MemberRole(member_id=member_id, role_id=r, workspace_id=actor.workspace_id)
        for r in wanted - current
    )
    await session.flush()


def lead_ids(workspace_id: uuid.UUID) -> Select[uuid.UUID]:
    """Ids of the workspace's owners and leads: the people who hear who is coming."""
    return (
        select(MemberRole.member_id)
        .join(Role, Role.id == MemberRole.role_id)
        .where(
            Role.workspace_id == workspace_id,
            Role.builtin.is_(True),
            Role.name.in_([BuiltinRole.owner.value, BuiltinRole.lead.value]),
        )
    )
