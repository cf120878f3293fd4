"""What two different calendar readers show for a served feed, as UTC instants: icalendar +
recurring-ical-events (RFC 5545's reading of DST gaps and overlaps) and vobject (which reads them
otherwise, and builds its zones from the feed's VTIMEZONEs). Overrides (RECURRENCE-ID) applied."""

from __future__ import annotations

from datetime import UTC, datetime

import recurring_ical_events
import vobject
from icalendar import Calendar


def icalendar_occurrences(
    feed: bytes, title: str, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime]]:
    """(start, end) of each occurrence of the events whose title starts with ``title``, as the
    reader gives them (in the event's zone), in order."""
    found = recurring_ical_events.of(Calendar.from_ical(feed)).between(lo, hi)
    return sorted(
        (
            (e.decoded("DTSTART"), e.decoded("DTEND"))
            for e in found
            if str(e["SUMMARY"]).startswith(title)
        ),
        key=lambda pair: pair[0].astimezone(UTC),
    )


def vobject_starts(feed: str, title: str, lo: datetime, hi: datetime) -> list[datetime]:
    """Starts of the recurring event whose title starts with ``title``, moved ones where moved."""
    vevents = [v for v in vobject.readOne(feed).vevent_list if v.summary.value.startswith(title)]
    master = next(v for v in vevents if not hasattr(v, "recurrence_id"))
    moved = {v.recurrence_id.value: v.dtstart.value for v in vevents if v is not master}
    found = master.getrruleset(addRDate=True).between(lo, hi, inc=True)
    return sorted(moved.get(o, o).astimezone(UTC) for o in found)
