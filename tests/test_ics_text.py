"""VEVENTs written directly (core/calendar/ics_text.py) read back exactly as the ones icalendar's
component objects wrote (tests/data/feed_golden.ics, see tests/ics_samples.py), by icalendar and by
vobject; and the writer's own rules: folding at 75 octets without splitting a character,
escaping, quoting, durations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import vobject
from icalendar import Calendar

from core.calendar import ics_text
from tests.ics_samples import sample_calendar

GOLDEN = Path(__file__).parent / "data" / "feed_golden.ics"


def _icalendar_view(raw: bytes) -> list[list[tuple[str, str, bytes]]]:
    """Each component's properties as icalendar reads them (values re-serialised canonically)."""
    out = []
    for component in Calendar.from_ical(raw).walk():
        props = [
            (name, repr(sorted(prop.params.items())), prop.to_ical())
            for name, props in component.items()
            for prop in (props if isinstance(props, list) else [props])
        ]
        out.append([component.name, *sorted(props)])  # type: ignore[list-item]
    return out


def _vobject_view(raw: bytes) -> list[Any]:
    calendar = vobject.readOne(raw.decode())
    out = []
    for event in calendar.vevent_list:
        lines = sorted(
            (line.name, repr(sorted(line.params.items())), repr(line.value))
            for line in event.lines()
        )
        alarms = [
            sorted((line.name, repr(line.value)) for line in alarm.lines())
            for alarm in getattr(event, "valarm_list", [])
        ]
        out.append((lines, alarms))
    return out


def test_the_direct_writer_reads_back_as_the_component_objects_did():
    written, golden = sample_calendar(), GOLDEN.read_bytes()
    assert _icalendar_view(written) == _icalendar_view(golden)
    assert _vobject_view(written) == _vobject_view(golden)


def test_lines_fold_at_75_octets_without_splitting_a_character():
    line = "SUMMARY:" + "ж" * 100 + "🎉" * 10
    folded = ics_text.fold(line)
    parts = folded.removesuffix(b"\r\n").split(b"\r\n")
    assert all(len(p) <= 75 for p in parts)
    assert all(p.startswith(b" ") for p in parts[1:])
    assert b"".join(p.removeprefix(b" ") if i else p for i, p in enumerate(parts)).decode() == line


@pytest.mark.parametrize(
    "lines",
    [
        ["BEGIN:VEVENT", "SUMMARY:short", "END:VEVENT"],
        ["BEGIN:VEVENT", "SUMMARY:" + "ж" * 40, "LOCATION:" + "x" * 70, "END:VEVENT"],
        ["DESCRIPTION:" + "a" * 63, "DESCRIPTION:" + "a" * 64],  # 75 octets, then 76
        ["SUMMARY:" + "ж" * 33, "SUMMARY:" + "ж" * 34],  # 74 octets, then 76 (42 characters)
    ],
)
def test_lines_written_as_text_fold_as_bytes_do(lines: list[str]):
    written = "".join(ics_text.line(line) for line in lines)
    assert written.encode() == b"".join(ics_text.fold(line) for line in lines)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (timedelta(minutes=-15), "-PT15M"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(days=-2), "-P2D"),
        (timedelta(days=1, seconds=5), "P1DT5S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_durations(value: timedelta, written: str):
    assert ics_text.duration(value) == written


def test_text_and_parameters_are_escaped_and_quoted():
    assert ics_text.text("a;b,c\\d\r\ne\nf") == "a\\;b\\,c\\\\d\\ne\\nf"
    assert ics_text.param("Anna Lee") == "Anna Lee"
    assert ics_text.param("Lee, Anna: boss") == '"Lee, Anna: boss"'


def test_a_base_url_too_long_for_one_line_is_folded_and_read_back_whole():
    """The URL line is written unfolded when the base URL leaves it one line (most do); a
    longer one is folded like any other line, and every reader gets the whole address back."""
    from core.calendar.models import Feed, FeedKind
    from core.calendar.vevents import FeedBuilder
    from core.teams.models import Workspace
    from tests.ics_samples import NOW, samples

    base = "https://calendar.example.org/vestnik/" + "team-" * 8
    feed = Feed(FeedKind.group, Workspace(name="Acme", timezone="Europe/Berlin"))
    build = FeedBuilder(feed, base, cache=False, now=NOW)
    for event, overrides, answers in samples():
        build.add(event, overrides, answers)
    raw = build.to_ical()
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    events = Calendar.from_ical(raw).walk("VEVENT")
    assert events and all(
        str(v["URL"]) == f"{base.rstrip('/')}/app/events/{v['URL'].rsplit('/', 1)[-1]}"
        and len(str(v["URL"]).rsplit("/", 1)[-1]) == 36
        for v in events
    )
    assert [v.url.value for v in vobject.readOne(raw.decode()).vevent_list] == [
        str(v["URL"]) for v in events
    ]
