"""Imports every table so ``Base.metadata`` is complete (for Alembic and the schema check)."""

from core.db import Base
from core.events.models import Event
from core.teams.models import (
    ApiToken,
    Group,
    Member,
    MemberGroup,
    MemberRole,
    MemberTag,
    Role,
    Tag,
    TagChange,
    Workspace,
)

__all__ = [
    "ApiToken",
    "Base",
    "Event",
    "Group",
    "Member",
    "MemberGroup",
    "MemberRole",
    "MemberTag",
    "Role",
    "Tag",
    "TagChange",
    "Workspace",
]
