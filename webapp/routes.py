"""The Mini App's pages, served by the API app under /app. Thin: every rule lives in core/."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.unit_of_work import UnitOfWork
from bot.texts import Texts
from core.calendar.models import FeedKind
from core.calendar.tokens import feed_state, rotate_feed
from core.clock import utcnow
from core.errors import DomainError
from core.events.agenda import AgendaItem, agenda, next_occurrence_key, workspace_upcoming
from core.events.confirmations import answer_as_member, occurrence_key, recurrence_id_of, tally
from core.events.lookup import get_live_event
from core.events.models import Answer
from core.events.repeat import describe
from core.notify.messages import BUTTONS, format_when
from core.notify.planning import nudge_now
from core.notify.unheard import not_joined_members, resend_unknown
from core.settings import Settings
from core.teams.accounts import Person
from core.teams.builtin_roles import BuiltinRole
from core.teams.invites import invite_not_joined
from core.teams.models import Member, MemberStatus, Messenger, TimeOfDay
from core.teams.permissions import Actor, system_actor
from core.teams.self_service import (
    leads_of,
    memberships_of,
    parse_quiet_hours,
    resubscribe,
    set_locale,
    set_preferred_time,
    set_quiet_hours,
    set_timezone,
    unsubscribe,
)
from core.timezones import find_timezones
from webapp.auth import (
    COOKIE,
    SESSION_LIFETIME,
    AuthError,
    Session,
    csrf_ok,
    issue_session,
    max_user_from_init_data,
    read_session,
    telegram_user_from_init_data,
)
from webapp.words import WORDS

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(route_class=UnitOfWork, prefix="/app", include_in_schema=False)
static = StaticFiles(directory=HERE / "static")
MAX_INIT_DATA_AGE = timedelta(hours=24)  # initData's age limit, MAX's as Telegram's


def _secure(request: Request) -> bool:
    """Cookies are Secure except on a plain-http local address (development)."""
    host = request.url.hostname or ""
    return request.url.scheme == "https" or host not in ("localhost", "127.0.0.1", "vestnik.test")


def _set_session(
    request: Request,
    response: Response,
    telegram_user_id: int,
    member: Member,
    messenger: Messenger = Messenger.telegram,
) -> None:
    key = request.app.state.settings.signing_key
    secure = _secure(request)
    response.set_cookie(
        COOKIE,
        issue_session(key, telegram_user_id, member.id, utcnow(), messenger.value),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=secure,
        # Telegram's web clients show the Mini App in an iframe: cross-site, so None (needs Secure).
        samesite="none" if secure else "lax",
        path="/app",
    )


class NotSignedIn(Exception):
    pass


async def current(request: Request, session: SessionDep) -> tuple[Session, Member]:
    key = request.app.state.settings.signing_key
    signed = read_session(key, request.cookies.get(COOKIE), utcnow())
    if signed is None:
        raise NotSignedIn
    member = await session.get(Member, signed.member_id)
    if member is None or member.account_id(Messenger(signed.messenger)) != str(
        signed.telegram_user_id
    ):
        raise NotSignedIn  # unlinked since, or deleted
    request.state.locale = member.locale  # core's errors are shown in it (webapp.errors)
    request.state.messenger = signed.messenger  # pages look like the messenger they open in
    return signed, member


Current = Annotated[tuple[Session, Member], Depends(current)]


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    opened_in = getattr(request.state, "messenger", None) or request.query_params.get("platform")
    context.setdefault("messenger", "max" if opened_in == "max" else "telegram")
    return templates.TemplateResponse(request, name, context, status_code=status)


def _words(locale: str) -> dict[str, str]:
    return WORDS.get(locale, WORDS["en"])


@router.get("", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep) -> HTMLResponse:
    try:
        signed, member = await current(request, session)
    except NotSignedIn:
        platform = request.query_params.get("platform")
        return _page(request, "signin.html", {"words": _words("en"), "platform": platform})
    items = await agenda(session, member, utcnow(), limit=20)
    lead = await leads_of(session, member)
    team = []
    if lead:
        for event, recurrence_id, start in await workspace_upcoming(
            session, member.workspace_id, utcnow()
        ):
            team.append(
                {
                    "event_id": event.id,
                    "occurrence": occurrence_key(recurrence_id),
                    "title": event.title,
                    "when": format_when(start, member.timezone, member.locale, event.all_day),
                    "repeats": describe(event.rrule, member.locale),
                }
            )
    return _page(
        request,
        "home.html",
        {
            "member": member,
            "words": _words(member.locale),
            "csrf": signed.csrf,
            "cards": [_card(item, member) for item in items],
            "lead": False,
            "is_lead": lead,
            "team": team,
        },
    )


def _card(item: AgendaItem, member: Member) -> dict[str, Any]:
    labels = BUTTONS.get(member.locale, BUTTONS["en"])
    return {
        "event_id": item.event_id,
        "occurrence": item.occurrence,
        "title": item.title,
        "location": item.location,
        "when": format_when(item.starts_at, member.timezone, member.locale, item.all_day),
        "asks": item.asks_confirmation,
        "open": item.deadline is None or utcnow() <= item.deadline,
        "deadline": format_when(item.deadline, member.timezone, member.locale)
        if item.deadline
        else "",
        "answer": item.answer.value if item.answer else None,
        "choices": [(answer.value, labels[answer]) for answer in Answer],
    }


@dataclass(frozen=True)
class _SignIn:
    """How a messenger's Mini App proves who opened it."""

    token: Callable[[Settings], SecretStr | None]
    unconfigured: str
    user_of: Callable[[str, str, datetime, timedelta], int]


