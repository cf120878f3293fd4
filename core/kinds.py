"""The composition root of core: wires each kind of thing that sends into the delivery engine.

core.delivery never imports what it sends about; every process that dispatches or reads jobs
(worker, bot, API, tests) calls ``install()`` once at start. Adding a kind of subject is one line
here and one ``install`` in its package.
"""

from __future__ import annotations

from core.notify import subjects as notify_subjects


def install() -> None:
    notify_subjects.install()
