"""Reading rows through a workspace: the seal between tenants.

Every lookup by id in core goes through these two functions, so a row of another workspace is
indistinguishable from a row that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import TenantMixin
from core.errors import FieldError, Invalid, NotFound
from core.teams.models import Member

M = TypeVar("M", bound=TenantMixin)


async def get_scoped(
    session: AsyncSession,
    model: type[M],
    workspace_id: uuid.UUID,
    ident: uuid.UUID,
    resource: str,
) -> M:
    """The row ``ident`` of ``model`` in this workspace, or NotFound."""
    row = await session.scalar(
        select(model).where(
            model.id == ident,
            model.workspace_id == workspace_id,
        )
    )
    if row is None:
        raise NotFound(resource, ident)
    return row


async def missing_in_workspace(
    session: AsyncSession,
    model: type[TenantMixin],
    workspace_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    field: str,
    resource: str,
) -> list[FieldError]:
    """One FieldError per position in ``ids`` that is not a ``resource`` of this workspace."""
    if not ids:
        return []
    found = set(
        await session.scalars(
            select(model.id).where(model.id.in_(set(ids)), model.workspace_id == workspace_id)
        )
    )
    return [
        FieldError(f"{field}[{i}]", f"no {resource} {ident} in this workspace")
        for i, ident in enumerate(ids)
        if ident not in found
    ]


def raise_if_any(errors: Sequence[FieldError]) -> None:
    if errors:
        raise Invalid(errors[0].field, errors[0].message, *errors[1:])


async def require_in_workspace(
    session: AsyncSession,
    model: type[TenantMixin],
    workspace_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    field: str,
    resource: str,
) -> None:
    """Raise Invalid naming every position in ``ids`` that is not a ``resource`` of this workspace."""
    raise_if_any(await missing_in_workspace(session, model, workspace_id, ids, field, resource))


async def workspace_member_ids(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The distinct ids of a bulk request, once every one is known to be a member here."""
    await require_in_workspace(session, Member, workspace_id, ids, "member_ids", "member")
    return set(ids)
