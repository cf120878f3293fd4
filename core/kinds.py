"""The composition root of core: wires what sits above the engine and the events into them.

core.delivery never imports what it sends about, and core.events never imports what plans its
reminders; every process that changes events or dispatches jobs (API, Mini App, bot, worker,
scheduler, CLI, tests, benchmarks) calls ``install()`` once when it starts. Adding a kind of
subject is one line here and one ``install`` in its package (docs/architecture.md).
"""

from __future__ import annotations

from core.events.changes import on_event_changed
from core.insights import daily_report
from core.journeys import subject as journey_subjects
from core.journeys.triggers import on_happening
from core.notify import subjects as notify_subjects
from core.notify.planning import plan_event_jobs
from core.teams.happenings import on_happening as listen_to_members


def install() -> None:
    """Idempotent."""
    notify_subjects.install()
    journey_subjects.install()
    daily_report.install()
    on_event_changed(plan_event_jobs)
    listen_to_members(on_happening)
