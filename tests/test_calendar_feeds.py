"""Calendar feeds, read back the way calendar apps read them (icalendar + recurring-ical-events)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import recurring_ical_events
from icalendar import Calendar

from tests.conftest import Workspace
from tests.factories import group, member, ok

# Events further back than 180 days leave a feed, so the window starts near "today".
LO = datetime(2026, 6, 1, tzinfo=UTC)
HI = datetime(2027, 6, 1, tzinfo=UTC)


async def feed_link(ws: Workspace, path: str) -> dict[str, str]:
    return await ok(ws.client.post(path), 201)  # type: ignore[no-any-return]


async def fetch(public: httpx.AsyncClient, link: dict[str, str], **headers: str) -> httpx.Response:
    return await public.get(urlsplit(link["url"]).path, headers=headers)


async def calendar(public: httpx.AsyncClient, link: dict[str, str]) -> Calendar:
    response = await fetch(public, link)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def feed_occurrences(cal: Calendar, summary_prefix: str) -> list[tuple[datetime, datetime]]:
    out = []
    for vevent in recurring_ical_events.of(cal).between(LO, HI):
        if not str(vevent["SUMMARY"]).startswith(summary_prefix):
            continue
        start, end = vevent.decoded("DTSTART"), vevent.decoded("DTEND")
        if isinstance(start, datetime):
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            if not LO <= start < HI:
                continue
        out.append((start, end))
    return sorted(out)


async def core_occurrences(ws: Workspace, event: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    rows = await ok(
        ws.client.get(
            f"/events/{event['id']}/occurrences",
            params={"from": LO.isoformat(), "to": HI.isoformat()},
        )
    )
    result = []
    for row in rows:
        start = datetime.fromisoformat(row["starts_at"])
        end = datetime.fromisoformat(row["ends_at"])
        if event["all_day"]:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(event["timezone"])
            result.append((start.astimezone(zone).date(), end.astimezone(zone).date()))
        else:
            result.append((start, end))
    return sorted(result)


async def create_event(ws: Workspace, **body: Any) -> dict[str, Any]:
    return await ok(ws.client.post("/events", json=body), 201)  # type: ignore[no-any-return]


async def test_feed_occurrences_equal_core_across_dst_in_three_zones(acme: Workspace, public):
    anna = await member(acme.client, "Anna", email="anna@example.com")
    team = await group(acme.client, "Team", anna)
    audience = {"groups": [team["id"]]}
    events = [
        await create_event(
            acme,
            title="Moscow weekly",
            timezone="Europe/Moscow",
            starts_at="2026-09-07T10:00",
            ends_at="2026-09-07T11:00",
            rrule="FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20270301T000000Z",
            exdates=["2026-09-10T10:00"],
            audience=audience,
        ),
        await create_event(
            acme,
            title="Berlin weekly",
            timezone="Europe/Berlin",
            starts_at="2026-10-02T09:30",
            ends_at="2026-10-02T10:15",
            rrule="FREQ=WEEKLY;COUNT=20",
            audience=audience,
        ),
        await create_event(
            acme,
            title="New York biweekly",
            timezone="America/New_York",
            starts_at="2026-10-20T18:00",
            ends_at="2026-10-20T19:00",
            rrule="FREQ=WEEKLY;INTERVAL=2;COUNT=6",
            exdates=["2026-11-17T18:00"],
            audience=audience,
        ),
        await create_event(
            acme,
            title="Berlin last Friday",
            timezone="Europe/Berlin",
            all_day=True,
            start_date="2026-09-25",
            rrule="FREQ=MONTHLY;BYDAY=-1FR;COUNT=12",
            audience=audience,
        ),
        await create_event(
            acme,
            title="New York one-off",
            timezone="America/New_York",
            starts_at="2027-03-14T01:30",
            ends_at="2027-03-14T04:30",
            audience=audience,
        ),
        await create_event(
            acme,
            title="Moscow offsite",
            timezone="Europe/Moscow",
            all_day=True,
            start_date="2027-01-10",
            end_date="2027-01-12",
            audience=audience,
        ),
    ]
    # Move one Berlin occurrence across the DST change, out of its usual slot.
    await ok(
        acme.client.put(
            f"/events/{events[1]['id']}/occurrences/2026-10-23T09:30:00+02:00",
            json={"starts_at": "2026-10-26T14:00", "ends_at": "2026-10-26T15:00"},
        )
    )
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    cal = await calendar(public, link)

    for event in events:
        expected = await core_occurrences(acme, event)
        assert expected, event["title"]
        assert feed_occurrences(cal, event["title"]) == expected, event["title"]
    moved = [
        o
        for o in feed_occurrences(cal, "Berlin weekly")
        if o[0] == datetime(2026, 10, 26, 13, 0, tzinfo=UTC)
    ]
    assert moved, "the moved occurrence is at its new time (14:00 CET, after the clocks went back)"
    assert {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")} == {
        "Europe/Moscow",
        "Europe/Berlin",
        "America/New_York",
    }


async def test_feed_carries_what_calendar_apps_need(acme: Workspace, public):
    anna = await member(acme.client, "Anna")
    event = await create_event(
        acme,
        title="Planning, Q1; budget",
        description="Bring numbers\nand ideas",
        location="Room 1",
        starts_at="2026-12-01T10:00",
        reminder_offsets=[1440, 60],
        audience={"members": [anna["id"]]},
    )
    day = await create_event(
        acme,
        title="Holiday",
        all_day=True,
        start_date="2026-12-31",
        audience={"members": [anna["id"]]},
    )
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    assert link["webcal"].startswith("webcal://127.0.0.1:8000/ics/ics_")
    raw = (await fetch(public, link)).content
    cal = Calendar.from_ical(raw)

    assert str(cal["X-WR-CALNAME"]) == "Acme: Anna"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in raw
    assert str(cal["X-PUBLISHED-TTL"]) == "PT1H"
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded
    assert b"SUMMARY:Planning\\, Q1\\; budget" in raw  # escaped
    vevents = {str(v["SUMMARY"]): v for v in cal.walk("VEVENT")}
    planning = vevents["Planning, Q1; budget"]
    assert str(planning["UID"]) == f"{event['id']}@vestnik"
    assert str(planning["URL"]) == f"http://127.0.0.1:8000/app/events/{event['id']}"
    assert planning.decoded("DTSTART") == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert planning["DTSTART"].params["TZID"] == "Europe/Moscow"
    assert str(planning["STATUS"]) == "CONFIRMED"
    assert planning.decoded("SEQUENCE") == 0
    assert "DTSTAMP" in planning and "LAST-MODIFIED" in planning
    triggers = sorted(a.decoded("TRIGGER").total_seconds() for a in planning.walk("VALARM"))
    assert triggers == [-86400, -3600]
    holiday = vevents["Holiday"]
    assert holiday.decoded("DTSTART") == date(2026, 12, 31)
    assert holiday.decoded("DTEND") == date(2027, 1, 1)
    assert b"DTSTART;VALUE=DATE:20261231" in raw

    await ok(acme.client.patch(f"/events/{event['id']}", json={"title": "Planning"}))
    await ok(acme.client.patch(f"/events/{event['id']}", json={"location": "Room 2"}))
    again = Calendar.from_ical((await fetch(public, link)).content)
    planning = next(v for v in again.walk("VEVENT") if str(v["SUMMARY"]) == "Planning")
    assert planning.decoded("SEQUENCE") == 2
    assert day["id"]


async def test_personal_feed_shows_the_members_answers(acme: Workspace, public):
    anna = await member(acme.client, "Anna", email="anna@example.com", locale="ru")
    audience = {"members": [anna["id"]]}
    single = await create_event(
        acme,
        title="Retro",
        starts_at="2027-02-01T10:00",
        confirmation_required=True,
        audience=audience,
    )
    weekly = await create_event(
        acme,
        title="Standup",
        starts_at="2027-02-01T09:00",
        rrule="FREQ=WEEKLY;COUNT=3",
        confirmation_required=True,
        audience=audience,
    )
    await ok(
        acme.client.put(
            f"/events/{single['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    await ok(
        acme.client.put(
            f"/events/{weekly['id']}/confirmations/{anna['id']}",
            json={"answer": "not_going", "occurrence": "2027-02-08T09:00:00+03:00"},
        )
    )
    cal = await calendar(public, await feed_link(acme, f"/members/{anna['id']}/calendar-feed"))
    vevents = list(cal.walk("VEVENT"))
    retro = next(v for v in vevents if str(v["SUMMARY"]).startswith("Retro"))
    assert str(retro["SUMMARY"]) == "Retro (иду)"
    assert str(retro["ATTENDEE"]) == "mailto:anna@example.com"
    assert retro["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    standups = [v for v in vevents if str(v["SUMMARY"]).startswith("Standup")]
    master = next(v for v in standups if "RECURRENCE-ID" not in v)
    answered = next(v for v in standups if "RECURRENCE-ID" in v)
    assert master["ATTENDEE"].params["PARTSTAT"] == "NEEDS-ACTION"
    assert answered["ATTENDEE"].params["PARTSTAT"] == "DECLINED"
    assert answered.decoded("RECURRENCE-ID") == datetime(2027, 2, 8, 6, 0, tzinfo=UTC)
    assert str(answered["SUMMARY"]) == "Standup (не иду)"
    expanded = recurring_ical_events.of(cal).between(
        datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    )
    assert sorted(
        str(v["SUMMARY"]) for v in expanded if str(v["SUMMARY"]).startswith("Standup")
    ) == [
        "Standup",
        "Standup",
        "Standup (не иду)",
    ]


async def test_cancelled_and_deleted_events_show_as_cancelled(acme: Workspace, public):
    anna = await member(acme.client, "Anna")
    audience = {"members": [anna["id"]]}
    called_off = await create_event(
        acme, title="Called off", starts_at="2026-12-01T10:00", audience=audience
    )
    removed = await create_event(
        acme, title="Removed", starts_at="2026-12-02T10:00", audience=audience
    )
    await ok(acme.client.patch(f"/events/{called_off['id']}", json={"status": "cancelled"}))
    await ok(acme.client.delete(f"/events/{removed['id']}"), 204)

    cal = await calendar(public, await feed_link(acme, f"/members/{anna['id']}/calendar-feed"))
    status = {
        str(v["SUMMARY"]): (str(v["STATUS"]), v.decoded("SEQUENCE")) for v in cal.walk("VEVENT")
    }
    assert status == {"Called off": ("CANCELLED", 1), "Removed": ("CANCELLED", 1)}
    assert not list(cal.walk("VALARM"))


async def test_rotating_a_link_kills_the_old_one_at_once(acme: Workspace, public):
    anna = await member(acme.client, "Anna")
    first = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    assert (await fetch(public, first)).status_code == 200
    second = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    assert (await fetch(public, first)).status_code == 404
    assert (await fetch(public, second)).status_code == 200
    state = await ok(acme.client.get(f"/members/{anna['id']}/calendar-feed"))
    assert state["active"] is True and second["url"].split("/")[-1].startswith(state["prefix"])
    await ok(acme.client.delete(f"/members/{anna['id']}/calendar-feed"), 204)
    assert (await fetch(public, second)).status_code == 404
    assert (await ok(acme.client.get(f"/members/{anna['id']}/calendar-feed")))["active"] is False
    assert (await public.get("/ics/ics_" + "A" * 43 + ".ics")).status_code == 404
    assert (await public.get("/ics/not-a-token.ics")).status_code == 404


async def test_unchanged_feed_answers_304_and_a_change_answers_200(acme: Workspace, public):
    anna = await member(acme.client, "Anna")
    team = await group(acme.client, "Team")
    event = await create_event(
        acme, title="Sync", starts_at="2026-12-01T10:00", audience={"members": [anna["id"]]}
    )
    await create_event(
        acme, title="Team day", starts_at="2026-12-05T10:00", audience={"groups": [team["id"]]}
    )
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    first = await fetch(public, link)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["cache-control"] == "private, max-age=300"

    same = await fetch(public, link, **{"If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert (await fetch(public, link, **{"If-Modified-Since": modified})).status_code == 304
    assert (
        await fetch(public, link, **{"If-None-Match": '"other"', "If-Modified-Since": modified})
    ).status_code == 200

    await ok(
        acme.client.patch(
            f"/events/{event['id']}",
            json={"starts_at": "2026-12-01T12:00", "ends_at": "2026-12-01T13:00"},
        )
    )
    moved = await fetch(public, link, **{"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["etag"] != etag
    # Joining a group brings its events into the feed, though no event changed.
    etag = moved.headers["etag"]
    await ok(
        acme.client.post(f"/groups/{team['id']}/members/add", json={"member_ids": [anna["id"]]})
    )
    joined = await fetch(public, link, **{"If-None-Match": etag})
    assert joined.status_code == 200
    assert "Team day" in joined.text


async def test_group_feed_and_single_event_file(acme: Workspace, public):
    anna = await member(acme.client, "Anna")
    backend, design = await group(acme.client, "Backend", anna), await group(acme.client, "Design")
    await create_event(
        acme,
        title="Backend sync",
        starts_at="2026-12-01T10:00",
        audience={"groups": [backend["id"]]},
    )
    design_review = await create_event(
        acme,
        title="Design review",
        starts_at="2026-12-02T10:00",
        audience={"groups": [design["id"]]},
    )
    cal = await calendar(public, await feed_link(acme, f"/groups/{backend['id']}/calendar-feed"))
    assert [str(v["SUMMARY"]) for v in cal.walk("VEVENT")] == ["Backend sync"]
    assert str(cal["X-WR-CALNAME"]) == "Acme: Backend"
    assert "ATTENDEE" not in cal.walk("VEVENT")[0]

    one = await feed_link(acme, f"/events/{design_review['id']}/ics-link")
    assert "/ics/event/ics_" in one["url"]
    response = await fetch(public, one)
    assert response.headers["content-disposition"] == 'attachment; filename="design-review.ics"'
    assert [str(v["SUMMARY"]) for v in Calendar.from_ical(response.content).walk("VEVENT")] == [
        "Design review"
    ]
    # An event link is not a feed link and the other way round.
    token = one["url"].rsplit("/", 1)[-1]
    assert (await public.get(f"/ics/{token}")).status_code == 404


async def test_feeds_are_sealed_between_workspaces(acme: Workspace, globex: Workspace, public):
    anna = await member(acme.client, "Anna")
    await create_event(
        acme, title="Acme event", starts_at="2026-12-01T10:00", audience={"members": [anna["id"]]}
    )
    outsider = await member(globex.client, "Outsider")
    their_group = await group(globex.client, "Sales", outsider)
    their_event = await create_event(
        globex,
        title="Globex event",
        starts_at="2026-12-01T10:00",
        audience={"groups": [their_group["id"]]},
    )
    for path in (
        f"/members/{outsider['id']}/calendar-feed",
        f"/groups/{their_group['id']}/calendar-feed",
        f"/events/{their_event['id']}/ics-link",
    ):
        assert (await acme.client.post(path)).status_code == 404, path
        assert (await acme.client.get(path)).status_code == 404, path
        assert (await acme.client.delete(path)).status_code == 404, path
    mine = await calendar(public, await feed_link(acme, f"/members/{anna['id']}/calendar-feed"))
    theirs = await calendar(
        public, await feed_link(globex, f"/members/{outsider['id']}/calendar-feed")
    )
    assert [str(v["SUMMARY"]) for v in mine.walk("VEVENT")] == ["Acme event"]
    assert [str(v["SUMMARY"]) for v in theirs.walk("VEVENT")] == ["Globex event"]


async def test_a_thousand_events_in_one_feed(acme: Workspace, public, session):
    from core.audience.rule import AudienceRule
    from core.events.schemas import EventCreate
    from core.events.service import create_event as create
    from core.teams.builtin_roles import BuiltinRole
    from core.teams.permissions import Actor

    anna = await member(acme.client, "Anna")
    actor = Actor(workspace_id=acme.id, role=BuiltinRole.owner, label="test")
    rule = AudienceRule.model_validate({"members": [anna["id"]]})
    for i in range(1000):
        data = EventCreate(
            title=f"Event {i:04}",
            starts_at=datetime(2026, 12, 1, 8, 0)
            + (i * (datetime(2026, 1, 1, 1) - datetime(2026, 1, 1))),
            audience=rule,
            rrule="FREQ=WEEKLY;COUNT=4" if i % 10 == 0 else None,
        )
        await create(session, actor, data)
    await session.commit()
    cal = await calendar(public, await feed_link(acme, f"/members/{anna['id']}/calendar-feed"))
    assert len(cal.walk("VEVENT")) == 1000
    assert len({str(v["UID"]) for v in cal.walk("VEVENT")}) == 1000


async def test_a_feed_read_whole_or_in_steps_is_the_same_calendar(acme: Workspace, public):
    """A feed's first build reads its events in one statement; later ones read versions first,
    then the rows of what is not cached (by id when few, by the feed's selection when most: the
    cache evicted them). Each way gives the bytes a first build gives, a moved occurrence and
    the member's answers included."""
    from core.calendar import feed as feeds
    from core.calendar import vevents

    anna = await member(acme.client, "Anna")
    made = [
        await create_event(
            acme,
            title=f"Event {i}",
            starts_at=f"2026-12-{1 + i:02}T09:30",
            audience={"members": [anna["id"]]},
            rrule="FREQ=WEEKLY;COUNT=3" if i % 4 == 0 else None,
            confirmation_required=i in (0, 1),
        )
        for i in range(12)
    ]
    await ok(
        acme.client.put(
            f"/events/{made[4]['id']}/occurrences/2026-12-12T09:30:00+03:00",
            json={"starts_at": "2026-12-12T15:00", "ends_at": "2026-12-12T16:00"},
        )
    )
    for event, answer in ((made[0], {"occurrence": "2026-12-08T09:30:00+03:00"}), (made[1], {})):
        await ok(
            acme.client.put(
                f"/events/{event['id']}/confirmations/{anna['id']}",
                json={"answer": "not_going", **answer},
            )
        )
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")

    async def body() -> bytes:
        response = await fetch(public, link)
        assert response.status_code == 200, response.text
        return response.content

    async def as_first_build() -> bytes:
        feeds.clear_caches()
        return await body()

    await body()  # cached now
    await ok(acme.client.patch(f"/events/{made[3]['id']}", json={"title": "Moved one"}))
    one_changed = await body()  # one event re-read by id, the rest from the cache
    assert b"SUMMARY:Moved one" in one_changed and b"SUMMARY:Event 3\r" not in one_changed
    # The move and both answers are in the feed built in steps (keyed by event there too).
    assert b"DTSTART;TZID=Europe/Moscow:20261212T150000" in one_changed
    assert one_changed.count(b"SUMMARY:Event 0 (not going)") == 1
    assert one_changed.count(b"SUMMARY:Event 1 (not going)") == 1
    assert one_changed == await as_first_build()

    vevents._VEVENTS.clear()  # as an eviction would: the feed's shape is known, its VEVENTs gone
    await ok(acme.client.patch(f"/events/{made[5]['id']}", json={"title": "Moved two"}))
    most_missing = await body()  # read again by the feed's selection
    assert b"SUMMARY:Moved two" in most_missing
    assert most_missing == await as_first_build()


