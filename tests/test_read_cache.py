"""The busiest reads (member lists, event lists, audience previews) are answered from a cache kept
by a stamp the database renews as any change to what they show commits (migration 0026,
``core.reads.cache``): it must never answer with data a committed change has moved, whoever made
the change, nor with another workspace's data, and writers must not queue behind it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import make_sessionmaker
from core.reads.cache import Kind, ReadCache, answer
from core.teams.models import Tag
from tests.conftest import Workspace
from tests.factories import group, member, ok, tag

READS = ("members", "events", "audience")


async def _sql(engine: AsyncEngine, statement: str, **values: Any) -> None:
    """A change made outside the API (as the bot, the worker or psql make them), committed."""
    async with engine.begin() as connection:
        await connection.execute(text(statement), values)


async def _stamp(engine: AsyncEngine, workspace_id: uuid.UUID, kind: str = "members") -> uuid.UUID:
    async with engine.connect() as connection:
        stamp = await connection.scalar(
            text("SELECT stamp FROM read_versions WHERE workspace_id = :ws AND kind = :kind"),
            {"ws": workspace_id, "kind": kind},
        )
    assert isinstance(stamp, uuid.UUID)
    return stamp


async def test_every_change_the_cached_reads_show_is_read_never_a_stale_answer(
    acme: Workspace, globex: Workspace, app: Any, engine: AsyncEngine
):
    anna = await member(acme.client, "Anna", email="anna@example.org")
    bob = await member(acme.client, "Bob", telegram_user_id=4242, started=False)
    team = await group(acme.client, "Team", anna)
    vip = await tag(acme.client, "vip", anna)
    sync = await ok(
        acme.client.post("/events", json={"title": "Sync", "starts_at": "2026-12-01T10:00"}), 201
    )
    rule = {"groups": [team["id"]], "tags": [vip["id"]]}
    cache = app.state.read_cache

    async def read(ws: Workspace) -> dict[str, Any]:
        return {
            "members": await ok(ws.client.get("/members", params={"limit": 50})),
            "events": await ok(ws.client.get("/events")),
            "audience": await ok(ws.client.post("/audience/preview", json=rule))
            if ws is acme
            else None,
        }

    async def reads() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The three reads, checked to come from the cache when asked again unchanged."""
        first = await read(acme)
        hits = cache.hits
        again = await read(acme)
        assert cache.hits == hits + len(READS), "asked again unchanged, the answers were not kept"
        assert again == first
        people = {m["name"]: m for m in first["members"]["items"]}
        events = {e["id"]: e for e in first["events"]["items"]}
        return people, events, first["audience"]

    people, events, audience = await reads()
    assert audience["count"] == 1 and people["Bob"]["telegram_user_id"] == 4242

    ws = acme.id
    await _sql(
        engine,
        "UPDATE members SET last_activity_at = '2026-11-24T12:00:00Z' WHERE id = :id",
        id=anna["id"],
    )
    people, _, _ = await reads()
    assert people["Anna"]["last_activity_at"] == "2026-11-24T12:00:00Z"

    await _sql(engine, "UPDATE members SET status = 'unsubscribed' WHERE id = :id", id=anna["id"])
    _, _, audience = await reads()
    assert audience["by_status"]["unsubscribed"] == 1

    await _sql(
        engine,
        "INSERT INTO member_groups (group_id, member_id, workspace_id, added_at) "
        "VALUES (:g, :m, :ws, now())",
        g=team["id"],
        m=bob["id"],
        ws=ws,
    )
    people, _, audience = await reads()
    assert audience["count"] == 2 and [g["name"] for g in people["Bob"]["groups"]] == ["Team"]

    await _sql(engine, "UPDATE groups SET name = 'Crew' WHERE id = :id", id=team["id"])
    people, _, _ = await reads()
    assert [g["name"] for g in people["Anna"]["groups"]] == ["Crew"]

    await _sql(engine, "UPDATE tags SET name = 'gold' WHERE id = :id", id=vip["id"])
    people, _, _ = await reads()
    assert [t["name"] for t in people["Anna"]["tags"]] == ["gold"]

    await _sql(
        engine,
        "UPDATE roles SET name = 'crew member' WHERE workspace_id = :ws AND name = 'member'",
        ws=ws,
    )
    people, _, _ = await reads()
    assert [r["name"] for r in people["Anna"]["roles"]] == ["crew member"]

    await _sql(engine, "DELETE FROM member_tags WHERE member_id = :id", id=anna["id"])
    people, _, audience = await reads()
    assert people["Anna"]["tags"] == [] and audience["count"] == 2  # Anna still by her group

    await _sql(engine, "DELETE FROM member_accounts WHERE member_id = :id", id=bob["id"])
    people, _, _ = await reads()
    assert people["Bob"]["telegram_user_id"] is None

    await _sql(engine, "UPDATE events SET title = 'Retro' WHERE id = :id", id=sync["id"])
    _, events, _ = await reads()
    assert events[sync["id"]]["title"] == "Retro"

    # A change rolled back leaves the stamp as it was: the kept answers still hold.
    before = await _stamp(engine, ws)
    async with engine.connect() as connection:
        await connection.execute(
            text("UPDATE members SET name = 'Ghost' WHERE id = :id"), {"id": anna["id"]}
        )
        await connection.rollback()
    assert await _stamp(engine, ws) == before
    hits = cache.hits
    kept = await read(acme)
    assert cache.hits == hits + len(READS) and "Ghost" not in str(kept)

    # Changes through the API itself, and deleting someone.
    await ok(acme.client.patch(f"/members/{anna['id']}", json={"name": "Anna K"}))
    await _sql(engine, "DELETE FROM members WHERE id = :id", id=bob["id"])
    people, _, audience = await reads()
    assert sorted(people) == ["Anna K"] and audience["count"] == 1

    # Another workspace asking the very same questions gets its own answers.
    otto = await member(globex.client, "Anna K")
    theirs = await read(globex)
    assert [m["id"] for m in theirs["members"]["items"]] == [otto["id"]]
    assert theirs["events"]["items"] == []
    mine = await read(acme)
    assert [m["name"] for m in mine["members"]["items"]] == ["Anna K"]
    assert mine["members"]["items"][0]["id"] == anna["id"]


