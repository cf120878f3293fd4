"""Importing an .ics file: created, updated, unchanged or refused, each with its reason."""

from __future__ import annotations

from tests.conftest import Workspace
from tests.factories import ok

TEAM_ICS = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Other calendar//EN
BEGIN:VEVENT
UID:planning-1@example.com
SUMMARY:Planning
DESCRIPTION:Quarterly planning
LOCATION:Room 1
DTSTART;TZID=Europe/Berlin:20261207T100000
DTEND;TZID=Europe/Berlin:20261207T113000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=Europe/Berlin:20261214T100000
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Planning
TRIGGER:-PT1H
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:planning-1@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20261221T100000
SUMMARY:Planning (moved)
DTSTART;TZID=Europe/Berlin:20261222T150000
DTEND;TZID=Europe/Berlin:20261222T160000
END:VEVENT
BEGIN:VEVENT
UID:holiday-1@example.com
SUMMARY:Holiday
DTSTART;VALUE=DATE:20261231
DTEND;VALUE=DATE:20270102
END:VEVENT
BEGIN:VEVENT
UID:broken-1@example.com
SUMMARY:Ends before it starts
DTSTART:20261201T100000Z
DTEND:20261201T090000Z
END:VEVENT
BEGIN:VEVENT
SUMMARY:No uid
DTSTART:20261201T100000Z
END:VEVENT
BEGIN:VEVENT
UID:spam-1@example.com
SUMMARY:Every minute
DTSTART:20261201T100000Z
RRULE:FREQ=MINUTELY
END:VEVENT
END:VCALENDAR
"""


async def _import(ws: Workspace, body: bytes) -> dict:
    response = await ws.client.post(
        "/events/import", content=body, headers={"Content-Type": "text/calendar"}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_import_reports_created_and_refused_with_reasons(acme: Workspace):
    report = await _import(acme, TEAM_ICS)

    assert sorted(e["uid"] for e in report["created"]) == [
        "holiday-1@example.com",
        "planning-1@example.com",
    ]
    refused = {r["summary"]: r["reason"] for r in report["refused"]}
    assert refused.keys() == {"Ends before it starts", "No uid", "Every minute"}
    assert "ends_at" in refused["Ends before it starts"]
    assert "UID" in refused["No uid"]
    assert "MINUTELY" in refused["Every minute"]

    planning_id = next(e["id"] for e in report["created"] if e["title"] == "Planning")
    planning = await ok(acme.client.get(f"/events/{planning_id}"))
    assert planning["timezone"] == "Europe/Berlin"
    assert planning["local_start"] == "2026-12-07T10:00:00+01:00"
    assert planning["reminder_offsets"] == [60]
    occurrences = await ok(
        acme.client.get(
            f"/events/{planning_id}/occurrences",
            params={"from": "2026-12-01T00:00:00Z", "to": "2027-01-31T00:00:00Z"},
        )
    )
    assert [(o["starts_at"], o["moved"]) for o in occurrences] == [
        ("2026-12-07T09:00:00Z", False),
        ("2026-12-22T14:00:00Z", True),
        ("2026-12-28T09:00:00Z", False),
    ]
    holiday_id = next(e["id"] for e in report["created"] if e["title"] == "Holiday")
    holiday = await ok(acme.client.get(f"/events/{holiday_id}"))
    assert (holiday["all_day"], holiday["start_date"], holiday["end_date"]) == (
        True,
        "2026-12-31",
        "2027-01-01",
    )


async def test_reimport_is_idempotent_and_updates_by_uid(acme: Workspace):
    first = await _import(acme, TEAM_ICS)
    again = await _import(acme, TEAM_ICS)
    assert again["created"] == []
    assert sorted(e["uid"] for e in again["unchanged"]) == [
        "holiday-1@example.com",
        "planning-1@example.com",
    ]
    assert (await ok(acme.client.get("/events")))["total"] == 2

    # The lead targets the event; a changed file updates it but keeps the targeting.
    planning_id = next(e["id"] for e in first["created"] if e["title"] == "Planning")
    anna = await ok(acme.client.post("/members", json={"name": "Anna"}), 201)
    await ok(
        acme.client.patch(f"/events/{planning_id}", json={"audience": {"members": [anna["id"]]}})
    )
    changed = await _import(acme, TEAM_ICS.replace(b"LOCATION:Room 1", b"LOCATION:Room 7"))
    assert [e["uid"] for e in changed["updated"]] == ["planning-1@example.com"]
    planning = await ok(acme.client.get(f"/events/{planning_id}"))
    assert planning["location"] == "Room 7"
    assert planning["audience"]["members"] == [anna["id"]]


async def test_import_rejects_what_is_not_a_calendar(acme: Workspace, globex: Workspace):
    for body in (b"hello", b"BEGIN:VCARD\r\nEND:VCARD\r\n"):
        response = await acme.client.post(
            "/events/import", content=body, headers={"Content-Type": "text/calendar"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body"
    empty = await acme.client.post(
        "/events/import", content=b"", headers={"Content-Type": "text/calendar"}
    )
    assert empty.status_code == 422
    # Same UIDs in another workspace are other events.
    await _import(acme, TEAM_ICS)
    theirs = await _import(globex, TEAM_ICS)
    assert len(theirs["created"]) == 2
    assert (await ok(acme.client.get("/events")))["total"] == 2