async def test_line_breaks_and_quotes_in_names_and_titles_keep_feeds_readable(acme: Workspace, app):
    """A member, group or event named over two lines: every feed still answers, and parsers read
    the names back."""
    anna = await member(acme.client, 'Anna "Ann"\nSmirnova', email="anna@example.com")
    team = await group(acme.client, "Back\nend", anna)
    await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Sync\nnow",
                "starts_at": "2026-12-07T10:00",
                "audience": {"groups": [team["id"]]},
                "confirmation_required": True,
            },
        ),
        201,
    )
    only = (await ok(acme.client.get("/events")))["items"][0]
    for made in (
        await ok(acme.client.post(f"/members/{anna['id']}/calendar-feed"), 201),
        await ok(acme.client.post(f"/groups/{team['id']}/calendar-feed"), 201),
        await ok(acme.client.post(f"/events/{only['id']}/ics-link"), 201),
    ):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vestnik.test"
        ) as anyone:
            served = await anyone.get(made["url"].split("8000", 1)[1])
        assert served.status_code == 200, served.text
        calendar = Calendar.from_ical(served.content)
        assert next(str(e["SUMMARY"]) for e in calendar.walk("VEVENT")).startswith("Sync\nnow")
        assert any(f"\\n{w}" in served.text for w in ("Smirnova", "end", "now"))  # escaped