async def test_each_kind_of_read_moves_with_what_it_shows_alone(
    acme: Workspace, app: Any, engine: AsyncEngine
):
    """The bot marks members active all day: that must not cost the event lists or audience
    previews their kept answers. And a kept preview skips the check that the groups it names
    exist, so deleting an empty group must still move it: the next preview is refused."""
    anna = await member(acme.client, "Anna")
    team = await group(acme.client, "Team", anna)
    empty = await group(acme.client, "Nobody yet")
    await ok(
        acme.client.post("/events", json={"title": "Sync", "starts_at": "2026-12-01T10:00"}), 201
    )
    cache = app.state.read_cache
    asks = {
        "members": lambda: acme.client.get("/members"),
        "audience": lambda: acme.client.post(
            "/audience/preview", json={"groups": [team["id"], empty["id"]]}
        ),
        "events": lambda: acme.client.get("/events"),
    }

    async def kept() -> set[str]:
        """Which reads were answered from the cache (each asked once before, to fill it)."""
        found = set()
        for kind, ask in asks.items():
            hits = cache.hits
            await ok(ask())
            if cache.hits > hits:
                found.add(kind)
        return found

    for ask in asks.values():
        await ok(ask())
    assert await kept() == {"members", "audience", "events"}

    changes = [
        ("UPDATE members SET last_activity_at = now() WHERE id = :id", {"members"}),
        ("UPDATE members SET status = 'unreachable' WHERE id = :id", {"members", "audience"}),
        ("UPDATE members SET locale = 'ru' WHERE id = :id", {"members"}),
        ("UPDATE events SET title = 'Retro' WHERE workspace_id = :ws", {"events"}),
        ("UPDATE groups SET description = 'x' WHERE id = :team", {"members", "audience"}),
    ]
    for statement, moved in changes:
        await _sql(engine, statement, id=anna["id"], ws=acme.id, team=team["id"])
        assert await kept() == {"members", "audience", "events"} - moved, statement
        assert await kept() == {"members", "audience", "events"}

    await _sql(engine, "DELETE FROM groups WHERE id = :id", id=empty["id"])
    refused = await acme.client.post(
        "/audience/preview", json={"groups": [team["id"], empty["id"]]}
    )
    assert refused.status_code == 422, refused.text


