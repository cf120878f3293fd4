"""The kinds of failure core reports. Each adapter has one handler that turns them into its world."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every failure core raises on purpose."""

    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class NotFound(DomainError):
    """The thing does not exist, or exists in another workspace (we never tell which)."""

    title = "Not found"

    def __init__(self, resource: str, ident: object) -> None:
        super().__init__(f"{resource} {ident} not found")
        self.resource = resource


class Forbidden(DomainError):
    """The caller is known but their role does not allow this action."""

    title = "Forbidden"


class Unauthorized(DomainError):
    """The caller could not be identified (missing, malformed, unknown or revoked credentials)."""

    title = "Unauthorized"


class Invalid(DomainError):
    """Input that cannot be accepted; names the field(s) at fault."""

    title = "Invalid input"

    def __init__(self, field_name: str, message: str, *more: FieldError) -> None:
        super().__init__(f"{field_name}: {message}")
        self.errors = [FieldError(field_name, message), *more]


class Conflict(Invalid):
    """Input that clashes with what is already stored (a duplicate name, say)."""

    title = "Conflict"
