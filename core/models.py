"""Imports every table so ``Base.metadata`` is complete (for Alembic and the schema check)."""

from core.audit import AuditEntry
from core.calendar.models import FeedToken
from core.db import Base
from core.delivery.models import Delivery, DeliveryTally, Job, SendSecond
from core.events.models import Confirmation, Event, EventOverride
from core.insights.daily_report import LeadReport
from core.journeys.models import (
    Journey,
    JourneyDay,
    JourneyDwell,
    JourneyLog,
    JourneyRun,
    JourneyStepDay,
    JourneyStepTally,
    Signal,
)
from core.notify.models import IdempotencyKey, MessageTemplate
from core.reads.models import (
    AudiencePart,
    AudiencePartBump,
    AudienceRoster,
    AudienceRosterBump,
    AudienceRosterChange,
    ReadVersion,
    ReadVersionBump,
)
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
    "AudiencePart",
    "AudiencePartBump",
    "AudienceRoster",
    "AudienceRosterBump",
    "AudienceRosterChange",
    "AuditEntry",
    "Base",
    "Confirmation",
    "Delivery",
    "DeliveryTally",
    "Event",
    "EventOverride",
    "FeedToken",
    "Group",
    "IdempotencyKey",
    "Job",
    "Journey",
    "JourneyDay",
    "JourneyDwell",
    "JourneyLog",
    "JourneyRun",
    "JourneyStepDay",
    "JourneyStepTally",
    "LeadReport",
    "Member",
    "MemberGroup",
    "MemberRole",
    "MemberTag",
    "MessageTemplate",
    "ReadVersion",
    "ReadVersionBump",
    "Role",
    "SendSecond",
    "Signal",
    "Tag",
    "TagChange",
    "Workspace",
]