async def test_writers_in_one_workspace_never_wait_on_each_other_through_the_stamp(
    acme: Workspace, engine: AsyncEngine
):
    """The stamp is renewed as a transaction commits, not when it changes a row: a transaction
    left open after changing one member must not hold up another changing a second member (a
    stamp taken at the change would, and two such writers could deadlock)."""
    anna = await member(acme.client, "Anna")
    bob = await member(acme.client, "Bob")
    start = await _stamp(engine, acme.id)
    async with engine.connect() as first, engine.connect() as second:
        await first.execute(
            text("UPDATE members SET name = 'Anna 1' WHERE id = :id"), {"id": anna["id"]}
        )

        async def other_writer() -> None:
            await second.execute(
                text("UPDATE members SET name = 'Bob 2' WHERE id = :id"), {"id": bob["id"]}
            )
            await second.commit()

        await asyncio.wait_for(other_writer(), timeout=30)
        middle = await _stamp(engine, acme.id)
        assert middle != start
        names = [m["name"] for m in (await ok(acme.client.get("/members")))["items"]]
        assert "Bob 2" in names and "Anna" in names  # the open change is not seen, nor kept
        await first.commit()
    assert await _stamp(engine, acme.id) not in (start, middle)
    names = [m["name"] for m in (await ok(acme.client.get("/members")))["items"]]
    assert "Anna 1" in names and "Bob 2" in names


async def test_an_answer_is_kept_only_for_data_no_transaction_was_changing(
    acme: Workspace, engine: AsyncEngine, session: AsyncSession
):
    """What a transaction that wrote sees is nobody's committed data: it neither uses nor keeps
    an answer. A change committed while a read runs keeps that read's answer out too."""
    await member(acme.client, "Anna")
    cache = ReadCache()
    served = 0

    async def read() -> bytes:
        nonlocal served
        served += 1
        return b"answer %d" % served

    assert await answer(session, cache, acme.id, Kind.members, "list", read) == b"answer 1"
    assert await answer(session, cache, acme.id, Kind.members, "list", read) == b"answer 1"  # kept
    await session.rollback()
    # An object added and not yet flushed is a write too: neither the kept answer nor kept.
    session.add(Tag(workspace_id=acme.id, name="pending"))
    assert await answer(session, cache, acme.id, Kind.members, "list", read) == b"answer 2"
    await session.rollback()

    await session.execute(
        text("UPDATE members SET name = name || '!' WHERE workspace_id = :ws"), {"ws": acme.id}
    )
    assert await answer(session, cache, acme.id, Kind.members, "list", read) == b"answer 3"
    assert (
        await answer(session, cache, acme.id, Kind.members, "list", read) == b"answer 4"
    )  # neither kept
    await session.rollback()
    assert (
        await answer(session, cache, acme.id, Kind.members, "list", read) == b"answer 1"
    )  # nothing committed
    await session.rollback()

    async def read_while_someone_commits() -> bytes:
        await _sql(engine, "UPDATE members SET locale = 'ru' WHERE workspace_id = :ws", ws=acme.id)
        return await read()

    assert (
        await answer(session, cache, acme.id, Kind.members, "new", read_while_someone_commits)
        == b"answer 5"
    )
    await session.rollback()
    assert (
        await answer(session, cache, acme.id, Kind.members, "new", read) == b"answer 6"
    )  # 4 was not kept
    assert await answer(session, cache, acme.id, Kind.members, "new", read) == b"answer 6"
    assert (
        await answer(session, cache, uuid.uuid4(), Kind.members, "list", read) == b"answer 7"
    )  # no stamp
    assert await answer(session, cache, uuid.uuid4(), Kind.members, "list", read) == b"answer 8"