_SIGN_INS = {
    Messenger.telegram: _SignIn(
        lambda settings: settings.telegram_token,
        "the bot is not configured (VESTNIK_TELEGRAM_TOKEN)",
        telegram_user_from_init_data,
    ),
    Messenger.max: _SignIn(
        lambda settings: settings.max_token,
        "the MAX bot is not configured (VESTNIK_MAX_TOKEN)",
        lambda *given: max_user_from_init_data(*given)[0],
    ),
}


async def _exchange(
    request: Request, session: AsyncSession, init_data: str, messenger: Messenger
) -> Response:
    """A messenger's signed initData for a session cookie: 503 without its bot, 401 for data
    that is forged or stale, 403 for a person in no team."""
    how = _SIGN_INS[messenger]
    token = how.token(request.app.state.settings)
    if token is None:
        return Response(how.unconfigured, status_code=503)
    try:
        user_id = how.user_of(token.get_secret_value(), init_data, utcnow(), MAX_INIT_DATA_AGE)
    except AuthError as exc:
        return Response(str(exc), status_code=401)
    members = await memberships_of(session, Person(messenger, str(user_id)))
    if not members:
        return Response("you are not in a team yet; open your invite link first", status_code=403)
    response = Response(status_code=204)
    _set_session(request, response, user_id, members[0], messenger)
    return response


@router.post("/auth")
async def sign_in(
    request: Request, session: SessionDep, init_data: Annotated[str, Form(max_length=8192)]
) -> Response:
    """Exchange Telegram's raw initData for a session cookie."""
    return await _exchange(request, session, init_data, Messenger.telegram)


@router.post("/auth/max")
async def sign_in_max(
    request: Request, session: SessionDep, init_data: Annotated[str, Form(max_length=8192)]
) -> Response:
    """Exchange MAX's raw initData (window.WebApp.initData) for a session cookie."""
    return await _exchange(request, session, init_data, Messenger.max)


@router.get("/dev-login")
async def dev_login(request: Request, session: SessionDep, telegram_user_id: int) -> Response:
    """Sign in as any member without Telegram: only with VESTNIK_WEBAPP_DEV_LOGIN=true."""
    if not request.app.state.settings.webapp_dev_login:
        return Response("dev login is off (VESTNIK_WEBAPP_DEV_LOGIN)", status_code=403)
    members = await memberships_of(session, Person.on_telegram(telegram_user_id))
    if not members:
        return Response("no member has this Telegram user id", status_code=404)
    response = RedirectResponse("/app", status_code=303)
    _set_session(request, response, telegram_user_id, members[0])
    return response


