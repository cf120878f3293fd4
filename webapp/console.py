"""What every page of the lead's console shares: who is acting (with the role core checks), the
CSRF check on every change, and how refusals and field errors are shown."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from core.errors import DomainError, Invalid
from core.teams.builtin_roles import BuiltinRole
from core.teams.models import Member
from core.teams.permissions import Actor
from core.teams.self_service import actor_of
from webapp.auth import Session, csrf_ok
from webapp.routes import Current, _words


class Refused(Exception):
    """Shown to the user as it is (a 403 page or htmx fragment)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Console:
    signed: Session
    member: Member
    actor: Actor
    words: dict[str, str]

    @property
    def csrf(self) -> str:
        return self.signed.csrf

    def context(self, **more: Any) -> dict[str, Any]:
        return {
            "member": self.member,
            "words": self.words,
            "csrf": self.csrf,
            "is_lead": True,
            "is_owner": self.actor.role is BuiltinRole.owner,
            **more,
        }


async def console(request: Request, session: SessionDep, me: Current) -> Console:
    """Owners and leads only; members are refused here, and core checks each action again."""
    signed, member = me
    actor = await actor_of(session, member)
    words = _words(member.locale)
    if actor.role is BuiltinRole.member:
        raise Refused(words["lead_only"])
    if request.method == "POST" and not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        raise Refused("the page is stale; reload it")
    return Console(signed, member, actor, words)


LeadConsole = Annotated[Console, Depends(console)]


async def undo(session: AsyncSession, lead: Console) -> None:
    """Drop whatever a refused change left in the session, keeping the lead usable for the page
    that shows the errors (a rollback expires every loaded row)."""
    await session.rollback()
    await session.refresh(lead.member)


def alert(message: str, status: int = 422) -> HTMLResponse:
    """A refusal as an htmx fragment, read out by screen readers."""
    return HTMLResponse(f'<p class="error" role="alert">{escape(message)}</p>', status_code=status)


async def refused(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, Refused)
    return HTMLResponse(
        f'<p class="error" role="alert">{escape(exc.message)}</p>', status_code=exc.status
    )


def field_errors(exc: DomainError | ValidationError, rename: dict[str, str]) -> dict[str, str]:
    """Errors keyed by form field: core's field names (``audience.tags[0]``, ``starts_at``) and
    pydantic's locations mapped through ``rename`` (first matching prefix wins)."""
    pairs: list[tuple[str, str]]
    if isinstance(exc, ValidationError):
        pairs = [
            (".".join(str(p) for p in e["loc"]), str(e["msg"]).removeprefix("Value error, "))
            for e in exc.errors()
        ]
    elif isinstance(exc, Invalid):
        pairs = [(e.field, e.message) for e in exc.errors]
    else:
        pairs = [("", exc.detail)]
    out: dict[str, str] = {}
    for name, message in pairs:
        key = next((v for k, v in rename.items() if name.startswith(k)), "form")
        out.setdefault(key, message)
    return out