async def test_every_change_a_feed_shows_is_served_never_a_stale_copy(
    acme: Workspace, globex: Workspace, public
):
    """Feeds are served from a validator the database keeps (migration 0020) and a cache of
    bodies by it: each kind of change must reach the next fetch, with or without If-None-Match."""
    anna = await member(acme.client, "Anna", email="anna@example.org")
    team = await group(acme.client, "Team", anna)
    vip = await ok(acme.client.post("/tags", json={"name": "vip"}), 201)
    sync = await create_event(
        acme,
        title="Sync",
        starts_at="2026-12-01T10:00",
        audience={"members": [anna["id"]]},
        confirmation_required=True,
        confirm_before_minutes=60,
    )
    await create_event(
        acme, title="VIP dinner", starts_at="2026-12-03T19:00", audience={"tags": [vip["id"]]}
    )
    mine = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    teams = await feed_link(acme, f"/groups/{team['id']}/calendar-feed")
    etags: set[str] = set()

    async def shows(link: dict[str, str], *words: str) -> None:
        plain = await fetch(public, link)  # no validator: the cached body must be the new one
        assert plain.status_code == 200
        text = plain.text.replace("\r\n ", "")
        assert all(w in text for w in words), (words, text)
        assert plain.headers["etag"] not in etags  # a change gives a new validator
        etags.add(plain.headers["etag"])
        again = await fetch(public, link, **{"If-None-Match": plain.headers["etag"]})
        assert again.status_code == 304

    await shows(mine, "SUMMARY:Sync", "X-WR-CALNAME:Acme: Anna")
    await ok(
        acme.client.put(
            f"/events/{sync['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    await shows(mine, "PARTSTAT=ACCEPTED")
    await ok(acme.client.patch(f"/members/{anna['id']}", json={"name": "Anna K"}))
    await shows(mine, "Acme: Anna K")
    await ok(acme.client.post(f"/tags/{vip['id']}/members/add", json={"member_ids": [anna["id"]]}))
    await shows(mine, "SUMMARY:VIP dinner")
    await ok(acme.client.patch("/workspace", json={"name": "Acme Corp"}))
    await shows(mine, "Acme Corp: Anna K")
    await shows(teams, "Acme Corp: Team")
    await ok(acme.client.patch(f"/groups/{team['id']}", json={"name": "Crew"}))
    await shows(teams, "Acme Corp: Crew")
    await ok(acme.client.delete(f"/events/{sync['id']}"), 204)
    await shows(mine, "STATUS:CANCELLED")

    # Another workspace with the same shape gets its own feed, never Acme's cached one.
    otto = await member(globex.client, "Anna K")
    theirs = await feed_link(globex, f"/members/{otto['id']}/calendar-feed")
    body = (await fetch(public, theirs)).text
    assert "Globex: Anna K" in body and "Acme" not in body and "Sync" not in body


async def test_a_big_feed_built_from_nothing_lets_other_requests_run(
    acme: Workspace, public, session
):
    """A feed's first build is hundreds of milliseconds of Python at 10,000 events: the event
    loop must turn while it runs, or every other request of the process waits for it. A task
    beside the build notes how many VEVENTs had been rendered at each turn it gets: never more
    than ``RENDERED_PER_TURN`` between two turns."""
    import asyncio
    import itertools
    import uuid as uuid_

    from sqlalchemy import insert

    from core.audience.rule import AudienceRule
    from core.calendar import vevents
    from core.calendar.feed import RENDERED_PER_TURN, clear_caches
    from core.events.models import Event

    anna = await member(acme.client, "Anna")
    audience = AudienceRule.model_validate({"members": [anna["id"]]}).model_dump(mode="json")
    starts = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    hour = datetime(2026, 1, 1, 1) - datetime(2026, 1, 1)
    await session.execute(
        insert(Event),
        [
            {
                "id": uuid_.uuid4(),
                "workspace_id": acme.id,
                "title": f"Event {i:04}",
                "timezone": "Europe/Berlin",
                "starts_at": starts + i * hour,
                "ends_at": starts + (i + 1) * hour,
                "rrule": "FREQ=WEEKLY;COUNT=8" if i % 10 == 0 else None,
                "exdates": [],
                "audience": audience,
                "reminder_offsets": [60],
            }
            for i in range(1000)
        ],
    )
    await session.commit()
    link = await feed_link(acme, f"/members/{anna['id']}/calendar-feed")
    clear_caches()
    seen: list[int] = []
    done = asyncio.Event()

    async def beside() -> None:
        while not done.is_set():
            seen.append(len(vevents._VEVENTS))
            await asyncio.sleep(0)

    ticking = asyncio.create_task(beside())
    try:
        cal = await calendar(public, link)
    finally:
        done.set()
        await ticking
    assert len({str(v["UID"]) for v in cal.walk("VEVENT")}) == 1000
    assert seen[-1] == 1000  # every event rendered while the task ran beside the build
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert 0 < max(steps) <= RENDERED_PER_TURN


async def test_a_teams_feeds_render_what_names_nobody_once_and_never_share_an_answer(
    acme: Workspace, public
):
    """Events that neither ask for an answer nor were answered read the same in every feed: the
    second member's first build renders only what names them (ATTENDEE, their answers), the
    group's none of the plain ones; and every feed is byte for byte what it is when built
    alone, from nothing: no member's answer, name or language reaches another's feed."""
    from core.calendar import vevents
    from core.calendar.feed import clear_caches

    anna = await member(acme.client, "Anna", email="anna@example.com", locale="ru")
    boris = await member(acme.client, "Boris")
    team = await group(acme.client, "Team", anna, boris)
    audience = {"groups": [team["id"]]}
    for i in range(6):
        await create_event(
            acme, title=f"Plain {i}", starts_at=f"2027-02-0{i + 1}T10:00", audience=audience
        )
    await create_event(
        acme,
        title="Weekly",
        starts_at="2027-02-01T09:00",
        rrule="FREQ=WEEKLY;COUNT=5",
        audience=audience,
    )
    retro = await create_event(
        acme,
        title="Retro",
        starts_at="2027-02-10T10:00",
        confirmation_required=True,
        audience=audience,
    )
    await create_event(
        acme,
        title="Review",
        starts_at="2027-02-11T10:00",
        confirmation_required=True,
        audience=audience,
    )
    await ok(
        acme.client.put(
            f"/events/{retro['id']}/confirmations/{anna['id']}", json={"answer": "going"}
        )
    )
    links = {
        "anna": await feed_link(acme, f"/members/{anna['id']}/calendar-feed"),
        "boris": await feed_link(acme, f"/members/{boris['id']}/calendar-feed"),
        "team": await feed_link(acme, f"/groups/{team['id']}/calendar-feed"),
    }
    clear_caches()
    together, rendered = {}, {}
    for name, link in links.items():
        before = len(vevents._VEVENTS)
        together[name] = (await fetch(public, link)).content
        rendered[name] = len(vevents._VEVENTS) - before
    # Anna: all 9. Boris: the two that ask him. The group: the two asking ones as they read
    # without a member (the plain seven are every feed's).
    assert rendered == {"anna": 9, "boris": 2, "team": 2}
    for name, link in links.items():
        clear_caches()
        assert (await fetch(public, link)).content == together[name], name
    boris_feed = Calendar.from_ical(together["boris"])
    shown = [str(v["SUMMARY"]) for v in boris_feed.walk("VEVENT")]
    assert "Retro" in shown and not any("иду" in s for s in shown)
    assert all(
        v["ATTENDEE"].params["PARTSTAT"] == "NEEDS-ACTION"
        for v in boris_feed.walk("VEVENT")
        if "ATTENDEE" in v
    )
    assert b"anna@example.com" not in together["boris"] + together["team"]
