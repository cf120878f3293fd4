"""Who may do what. The one permission check every adapter goes through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from core.errors import Forbidden
from core.teams.models import BuiltinRole


class Action(StrEnum):
    read = "read"
    manage_people = "manage people, groups and tags"
    manage_events = "manage events"
    manage_roles = "manage roles"
    grant_owner = "grant or take the owner role"
    manage_tokens = "manage API tokens"
    manage_workspace = "change the workspace's settings"


_ALLOWED: dict[BuiltinRole, frozenset[Action]] = {
    BuiltinRole.owner: frozenset(Action),
    BuiltinRole.lead: frozenset({Action.read, Action.manage_people, Action.manage_events}),
    BuiltinRole.member: frozenset({Action.read}),
}


@dataclass(frozen=True)
class Actor:
    """Someone acting inside exactly one workspace, with one built-in role."""

    workspace_id: uuid.UUID
    role: BuiltinRole
    label: str

    def require(self, action: Action) -> None:
        """Raise Forbidden unless this actor's role allows ``action``."""
        if action not in _ALLOWED[self.role]:
            raise Forbidden(f"the {self.role.value} role may not {action.value}")


def system_actor(workspace_id: uuid.UUID, label: str = "cli") -> Actor:
    """The actor for operator commands run on the server itself (CLI)."""
    return Actor(workspace_id=workspace_id, role=BuiltinRole.owner, label=label)
