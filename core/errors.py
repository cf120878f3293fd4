"""The kinds of failure core reports. Each adapter has one handler that turns them into its world:
the API a problem+json (api/problems.py), the Mini App an alert in the member's language
(webapp/errors.py), the bot a reply in theirs (bot/errors.py).

Every error carries a stable ``code`` beside its English ``detail``: adapters translate by code
(with ``params``) and fall back to the detail, so a message that has no translation yet is still
shown, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every failure core raises on purpose."""

    title = "Error"
    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, **params: object) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.params = params

    def wording(self) -> tuple[str, dict[str, object]]:
        """The key an adapter's phrase book keeps this error under, and the values its phrase
        may use."""
        return f"error_{self.code}", {"detail": self.detail, **self.params}


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class NotFound(DomainError):
    """The thing does not exist, or exists in another workspace (we never tell which)."""

    title = "Not found"
    code = "not_found"

    def __init__(self, resource: str, ident: object) -> None:
        super().__init__(f"{resource} {ident} not found", resource=resource)
        self.resource = resource


class Forbidden(DomainError):
    """The caller is known but their role does not allow this action."""

    title = "Forbidden"
    code = "forbidden"


class Unauthorized(DomainError):
    """The caller could not be identified (missing, malformed, unknown or revoked credentials)."""

    title = "Unauthorized"
    code = "unauthorized"


class Invalid(DomainError):
    """Input that cannot be accepted; names the field(s) at fault."""

    title = "Invalid input"
    code = "invalid"

    def __init__(
        self, field_name: str, message: str, *more: FieldError, code: str | None = None
    ) -> None:
        super().__init__(f"{field_name}: {message}", code=code, field=field_name)
        self.errors = [FieldError(field_name, message), *more]

    def wording(self) -> tuple[str, dict[str, object]]:
        first = self.errors[0]
        return f"error_{self.code}", {"field": first.field, "message": first.message}


class Conflict(Invalid):
    """Input that clashes with what is already stored (a duplicate name, say)."""

    title = "Conflict"
    code = "conflict"
