"""Imports every table so ``Base.metadata`` is complete (for Alembic and the schema check)."""

from core.calendar.models import FeedToken
from core.db import Base
from core.events.models import Confirmation, Event, EventOverride
from core.notify.models import Delivery, Job
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
    "Confirmation",
    "Delivery",
    "Event",
    "EventOverride",
    "FeedToken",
    "Group",
    "Job",
    "Member",
    "MemberGroup",
    "MemberRole",
    "MemberTag",
    "Role",
    "Tag",
    "TagChange",
    "Workspace",
]
