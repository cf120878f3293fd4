"""Who may do what. The one permission check every adapter goes through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from core.errors import Forbidden
from core.teams.builtin_roles import BuiltinRole


class Action(StrEnum):
    read = "read"
    manage_people = "manage people, groups and tags"
    manage_events = "manage events"
    manage_roles = "manage roles"
    grant_owner = "grant or take the owner role"
    link_messenger = "change someone's messenger account"
    manage_tokens = "manage API tokens"
    manage_workspace = "change the workspace's settings"


_ALLOWED: dict[BuiltinRole, frozenset[Action]] = {
    BuiltinRole.owner: frozenset(Action),
    BuiltinRole.lead: frozenset({Action.read, Action.manage_people, Action.manage_events}),
    BuiltinRole.member: frozenset({Action.read}),
}


# Higher acts on lower or equal, never on higher: identity and membership of an owner are the
# owner's business, or the only way to become one would be to take over an owner's record.
RANK = {BuiltinRole.member: 0, BuiltinRole.lead: 1, BuiltinRole.owner: 2}


@dataclass(frozen=True)
class Actor:
    """Someone acting inside exactly one workspace, with one built-in role."""

    workspace_id: uuid.UUID
    role: BuiltinRole
    label: str

    def may(self, action: Action) -> bool:
        return action in _ALLOWED[self.role]

    def require(self, action: Action) -> None:
        """Raise Forbidden unless this actor's role allows ``action``."""
        if not self.may(action):
            raise Forbidden(f"the {self.role.value} role may not {action.value}")

    def require_not_below(self, role: BuiltinRole, what: str) -> None:
        """Raise Forbidden if ``role`` (someone's, acted on) is higher than this actor's own."""
        if RANK[role] > RANK[self.role]:
            raise Forbidden(f"the {self.role.value} role may not {what} of an {role.value}")


def system_actor(workspace_id: uuid.UUID, label: str = "cli") -> Actor:
    """The actor for operator commands run on the server itself (CLI)."""
    return Actor(workspace_id=workspace_id, role=BuiltinRole.owner, label=label)
