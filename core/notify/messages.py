"""Rendering what a member reads: sandboxed Jinja2 templates, in their language and time zone."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from core.delivery.channels import OutboundMessage
from core.events.models import Answer, Event
from core.events.schemas import ConfirmationBoard
from core.notify.models import JobKind
from core.notify.wording import VARIABLES, WordingError, render_wording
from core.teams.models import Member

_WHEN = "EEEE d MMMM, HH:mm"
_DAY = "EEEE d MMMM"

TEMPLATES: dict[str, dict[JobKind, str]] = {
    "en": {
        JobKind.reminder: "Reminder: {{ event.title }} — {{ when }}"
        "{% if event.location %}, {{ event.location }}{% endif %}.",
        JobKind.confirmation_request: "{{ member.first_name }}, are you coming to "
        "{{ event.title }} on {{ when }}? Please answer by {{ deadline }}.",
        JobKind.nudge: "{{ member.first_name }}, we still need your answer for {{ event.title }} "
        "on {{ when }} (by {{ deadline }}).",
        JobKind.deadline_summary: "{{ event.title }}, {{ when }}: answers are in.\n"
        "Going {{ board.going|length }}{{ names(board.going) }}\n"
        "Not going {{ board.not_going|length }}{{ names(board.not_going) }}\n"
        "Maybe {{ board.maybe|length }}{{ names(board.maybe) }}\n"
        "Silent {{ board.silent|length }}{{ names(board.silent) }}",
    },
    "ru": {
        JobKind.reminder: "Напоминание: {{ event.title }} — {{ when }}"
        "{% if event.location %}, {{ event.location }}{% endif %}.",
        JobKind.confirmation_request: "{{ member.first_name }}, вы будете на «{{ event.title }}» "
        "{{ when }}? Ответьте, пожалуйста, до {{ deadline }}.",
        JobKind.nudge: "{{ member.first_name }}, ждём ваш ответ про «{{ event.title }}» "
        "{{ when }} (до {{ deadline }}).",
        JobKind.deadline_summary: "«{{ event.title }}», {{ when }}: ответы собраны.\n"
        "Идут {{ board.going|length }}{{ names(board.going) }}\n"
        "Не идут {{ board.not_going|length }}{{ names(board.not_going) }}\n"
        "Возможно {{ board.maybe|length }}{{ names(board.maybe) }}\n"
        "Молчат {{ board.silent|length }}{{ names(board.silent) }}",
    },
}
BUTTONS = {
    "en": {Answer.going: "Going", Answer.not_going: "Not going", Answer.maybe: "Maybe"},
    "ru": {Answer.going: "Иду", Answer.not_going: "Не иду", Answer.maybe: "Возможно"},
}

_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
# Our own templates use no globals; without them each render's context is built from the data
# alone (merging Jinja's default globals into every one of thousands of renders costs).
_environment.globals.clear()


@lru_cache(maxsize=64)
def _template(locale: str, kind: JobKind) -> Template:
    """Compiled once per process: compiling costs far more than rendering."""
    return _environment.from_string(TEMPLATES[locale][kind])


def format_when(start: datetime, timezone: str, locale: str, all_day: bool = False) -> str:
    """ "Thursday 10 December, 12:00" in the reader's zone and language."""
    pattern = _DAY if all_day else _WHEN
    return str(format_datetime(start, pattern, tzinfo=ZoneInfo(timezone), locale=locale))


def _when(event: Event, start: datetime, member: Member) -> str:
    return format_when(start, member.timezone, member.locale, event.all_day)


def _names(people: list[dict[str, str]]) -> str:
    shown = ", ".join(p["name"] for p in people[:20])
    more = f" +{len(people) - 20}" if len(people) > 20 else ""
    return f": {shown}{more}" if people else ""


def render(
    kind: JobKind,
    event: Event,
    member: Member,
    start: datetime,
    deadline: datetime | None,
    board: ConfirmationBoard | None = None,
) -> OutboundMessage:
    """The message for one member: their language, times in their own zone."""
    locale = member.locale if member.locale in TEMPLATES else "en"
    context: dict[str, Any] = {
        "member": {"name": member.name, "first_name": member.name.split()[0]},
        "event": {"title": event.title, "location": event.location},
        "when": _when(event, start, member),
        "deadline": _when(event, deadline, member) if deadline else "",
        "board": board.model_dump(mode="json") if board else {},
        "names": _names,
    }
    text = _template(locale, kind).render(context)
    buttons: list[tuple[str, Answer]] = []
    if kind in (JobKind.confirmation_request, JobKind.nudge):
        buttons = [(label, answer) for answer, label in BUTTONS[locale].items()]
    return OutboundMessage(text=text, buttons=buttons)


BROADCAST_VARIABLES = VARIABLES


def _member_variables(member: Member) -> dict[str, Any]:
    return {"member": {"name": member.name, "first_name": member.name.split()[0]}}


def pick_variant(text: str, variants: dict[str, str], locale: str) -> str:
    """The wording in the member's language when there is one, else the default."""
    return variants.get(locale) or text


def render_broadcast(
    text: str,
    member: Member,
    variants: dict[str, str] | None = None,
    links: list[dict[str, str]] | None = None,
) -> OutboundMessage:
    """A lead's text, in the member's language if a variant exists, with the member's variables
    ({{ member.first_name }}, {{ member.name }}) and the broadcast's link buttons."""
    wording = pick_variant(text, variants or {}, member.locale)
    try:
        rendered = render_wording(wording, _member_variables(member))
    except WordingError:
        # Saved before today's checks (which refuse such a text when it is saved): the member
        # still gets the message, as the lead wrote it.
        rendered = wording
    return OutboundMessage(
        text=rendered,
        links=[(link["text"], link["url"]) for link in links or []],
    )


def check_broadcast_template(text: str) -> None:
    """Raise ValueError (a WordingError) saying what is wrong: syntax, an unknown variable, a
    forbidden construct or access, a message too long or empty."""
    sample = Member(name="Anna Example", timezone="UTC", locale="en")
    if not render_wording(text, _member_variables(sample)).strip():
        raise WordingError("the message would be empty")
