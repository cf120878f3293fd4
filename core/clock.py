"""The one clock vestnik asks what time it is (UTC).

Production reads the system clock. Tests install a clock of their own with `use_clock`, so no
test depends on today's date: a reminder planned for "tomorrow at 10" stays in the future however
long after the test was written it runs. Processes started separately keep the system clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Clock = system_clock


def utcnow() -> datetime:
    """Now, as an aware UTC datetime, from the clock in use."""
    return _clock()


def use_clock(clock: Clock) -> Clock:
    """Read "now" from ``clock`` from here on; returns the clock it replaces, to put back."""
    global _clock
    previous, _clock = _clock, clock
    return previous
