"""Events: times in the right zone, recurrence, deadlines, and clear errors for bad input."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.conftest import Workspace
from tests.factories import fields_of, group, ok


async def test_timed_event_is_read_in_its_zone_and_stored_in_utc(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Planning",
                "starts_at": "2026-12-01T10:00",
                "ends_at": "2026-12-01T11:30",
                "reminder_offsets": [60, 1440, 60],
                "confirmation_required": True,
                "confirm_by": "2026-12-01T08:00",
            },
        ),
        201,
    )
    assert event["timezone"] == "Europe/Moscow"
    assert event["starts_at"] == "2026-12-01T07:00:00Z"
    assert event["local_start"] == "2026-12-01T10:00:00+03:00"
    assert event["reminder_offsets"] == [1440, 60]
    assert event["confirm_before_minutes"] == 120
    assert event["confirm_by"] == "2026-12-01T05:00:00Z"
    assert event["created_by"] == "token:owner"


async def test_all_day_event_spans_whole_local_days(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Offsite",
                "all_day": True,
                "start_date": "2026-12-10",
                "end_date": "2026-12-11",
                "timezone": "Europe/Berlin",
            },
        ),
        201,
    )
    assert event["starts_at"] == "2026-12-09T23:00:00Z"
    assert event["ends_at"] == "2026-12-11T23:00:00Z"
    assert (event["start_date"], event["end_date"]) == ("2026-12-10", "2026-12-11")


async def test_weekly_event_keeps_local_time_across_dst_and_skips_exceptions(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Standup",
                "timezone": "America/New_York",
                "starts_at": "2026-10-26T09:00",
                "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
                "exdates": ["2026-11-09T09:00"],
            },
        ),
        201,
    )
    occurrences = await ok(
        acme.client.get(
            f"/events/{event['id']}/occurrences",
            params={"from": "2026-10-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"},
        )
    )
    ny = ZoneInfo("America/New_York")
    local = [datetime.fromisoformat(o["starts_at"]).astimezone(ny) for o in occurrences]
    assert [d.strftime("%m-%d %H:%M") for d in local] == [
        "10-26 09:00",
        "11-02 09:00",
        "11-16 09:00",
    ]
    # 09:00 EDT is 13:00 UTC, 09:00 EST is 14:00 UTC: the wall clock holds, the instant moves.
    assert [o["starts_at"][11:16] for o in occurrences] == ["13:00", "14:00", "14:00"]


async def test_bad_event_input_gets_a_4xx_naming_the_field(acme: Workspace, make_workspace):
    other = await make_workspace("Other")
    their_group = await group(other.client, "Theirs")
    base = {"title": "Sync", "starts_at": "2026-12-01T10:00"}
    cases = [
        ({**base, "timezone": "Europe/Atlantis"}, 422, "timezone"),
        ({**base, "ends_at": "2026-12-01T09:00"}, 422, "ends_at"),
        ({**base, "rrule": "FREQ=SOMETIMES"}, 422, "rrule"),
        ({**base, "rrule": "FREQ=MINUTELY"}, 422, "rrule"),
        ({**base, "title": "   "}, 422, "title"),
        ({**base, "title": "x" * 100_000}, 422, "title"),
        ({**base, "audience": {"groups": [their_group["id"]]}}, 422, "audience.groups[0]"),
        ({**base, "audience": {"teams": []}}, 422, "audience.teams"),
        ({**base, "reminder_offsets": [-5]}, 422, "reminder_offsets[0]"),
        ({**base, "confirm_by": "2026-12-01T08:00"}, 422, "confirmation_required"),
        (
            {**base, "confirmation_required": True, "confirm_by": "2026-12-02T08:00"},
            422,
            "confirm_by",
        ),
        ({"title": "No time"}, 422, "starts_at"),
        ({**base, "all_day": True}, 422, "starts_at"),
        ({"title": "Day", "all_day": True}, 422, "start_date"),
        ({**base, "exdates": ["2026-12-08T10:00"]}, 422, "exdates"),
    ]
    for body, status, field in cases:
        response = await acme.client.post("/events", json=body)
        assert response.status_code == status, (field, response.text)
        assert field in fields_of(response.json()), (field, response.json())
    assert (await ok(acme.client.get("/events")))["total"] == 0


async def test_invalid_update_changes_nothing(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events",
            json={"title": "Sync", "starts_at": "2026-12-01T10:00", "ends_at": "2026-12-01T11:00"},
        ),
        201,
    )
    bad = await acme.client.patch(
        f"/events/{event['id']}", json={"title": "Moved", "ends_at": "2026-12-01T09:00"}
    )
    assert bad.status_code == 422
    assert fields_of(bad.json()) == ["ends_at"]
    assert (
        await acme.client.patch(f"/events/{event['id']}", json={"title": None})
    ).status_code == 422
    assert await ok(acme.client.get(f"/events/{event['id']}")) == event


async def test_event_can_be_moved_cancelled_and_deleted(acme: Workspace):
    event = await ok(
        acme.client.post("/events", json={"title": "Sync", "starts_at": "2026-12-01T10:00"}), 201
    )
    moved = await ok(
        acme.client.patch(
            f"/events/{event['id']}",
            json={
                "starts_at": "2026-12-02T10:00",
                "ends_at": "2026-12-02T12:00",
                "status": "cancelled",
            },
        )
    )
    assert moved["local_start"] == "2026-12-02T10:00:00+03:00"
    assert moved["status"] == "cancelled"
    to_all_day = await ok(
        acme.client.patch(
            f"/events/{event['id']}", json={"all_day": True, "start_date": "2026-12-03"}
        )
    )
    assert (to_all_day["start_date"], to_all_day["end_date"]) == ("2026-12-03", "2026-12-03")
    await ok(acme.client.delete(f"/events/{event['id']}"), 204)
    assert (await acme.client.get(f"/events/{event['id']}")).status_code == 404


async def test_event_list_filters_by_time_status_and_text(acme: Workspace):
    for title, start in (
        ("Retro", "2026-12-01T10:00"),
        ("Demo day", "2026-12-05T10:00"),
        ("Retro 2", "2027-01-10T10:00"),
    ):
        await ok(acme.client.post("/events", json={"title": title, "starts_at": start}), 201)
    weekly = await ok(
        acme.client.post(
            "/events",
            json={"title": "Weekly", "starts_at": "2026-11-01T10:00", "rrule": "FREQ=WEEKLY"},
        ),
        201,
    )
    december = await ok(
        acme.client.get(
            "/events",
            params={"starts_from": "2026-12-01T00:00:00Z", "starts_before": "2027-01-01T00:00:00Z"},
        )
    )
    assert [e["title"] for e in december["items"]] == ["Weekly", "Retro", "Demo day"]
    # One bound alone (each combination of filters is a statement of its own, built once).
    from_january = await ok(acme.client.get("/events", params={"starts_from": "2027-01-01T00:00Z"}))
    assert [e["title"] for e in from_january["items"]] == ["Weekly", "Retro 2"]
    before_december = await ok(
        acme.client.get("/events", params={"starts_before": "2026-12-01T00:00:00Z"})
    )
    assert [e["title"] for e in before_december["items"]] == ["Weekly"]
    retros = await ok(acme.client.get("/events", params={"q": "retro", "limit": 1}))
    assert (retros["total"], [e["title"] for e in retros["items"]]) == (2, ["Retro"])
    # The total rides along with a page's rows; a page past the end has none and still tells it.
    second = await ok(acme.client.get("/events", params={"q": "retro", "limit": 1, "offset": 1}))
    assert (second["total"], [e["title"] for e in second["items"]]) == (2, ["Retro 2"])
    past = await ok(acme.client.get("/events", params={"q": "retro", "offset": 5}))
    assert (past["total"], past["items"]) == (2, [])
    none = await ok(acme.client.get("/events", params={"q": "nothing like it"}))
    assert (none["total"], none["items"]) == (0, [])
    await ok(acme.client.patch(f"/events/{weekly['id']}", json={"status": "cancelled"}))
    cancelled = await ok(acme.client.get("/events", params={"status": "cancelled"}))
    assert [e["title"] for e in cancelled["items"]] == ["Weekly"]
    bad = await acme.client.get("/events", params={"limit": 1000})
    assert bad.status_code == 422 and fields_of(bad.json()) == ["limit"]
