"""Jobs: every change to an event plans, moves or cancels what will be sent, in the same change."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.clock import utcnow
from tests.conftest import Workspace
from tests.factories import group, member, ok

START = "2026-12-10T12:00:00Z"


async def schedule(
    ws: Workspace, event_id: str, closed: bool = False
) -> list[tuple[str, str, str]]:
    rows = await ok(
        ws.client.get(f"/events/{event_id}/schedule", params={"include_closed": closed})
    )
    return [(r["kind"], r["due_at"], r["status"]) for r in rows]


async def test_reminders_request_nudge_and_summary_are_planned(acme: Workspace):
    team = await group(acme.client, "Backend", await member(acme.client, "Anna"))
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Planning",
                "starts_at": START,
                "audience": {"groups": [team["id"]]},
                "reminder_offsets": [1440, 60],
                "confirmation_required": True,
                "confirm_before_minutes": 120,
            },
        ),
        201,
    )
    assert await schedule(acme, event["id"]) == [
        ("confirmation_request", "2026-12-09T12:00:00Z", "pending"),
        ("reminder", "2026-12-09T12:00:00Z", "pending"),
        ("nudge", "2026-12-09T23:00:00Z", "pending"),
        ("deadline_summary", "2026-12-10T10:00:00Z", "pending"),
        ("reminder", "2026-12-10T11:00:00Z", "pending"),
    ]


async def test_moving_an_event_moves_its_jobs_and_cancelling_drops_them(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events", json={"title": "Sync", "starts_at": START, "reminder_offsets": [60]}
        ),
        201,
    )
    await ok(
        acme.client.patch(
            f"/events/{event['id']}",
            json={"starts_at": "2026-12-11T12:00:00Z", "ends_at": "2026-12-11T13:00:00Z"},
        )
    )
    assert await schedule(acme, event["id"]) == [("reminder", "2026-12-11T11:00:00Z", "pending")]
    assert ("reminder", "2026-12-10T11:00:00Z", "cancelled") in await schedule(
        acme, event["id"], True
    )

    # A change that does not touch the time plans nothing new.
    await ok(acme.client.patch(f"/events/{event['id']}", json={"title": "Sync!"}))
    assert len(await schedule(acme, event["id"], True)) == 2

    await ok(acme.client.patch(f"/events/{event['id']}", json={"status": "cancelled"}))
    assert await schedule(acme, event["id"]) == []
    await ok(acme.client.patch(f"/events/{event['id']}", json={"status": "scheduled"}))
    assert await schedule(acme, event["id"]) == [("reminder", "2026-12-11T11:00:00Z", "pending")]
    await ok(acme.client.delete(f"/events/{event['id']}"), 204)
    rows = await ok(acme.client.get("/events", params={"q": "Sync"}))
    assert rows["total"] == 0


async def test_reminders_already_past_are_not_planned(acme: Workspace):
    soon = (utcnow() + timedelta(minutes=30)).isoformat()
    event = await ok(
        acme.client.post(
            "/events", json={"title": "Soon", "starts_at": soon, "reminder_offsets": [1440, 60, 10]}
        ),
        201,
    )
    assert [kind for kind, _, _ in await schedule(acme, event["id"])] == ["reminder"]


async def test_recurring_event_is_planned_over_the_horizon_with_its_exceptions(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Standup",
                "timezone": "Europe/Berlin",
                "starts_at": "2026-12-01T09:00",
                "rrule": "FREQ=DAILY",
                "exdates": ["2026-12-02T09:00"],
                "reminder_offsets": [15],
            },
        ),
        201,
    )
    dues = [due for _, due, _ in await schedule(acme, event["id"])]
    now = utcnow()
    assert all(now <= datetime.fromisoformat(d) <= now + timedelta(days=30) for d in dues)
    assert "2026-12-02T07:45:00Z" not in dues
    assert "2026-12-01T07:45:00Z" in dues and "2026-12-03T07:45:00Z" in dues
    # Moving one occurrence moves its reminder only.
    await ok(
        acme.client.put(
            f"/events/{event['id']}/occurrences/2026-12-03T09:00:00+01:00",
            json={"starts_at": "2026-12-03T15:00"},
        )
    )
    dues = [due for _, due, _ in await schedule(acme, event["id"])]
    assert "2026-12-03T07:45:00Z" not in dues and "2026-12-03T13:45:00Z" in dues
    assert "2026-12-04T07:45:00Z" in dues


async def test_schedule_is_sealed(acme: Workspace, globex: Workspace):
    event = await ok(
        globex.client.post("/events", json={"title": "Theirs", "starts_at": START}), 201
    )
    assert (await acme.client.get(f"/events/{event['id']}/schedule")).status_code == 404


async def test_a_one_off_event_months_ahead_is_planned_whole(acme: Workspace):
    event = await ok(
        acme.client.post(
            "/events",
            json={
                "title": "Summit",
                "starts_at": "2027-09-01T10:00:00Z",
                "reminder_offsets": [10080],
            },
        ),
        201,
    )
    assert await schedule(acme, event["id"]) == [("reminder", "2027-08-25T10:00:00Z", "pending")]