def test_the_cache_holds_at_most_its_bytes_and_drops_the_least_recently_used():
    cache = ReadCache(max_bytes=1000)
    ws, stamp = uuid.uuid4(), uuid.uuid4()
    for i in range(10):
        cache.put(ws, i, stamp, bytes(300))
        cache.get(ws, 0, stamp)  # 0 stays in use
    assert cache.held <= 1000 and len(cache) == 3
    assert cache.get(ws, 0, stamp) is not None and cache.get(ws, 9, stamp) is not None
    assert cache.get(ws, 1, stamp) is None
    cache.put(ws, "big", stamp, bytes(1001))
    assert cache.get(ws, "big", stamp) is None
    cache.put(ws, "x" * 2000, stamp, b"{}")  # what was asked counts too
    assert cache.get(ws, "x" * 2000, stamp) is None and cache.held <= 1000
    assert ReadCache(max_bytes=0).max_bytes == 0


async def test_requests_asking_the_same_at_once_wait_for_one_read(
    acme: Workspace, engine: AsyncEngine
):
    """When a stamp moves under load, every request in flight finds its answer gone: one reads
    it and the others wait for that read and take its answer, even if the stamp moved again
    while it ran (every statement of it began after the stamp they found was current); such an
    answer is not kept."""
    await member(acme.client, "Anna")
    cache = ReadCache()
    sessions = [make_sessionmaker(engine)() for _ in range(5)]
    gate = asyncio.Event()
    reads = 0

    async def slow_read(change: bool) -> bytes:
        nonlocal reads
        reads += 1
        await gate.wait()
        if change and reads == 1:
            await _sql(
                engine, "UPDATE members SET locale = 'ru' WHERE workspace_id = :ws", ws=acme.id
            )
        return b"read %d" % reads

    async def all_at_once(change: bool) -> list[bytes]:
        nonlocal reads
        reads, misses = 0, cache.misses
        gate.clear()
        asked = [
            asyncio.create_task(
                answer(s, cache, acme.id, Kind.members, change, lambda: slow_read(change))
            )
            for s in sessions
        ]
        deadline = asyncio.get_running_loop().time() + 30
        while cache.misses < misses + len(sessions):  # each has looked, found none and waits
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.wait_for(asyncio.gather(*asked), 30)

    try:
        assert await all_at_once(False) == [b"read 1"] * 5 and reads == 1
        # The first read saw a change commit: those waiting take it, nobody keeps it.
        assert await all_at_once(True) == [b"read 1"] * 5 and reads == 1
        reads = 0
        fresh = await answer(
            sessions[0], cache, acme.id, Kind.members, True, lambda: slow_read(False)
        )
        assert fresh == b"read 1" and reads == 1  # read afresh at the new stamp, then kept
        again = await answer(
            sessions[1], cache, acme.id, Kind.members, True, lambda: slow_read(False)
        )
        assert again == b"read 1" and reads == 1
    finally:
        for s in sessions:
            await s.close()


async def test_writers_committing_at_once_never_deadlock_on_the_stamps(
    acme: Workspace, engine: AsyncEngine
):
    """Each pair changes an event and a member of its own, one pair events first and the other
    members first: nothing but the workspace's stamps is shared. Renewed one note at a time, in
    the order noted, two commits could each hold the stamp the other waited for (6 deadlocks in
    1,600 transactions on this machine); renewed together in one order, none."""
    for n in (1, 2):
        await member(acme.client, f"m{n}")
        await ok(
            acme.client.post("/events", json={"title": f"e{n}", "starts_at": "2026-12-01T10:00"}),
            201,
        )

    async def writer(n: int, events_first: bool) -> None:
        steps = [
            f"UPDATE events SET title = title WHERE title = 'e{n}'",
            f"UPDATE members SET name = name, status = 'active' WHERE name = 'm{n}'",
        ]
        for _ in range(400):
            async with engine.begin() as connection:
                for statement in steps if events_first else steps[::-1]:
                    await connection.execute(text(statement))

    await asyncio.wait_for(
        asyncio.gather(writer(1, True), writer(2, False), writer(1, True), writer(2, False)), 300
    )