@router.post("/events/{event_id}/answer", response_class=HTMLResponse)
async def answer(
    request: Request,
    event_id: uuid.UUID,
    session: SessionDep,
    me: Current,
    choice: Annotated[Answer, Form()],
    occurrence: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    signed, member = me
    if not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        return HTMLResponse("the page is stale; reload it", status_code=403)
    await answer_as_member(session, member, event_id, occurrence, choice, utcnow())
    items = await agenda(session, member, utcnow(), limit=20)
    card = next((i for i in items if i.event_id == event_id and i.occurrence == occurrence), None)
    if card is None:
        return HTMLResponse("", status_code=200)
    return _page(
        request,
        "_card.html",
        {"card": _card(card, member), "words": _words(member.locale), "lead": False},
    )


@router.get("/events/{event_id}/board", response_class=HTMLResponse)
async def board(
    request: Request,
    event_id: uuid.UUID,
    session: SessionDep,
    me: Current,
    occurrence: str = "",
) -> HTMLResponse:
    signed, member = me
    words = _words(member.locale)
    if not await leads_of(session, member):
        return HTMLResponse(Texts(member.locale)("lead_only"), status_code=403)
    try:
        event = await get_live_event(session, system_actor(member.workspace_id), event_id)
        occurrence = occurrence[:16] or await next_occurrence_key(session, event, utcnow())
        counts = await tally(session, event, recurrence_id_of(occurrence))
    except DomainError:
        return HTMLResponse("not found", status_code=404)
    return _page(
        request,
        "board.html",
        {
            "member": member,
            "words": words,
            "event": event,
            "board": counts,
            "occurrence": occurrence,
            "csrf": signed.csrf,
            "can_nudge": event.confirm_before_minutes is not None and counts.counts.silent > 0,
        },
    )


@router.post("/events/{event_id}/nudge", response_class=HTMLResponse)
async def nudge(
    request: Request,
    event_id: uuid.UUID,
    session: SessionDep,
    me: Current,
    occurrence: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    """The board's "nudge the silent now" (leads only; roles are checked in core)."""
    signed, member = me
    actor = await _lead_action(request, session, signed, member)
    if isinstance(actor, HTMLResponse):
        return actor
    words = _words(member.locale)
    await nudge_now(session, actor, event_id, recurrence_id_of(occurrence))
    return HTMLResponse(f'<p role="status">{words["nudged"]}</p>')


async def _lead_action(
    request: Request, session: SessionDep, signed: Session, member: Member
) -> Actor | HTMLResponse:
    """The acting lead, or the answer refusing them (a stale page, not a lead)."""
    if not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        return HTMLResponse("the page is stale; reload it", status_code=403)
    if not await leads_of(session, member):
        return HTMLResponse(Texts(member.locale)("lead_only"), status_code=403)
    return Actor(member.workspace_id, BuiltinRole.lead, label=f"{member.name} (Mini App)")


@router.post("/events/{event_id}/invite-not-joined", response_class=HTMLResponse)
async def invite_not_joined_members(
    request: Request, event_id: uuid.UUID, session: SessionDep, me: Current
) -> HTMLResponse:
    """The board's "invite them": a personal link for each member who never opened the bot."""
    signed, member = me
    actor = await _lead_action(request, session, signed, member)
    if isinstance(actor, HTMLResponse):
        return actor
    members = await not_joined_members(session, actor, event_id=event_id)
    username = request.app.state.settings.telegram_bot_username
    issued = await invite_not_joined(session, actor, members, username)
    words = _words(member.locale)
    items = "".join(
        f"<li>{escape(m.name)}: <code>{escape(i.link or i.start_command)}</code></li>"
        if i.link is None
        else f'<li>{escape(m.name)}: <a href="{escape(i.link)}">{escape(i.link)}</a></li>'
        for m, i in zip(members, issued, strict=True)
    )
    return HTMLResponse(f'<div role="status"><p>{words["invites_made"]}</p><ul>{items}</ul></div>')


@router.post("/events/{event_id}/resend-unknown", response_class=HTMLResponse)
async def resend_unknown_deliveries(
    request: Request, event_id: uuid.UUID, session: SessionDep, me: Current
) -> HTMLResponse:
    """The board's "send it again" for messages whose fate is unknown."""
    signed, member = me
    actor = await _lead_action(request, session, signed, member)
    if isinstance(actor, HTMLResponse):
        return actor
    count = await resend_unknown(session, actor, utcnow(), event_id=event_id)
    return HTMLResponse(
        f'<p role="status">{_words(member.locale)["resent"].format(count=count)}</p>'
    )


def _settings_form(member: Member) -> dict[str, Any]:
    return {
        "timezone": member.timezone,
        "quiet_start": f"{member.quiet_start:%H:%M}" if member.quiet_start else "",
        "quiet_end": f"{member.quiet_end:%H:%M}" if member.quiet_end else "",
        "locale": member.locale,
        "preferred_time": member.preferred_time,
        "subscribed": member.status != MemberStatus.unsubscribed.value,
    }


def _settings_context(
    member: Member, form: dict[str, Any], errors: dict[str, str], saved: bool, csrf: str
) -> dict[str, Any]:
    words = _words(member.locale)
    return {
        "member": member,
        "words": words,
        "csrf": csrf,
        "form": form,
        "errors": errors,
        "saved": saved,
        "times": [(t.value, words[t.value]) for t in TimeOfDay],
    }


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, me: Current) -> HTMLResponse:
    signed, member = me
    context = _settings_context(member, _settings_form(member), {}, False, signed.csrf)
    return _page(request, "settings.html", context)


@router.post("/settings", response_class=HTMLResponse)
async def save_settings(
    request: Request,
    session: SessionDep,
    me: Current,
    timezone: Annotated[str, Form(max_length=100)] = "",
    quiet_start: Annotated[str, Form(max_length=5)] = "",
    quiet_end: Annotated[str, Form(max_length=5)] = "",
    locale: Annotated[str, Form(max_length=8)] = "en",
    preferred_time: Annotated[str, Form(max_length=16)] = "day",
    subscribed: Annotated[str, Form(max_length=3)] = "",
) -> HTMLResponse:
    """Check every field, show errors next to them, and change nothing unless all are right.
    The settings are the person's: they apply to every membership of their Telegram account."""
    signed, member = me
    if not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        return HTMLResponse("the page is stale; reload it", status_code=403)
    form = {
        "timezone": timezone.strip(),
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
        "locale": locale,
        "preferred_time": preferred_time,
        "subscribed": subscribed == "yes",
    }
    words = _words(member.locale)
    errors: dict[str, str] = {}
    zones = find_timezones(timezone.strip())
    if len(zones) != 1:
        errors["timezone"] = (
            words["zone_many"].format(zones=", ".join(zones)) if zones else words["zone_unknown"]
        )
    window = None
    if quiet_start or quiet_end:
        try:
            window = parse_quiet_hours(f"{quiet_start}-{quiet_end}")
        except ValueError:
            errors["quiet"] = words["quiet_bad"]
    if locale not in ("en", "ru") or preferred_time not in TimeOfDay.__members__:
        errors["locale"] = words["zone_unknown"]
    if errors:
        context = _settings_context(member, form, errors, False, signed.csrf)
        return _page(request, "_settings_form.html", context, status=422)
    person = Person(Messenger(signed.messenger), str(signed.telegram_user_id))
    members = await memberships_of(session, person)
    set_timezone(members, zones[0])
    set_quiet_hours(members, window)
    set_locale(members, locale)
    set_preferred_time(members, TimeOfDay(preferred_time))
    (resubscribe if form["subscribed"] else unsubscribe)(session, members, "Mini App")
    form["timezone"] = zones[0]
    context = _settings_context(member, form, {}, True, signed.csrf)
    return _page(request, "_settings_form.html", context)


@router.get("/calendar", response_class=HTMLResponse)
async def calendar_page(request: Request, session: SessionDep, me: Current) -> HTMLResponse:
    """ "Add to my calendar": links are stored hashed, so an existing one is not shown again."""
    signed, member = me
    actor = system_actor(member.workspace_id, label=f"{member.name} (Mini App)")
    state = await feed_state(session, actor, FeedKind.member, member.id)
    created = (
        format_when(state.created_at, member.timezone, member.locale)
        if state.active and state.created_at
        else None
    )
    context = {
        "member": member,
        "words": _words(member.locale),
        "csrf": signed.csrf,
        "created": created,
    }
    return _page(request, "calendar.html", context)


@router.post("/calendar", response_class=HTMLResponse)
async def new_calendar_link(request: Request, session: SessionDep, me: Current) -> HTMLResponse:
    signed, member = me
    if not csrf_ok(signed, request.headers.get("X-CSRF-Token")):
        return HTMLResponse("the page is stale; reload it", status_code=403)
    actor = system_actor(member.workspace_id, label=f"{member.name} (Mini App)")
    public_url = request.app.state.settings.public_url
    link = await rotate_feed(session, actor, FeedKind.member, member.id, public_url)
    return _page(request, "_calendar_links.html", {"words": _words(member.locale), "link": link})


async def not_signed_in(request: Request, exc: Exception) -> Response:
    """No (valid) session: pages go to the sign-in page; htmx calls get a 401 to show."""
    if request.headers.get("HX-Request"):
        return HTMLResponse("your session ended; reopen the app", status_code=401)
    return RedirectResponse("/app", status_code=303)
