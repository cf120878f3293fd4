"""The HTTP status of each kind of core error, for every HTTP adapter (the API, the Mini App)."""

from __future__ import annotations

from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized

# Most specific first: a Conflict is also Invalid.
_STATUS: list[tuple[type[DomainError], int]] = [
    (Conflict, 409),
    (Invalid, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (Unauthorized, 401),
]


def status_of(exc: DomainError, default: int = 400) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), default)
