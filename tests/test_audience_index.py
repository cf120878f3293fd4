"""A lead trying rule after rule is answered from the workspace's audience index, held in memory
at one stamp of its audience data (``core.audience.index``): it must reach exactly whom Postgres
reaches, never answer once a committed change has moved the stamp, never answer a transaction
that has written, and never answer for another workspace."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.audience.index import (
    READ_AFTER_PREVIEWS,
    REFRESH_MOST_MEMBERS,
    AudienceIndex,
    AudienceIndexes,
    Moved,
    read_index,
    refresh_index,
)
from core.audience.preview import INDEXES, preview_audience
from core.audience.rule import AudienceRule, preview_in_sql
from core.db import make_engine, make_sessionmaker
from core.reads.cache import Kind, current_stamp
from core.teams.models import Group, Member, MemberGroup, MemberRole, MemberTag, Role, Tag
from core.teams.permissions import system_actor
from tests.conftest import Workspace
from tests.factories import group, member, ok, role_id, tag

STATUSES = ("active", "active", "active", "unsubscribed", "unreachable")
# Names that sort apart from how they were made: repeated names (then by id), cases, letters
# outside ASCII.
NAMES = ("Anna", "anna", "Boris", "Ёлка", "Zoe", "Ölaf", "Égor", "Anna", "ян", "Mark")


async def _sql(engine: AsyncEngine, statement: str, **values: Any) -> None:
    """A change made outside the API (as the bot, the worker or psql make them), committed."""
    async with engine.begin() as connection:
        await connection.execute(text(statement), values)


async def _held_now(engine: AsyncEngine, workspace_id: uuid.UUID) -> bool:
    """Whether the workspace's index at its current stamp is held."""
    async with make_sessionmaker(engine)() as session:
        stamp = await current_stamp(session, workspace_id, Kind.audience)
    assert stamp is not None
    return INDEXES.at(workspace_id, stamp) is not None


async def _held_soon(engine: AsyncEngine, workspace_id: uuid.UUID) -> bool:
    """Whether the workspace's index at its current stamp is held within seconds: it is read
    apart from the preview that found it worth reading, which Postgres answered meanwhile."""
    for _ in range(400):
        if await _held_now(engine, workspace_id):
            return True
        await asyncio.sleep(0.025)
    return False


async def _team(engine: AsyncEngine, ws: uuid.UUID, seed: int) -> dict[str, list[uuid.UUID]]:
    """300 members (two of them with ids alike in their first eight bytes), 8 groups, 10 tags,
    3 roles, each member in a few of each, written in SQL."""
    rng = random.Random(seed)
    twin = uuid.uuid4().bytes[:8]
    people = [uuid.UUID(bytes=twin + uuid.uuid4().bytes[8:]) for _ in range(2)]
    people += [uuid.uuid4() for _ in range(298)]
    owned: dict[str, list[uuid.UUID]] = {
        "members": people,
        "groups": [uuid.uuid4() for _ in range(8)],
        "tags": [uuid.uuid4() for _ in range(10)],
        "roles": [uuid.uuid4() for _ in range(3)],
    }
    links: dict[type[Any], list[dict[str, Any]]] = {MemberGroup: [], MemberTag: [], MemberRole: []}
    for person in people:
        for owner in rng.sample(owned["groups"], rng.randint(0, 3)):
            links[MemberGroup].append({"group_id": owner, "member_id": person, "workspace_id": ws})
        for owner in rng.sample(owned["tags"], rng.randint(0, 4)):
            links[MemberTag].append(
                {"tag_id": owner, "member_id": person, "workspace_id": ws, "added_by": "test"}
            )
        for owner in rng.sample(owned["roles"], rng.randint(0, 1)):
            links[MemberRole].append({"role_id": owner, "member_id": person, "workspace_id": ws})
    async with engine.begin() as connection:
        await connection.execute(
            insert(Member),
            [
                {
                    "id": person,
                    "workspace_id": ws,
                    "name": f"{rng.choice(NAMES)} {i % 7}",
                    "timezone": "UTC",
                    "status": rng.choice(STATUSES),
                }
                for i, person in enumerate(people)
            ],
        )
        for model, part in ((Group, "groups"), (Tag, "tags"), (Role, "roles")):
            await connection.execute(
                insert(model),
                [
                    {"id": owner, "workspace_id": ws, "name": f"{part} {seed} {i}"}
                    for i, owner in enumerate(owned[part])
                ],
            )
        for model, rows in links.items():
            await connection.execute(insert(model), rows)
    return owned


def _rules(owned: dict[str, list[uuid.UUID]], seed: int, count: int) -> list[AudienceRule]:
    rng = random.Random(seed)

    def some(part: str, most: int) -> list[uuid.UUID]:
        return rng.sample(owned[part], rng.randint(0, most))

    rules = [AudienceRule(), AudienceRule(members=owned["members"][:2])]
    for _ in range(count):
        rules.append(
            AudienceRule(
                groups=some("groups", 3),
                tags=some("tags", 3),
                tags_mode=rng.choice(["any", "all"]),
                roles=some("roles", 2),
                members=some("members", 4),
                exclude_groups=some("groups", 2),
                exclude_tags=some("tags", 2),
                exclude_members=some("members", 3),
            )
        )
    return rules


async def test_the_index_reaches_exactly_whom_postgres_reaches(
    acme: Workspace, engine: AsyncEngine, session: AsyncSession
):
    """Every part of a rule (any and all of the tags, people included and excluded, two ids alike
    in their first eight bytes), counted by status, and the first names in Postgres's order of
    names (repeated names, cases, letters outside ASCII), for 60 rules: as Postgres answers."""
    owned = await _team(engine, acme.id, seed=5)
    index = await read_index(session, acme.id)
    assert len(index) == 300
    for rule in _rules(owned, seed=11, count=60):
        for limit in (1, 7, 200):
            sql = await preview_in_sql(session, acme.id, rule, limit)
            counts, members = index.preview(rule, limit)
            assert counts == sql.by_status.model_dump(), rule
            assert members == sql.members, (rule, limit)
    # The two ids alike in their first eight bytes are told apart.
    for person in owned["members"][:2]:
        counts, members = index.preview(AudienceRule(members=[person]), 5)
        assert counts["total"] == 1 and members[0].id == person


async def test_a_lead_trying_rules_is_answered_from_the_index_and_never_a_stale_one(
    acme: Workspace, engine: AsyncEngine
):
    """Through the API: after a few previews at one stamp the index is read and answers the next
    rules; a change committed from outside the API (psql, the bot) is seen by the very next
    preview, and a rolled-back one keeps the index."""
    anna = await member(acme.client, "Anna")
    boris = await member(acme.client, "Boris")
    vera = await member(acme.client, "Vera")
    team = await group(acme.client, "Team", anna, boris)
    vip = await tag(acme.client, "vip", vera)
    lead = await role_id(acme.client, "lead")
    tries = [
        {"groups": [team["id"]]},
        {"tags": [vip["id"]]},
        {"groups": [team["id"]], "tags": [vip["id"]]},
        {"roles": [lead], "members": [vera["id"]]},
        {"groups": [team["id"]], "exclude_members": [boris["id"]]},
    ]

    async def names(rule: dict[str, Any], limit: int = 20) -> list[str]:
        preview = await ok(acme.client.post("/audience/preview", json={**rule, "limit": limit}))
        return [m["name"] for m in preview["members"]]

    expected = [["Anna", "Boris"], ["Vera"], ["Anna", "Boris", "Vera"], ["Vera"], ["Anna"]]
    for i, rule in enumerate(tries):
        assert await names(rule) == expected[i]
        if i < READ_AFTER_PREVIEWS:
            assert not await _held_now(engine, acme.id)
        else:
            assert await _held_soon(engine, acme.id)
    # The same rules again with another limit (the API's read cache keys them apart): the index.
    assert await names(tries[2], limit=2) == ["Anna", "Boris"]

    await _sql(
        engine,
        "INSERT INTO member_groups (group_id, member_id, workspace_id) VALUES (:g, :m, :ws)",
        g=team["id"],
        m=vera["id"],
        ws=acme.id,
    )
    assert not await _held_now(engine, acme.id)
    assert await names(tries[0], limit=3) == ["Anna", "Boris", "Vera"]
    await _sql(engine, "UPDATE members SET name = 'Alla' WHERE id = :m", m=boris["id"])
    assert await names(tries[0], limit=4) == ["Alla", "Anna", "Vera"]
    await _sql(engine, "UPDATE members SET status = 'unreachable' WHERE id = :m", m=anna["id"])
    preview = await ok(acme.client.post("/audience/preview", json={**tries[0], "limit": 5}))
    assert preview["by_status"] == {"total": 3, "active": 2, "unsubscribed": 0, "unreachable": 1}
    await _sql(engine, "DELETE FROM member_tags WHERE tag_id = :t", t=vip["id"])
    assert await names(tries[1], limit=6) == []

    for i in range(READ_AFTER_PREVIEWS):  # previews at the new stamp, then the index is read
        await names(tries[i], limit=10 + i)
    assert await names(tries[4], limit=20) == ["Anna", "Vera"]
    assert await _held_soon(engine, acme.id)
    async with engine.connect() as connection, connection.begin() as transaction:
        await connection.execute(
            text("DELETE FROM member_groups WHERE group_id = :g"), {"g": team["id"]}
        )
        await transaction.rollback()
    assert await _held_now(engine, acme.id)
    assert await names(tries[0], limit=21) == ["Alla", "Anna", "Vera"]


def _same(one: AudienceIndex, other: AudienceIndex) -> None:
    """The same members in the same order with the same names and status, and the same members
    in each set, wherever each index keeps them."""

    def member(index: AudienceIndex, at: int) -> bytes:
        return index.ids[16 * at : 16 * at + 16]

    def members(index: AudienceIndex) -> list[tuple[bytes, str, int]]:
        return [(member(index, at), index.names[at], int(index.status[at])) for at in index.order]

    def sets(index: AudienceIndex) -> dict[tuple[str, uuid.UUID], list[bytes]]:
        return {
            key: sorted(member(index, at) for at in positions)
            for key, positions in index.sets.items()
        }

    assert one.stamp == other.stamp
    assert members(one) == members(other)
    assert sets(one) == sets(other)


_LIKE = (  # one member like another, but for the id and name
    "INSERT INTO members SELECT (jsonb_populate_record(NULL::members, to_jsonb(m)"
    " || jsonb_build_object('id', CAST(:m AS uuid), 'name', CAST(:name AS text)))).*"
    " FROM members m WHERE id = :like"
)


async def test_an_index_brought_to_a_change_reads_only_what_changed(
    acme: Workspace, globex: Workspace, engine: AsyncEngine, session: AsyncSession
):
    """After each committed change to who belongs to what, or to the members themselves, the
    index held is brought to the new stamp by reading only the changed groups, tags and roles
    and the members changed, and is what reading it whole gives (every set not changed the very
    one held before); too many members or parts changed at once are left to a whole read.
    Another workspace's changes touch nothing."""
    owned = await _team(engine, acme.id, seed=7)
    await _team(engine, globex.id, seed=8)
    people, groups, tags, roles = (owned[k] for k in ("members", "groups", "tags", "roles"))
    held = await read_index(session, acme.id)
    await session.rollback()
    fresh, newcomer, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    changes: list[tuple[str, dict[str, Any], set[uuid.UUID]]] = [
        (
            "INSERT INTO member_groups (group_id, member_id, workspace_id)"
            " SELECT :g, id, workspace_id FROM members WHERE workspace_id = :ws"
            " ON CONFLICT DO NOTHING",
            {"g": groups[0], "ws": acme.id},
            {groups[0]},
        ),
        ("DELETE FROM member_tags WHERE tag_id = :t", {"t": tags[1]}, {tags[1]}),
        (
            "DELETE FROM member_tags WHERE member_id = :m AND tag_id = ANY(:t)",
            {"m": people[5], "t": tags[:3]},
            set(),  # those of the three the member had
        ),
        ("DELETE FROM roles WHERE id = :r", {"r": roles[2]}, {roles[2]}),
        (
            "WITH made AS (INSERT INTO groups (id, workspace_id, name, description)"
            " VALUES (:g, :ws, 'new', '') RETURNING id)"
            " INSERT INTO member_groups (group_id, member_id, workspace_id)"
            " SELECT :g, unnest(CAST(:m AS uuid[])), :ws FROM made",
            {"g": fresh, "ws": acme.id, "m": people[10:40]},
            {fresh},
        ),
        (  # updated in place: a link moved from one tag to another
            "UPDATE member_tags SET tag_id = :to WHERE tag_id = :t"
            " AND member_id NOT IN (SELECT member_id FROM member_tags WHERE tag_id = :to)",
            {"to": tags[9], "t": tags[8]},
            {tags[8], tags[9]},
        ),
        (  # another workspace's change moves nothing here
            "UPDATE members SET name = 'Other' WHERE workspace_id = :ws",
            {"ws": globex.id},
            set(),
        ),
        (  # a member's fields the index does not hold move nothing either
            "UPDATE members SET locale = 'ru' WHERE id = :m",
            {"m": people[3]},
            set(),
        ),
        # The members themselves: renamed to the end, to the start and to another's name
        # (then ordered by id), a status moved, one gone with their links, one joined, one
        # joined into a group in the same transaction, several renamed at once.
        ("UPDATE members SET name = 'Zed' WHERE id = :m", {"m": people[0]}, set()),
        ("UPDATE members SET name = 'aaa' WHERE id = :m", {"m": people[6]}, set()),
        (
            "UPDATE members SET name = (SELECT name FROM members WHERE id = :like) WHERE id = :m",
            {"m": people[7], "like": people[8]},
            set(),
        ),
        ("UPDATE members SET status = 'unsubscribed' WHERE id = :m", {"m": people[1]}, set()),
        ("DELETE FROM members WHERE id = :m", {"m": people[2]}, set()),
        (_LIKE, {"m": newcomer, "name": "Ёлка 3", "like": people[4]}, set()),
        (
            f"WITH joined AS ({_LIKE} RETURNING id) INSERT INTO member_groups"
            " (group_id, member_id, workspace_id) SELECT :g, id, :ws FROM joined",
            {"m": other, "name": "Anna 2", "like": people[9], "g": groups[1], "ws": acme.id},
            {groups[1]},
        ),
        (
            "UPDATE members SET name = reverse(name) WHERE id = ANY(:m)",
            {"m": [*people[20:26], newcomer]},
            set(),
        ),
        ("DELETE FROM members WHERE id = :m", {"m": other}, {groups[1]}),
    ]
    for statement, values, changed in changes:
        await _sql(engine, statement, **values)
        brought = await refresh_index(session, acme.id, held)
        whole = await read_index(session, acme.id)
        await session.rollback()
        assert brought is not None, statement
        _same(brought, whole)
        moved = {o for o in brought.parts if brought.parts[o] != held.parts.get(o)}
        assert changed <= moved, statement
        for key, positions in held.sets.items():
            if key[1] not in moved and key in brought.sets:
                assert brought.sets[key] is positions, (statement, key)
        for rule in _rules(owned, seed=len(changed), count=10):
            rule.members.append(newcomer)
            assert brought.preview(rule, 30) == whole.preview(rule, 30), (statement, rule)
        held = brought

    whole_reads = [
        (
            "UPDATE members SET name = name || '!' WHERE id = ANY(:m)",
            {"m": people[40 : 41 + REFRESH_MOST_MEMBERS]},
        ),
        ("DELETE FROM member_groups WHERE member_id = ANY(:m)", {"m": people}),  # most parts
    ]
    for statement, values in whole_reads:
        await _sql(engine, statement, **values)
        assert await refresh_index(session, acme.id, held) is None, statement
        held = await read_index(session, acme.id)
        await session.rollback()
    # At the stamp it was read at, nothing is read.
    assert await refresh_index(session, acme.id, held) is held
    # A transaction that has written sees no stamp's data: nothing is brought from it.
    await session.execute(
        text("DELETE FROM member_roles WHERE workspace_id = :ws"), {"ws": acme.id}
    )
    with pytest.raises(Moved):
        await refresh_index(session, acme.id, held)
    await session.rollback()


async def test_a_lead_changing_the_team_between_previews_is_answered_from_the_index_at_once(
    acme: Workspace, engine: AsyncEngine
):
    """Through the API: once the index is held, adding people to a group, tagging one,
    removing one, a new member and a member renamed are each seen by the very next preview,
    which the index brought to the change answers (held at the new stamp right after it, with no
    read apart to wait for)."""
    anna = await member(acme.client, "Anna")
    boris = await member(acme.client, "Boris")
    vera = await member(acme.client, "Vera")
    team = await group(acme.client, "Team", anna)
    vip = await tag(acme.client, "vip", vera)

    async def names(rule: dict[str, Any], limit: int) -> list[str]:
        preview = await ok(acme.client.post("/audience/preview", json={**rule, "limit": limit}))
        return [m["name"] for m in preview["members"]]

    for limit in range(1, READ_AFTER_PREVIEWS + 2):
        assert await names({"groups": [team["id"]]}, limit) == ["Anna"]
    assert await _held_soon(engine, acme.id)

    await ok(
        acme.client.post(f"/groups/{team['id']}/members/add", json={"member_ids": [boris["id"]]})
    )
    assert not await _held_now(engine, acme.id)
    assert await names({"groups": [team["id"]]}, 20) == ["Anna", "Boris"]
    assert await _held_now(engine, acme.id)
    await ok(acme.client.post(f"/tags/{vip['id']}/members/add", json={"member_ids": [anna["id"]]}))
    assert await names({"tags": [vip["id"]], "exclude_groups": [team["id"]]}, 21) == ["Vera"]
    assert await _held_now(engine, acme.id)
    await ok(
        acme.client.post(f"/groups/{team['id']}/members/remove", json={"member_ids": [anna["id"]]})
    )
    assert await names({"groups": [team["id"]], "tags": [vip["id"]]}, 22) == [
        "Anna",
        "Boris",
        "Vera",
    ]
    assert await names({"groups": [team["id"]]}, 23) == ["Boris"]
    assert await _held_now(engine, acme.id)

    dan = await member(acme.client, "Dan")
    await ok(
        acme.client.post(f"/groups/{team['id']}/members/add", json={"member_ids": [dan["id"]]})
    )
    assert await names({"groups": [team["id"]]}, 24) == ["Boris", "Dan"]
    assert await _held_now(engine, acme.id)
    await ok(acme.client.patch(f"/members/{boris['id']}", json={"name": "Zoran"}))
    assert await names({"groups": [team["id"]]}, 25) == ["Dan", "Zoran"]
    assert await _held_now(engine, acme.id)


async def test_writers_committing_at_once_never_deadlock_on_the_parts(
    acme: Workspace, engine: AsyncEngine
):
    """Two writers change the same two groups' links (each its own member's) in opposite
    orders, one changing its member's language first and the other last: at commit one trigger
    renews the stamps and then the parts, each in one order, so neither writer ever holds what
    the other waits for."""
    anna = await member(acme.client, "Anna")
    boris = await member(acme.client, "Boris")
    first = await group(acme.client, "First", anna, boris)
    second = await group(acme.client, "Second", anna, boris)
    await ok(acme.client.post("/events", json={"title": "e", "starts_at": "2026-12-01T10:00"}), 201)
    touch = "UPDATE member_groups SET added_at = added_at WHERE group_id = :g AND member_id = :m"
    # A change to a member's language: the member lists' stamp, not the audience's.
    language = "UPDATE members SET locale = locale WHERE id = :m"

    async def writer(who: dict[str, Any], groups: list[dict[str, Any]], last: bool) -> None:
        steps = [(touch, {"g": g["id"], "m": who["id"]}) for g in groups]
        steps.insert(len(steps) if last else 0, (language, {"m": who["id"]}))
        for _ in range(400):
            async with engine.begin() as connection:
                for statement, values in steps:
                    await connection.execute(text(statement), values)

    await asyncio.wait_for(
        asyncio.gather(writer(anna, [first, second], False), writer(boris, [second, first], True)),
        300,
    )


async def test_a_transaction_that_wrote_sees_its_own_writes_not_the_index(
    acme: Workspace, engine: AsyncEngine, session: AsyncSession
):
    anna = await member(acme.client, "Anna")
    team = await group(acme.client, "Team", anna)
    rule = AudienceRule(groups=[uuid.UUID(team["id"])])
    actor = system_actor(acme.id)
    for _ in range(READ_AFTER_PREVIEWS + 1):
        assert (await preview_audience(session, actor, rule)).count == 1
        await session.commit()
    assert await _held_soon(engine, acme.id)

    bob = await member(acme.client, "Bob")
    await session.execute(
        text("INSERT INTO member_groups (group_id, member_id, workspace_id) VALUES (:g, :m, :w)"),
        {"g": team["id"], "m": bob["id"], "w": acme.id},
    )
    preview = await preview_audience(session, actor, rule)
    assert [m.name for m in preview.members] == ["Anna", "Bob"]
    with pytest.raises(Moved):  # what it sees is no stamp's: no index is read from it
        await read_index(session, acme.id)
    await session.rollback()
    assert (await preview_audience(session, actor, rule)).count == 1


async def test_each_workspace_is_answered_from_its_own_index(
    acme: Workspace, globex: Workspace, engine: AsyncEngine, session: AsyncSession
):
    ours = await _team(engine, acme.id, seed=1)
    theirs = await _team(engine, globex.id, seed=2)
    for ws, owned in ((acme, ours), (globex, theirs)):
        actor = system_actor(ws.id)
        for n, rule in enumerate(_rules(owned, seed=3, count=READ_AFTER_PREVIEWS + 3)):
            if n == READ_AFTER_PREVIEWS + 1:  # the rest from the index
                assert await _held_soon(engine, ws.id)
            got = await preview_audience(session, actor, rule, 50)
            assert got == await preview_in_sql(session, ws.id, rule, 50)
            assert {m.id for m in got.members} <= set(owned["members"])
        stamp = await current_stamp(session, ws.id, Kind.audience)
        assert stamp is not None and INDEXES.at(ws.id, stamp) is not None
    # An id of the other workspace named anyway (as a stale request might) reaches nobody.
    index = await read_index(session, acme.id)
    counts, _ = index.preview(AudienceRule(members=theirs["members"][:5]), 5)
    assert counts["total"] == 0


async def test_indexes_are_bounded_by_bytes_and_read_once_at_a_time(
    acme: Workspace, globex: Workspace, engine: AsyncEngine
):
    await _team(engine, acme.id, seed=1)
    await _team(engine, globex.id, seed=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        first = await read_index(session, acme.id)
    indexes = AudienceIndexes(max_bytes=first.size + first.size // 2)
    stamps = {}
    async with sessions() as session:
        for ws in (acme, globex):
            stamp = await current_stamp(session, ws.id, Kind.audience)
            assert stamp is not None
            stamps[ws.id] = stamp
    async with sessions() as one, sessions() as two:
        # Two requests asking at once: one read, the other waits for it.
        a, b = await asyncio.gather(
            indexes.read(one, acme.id, stamps[acme.id]),
            indexes.read(two, acme.id, stamps[acme.id]),
        )
    assert a is not None and a is b
    async with sessions() as session:
        assert await indexes.read(session, globex.id, stamps[globex.id]) is not None
    # Only one fits: the least recently used went.
    assert indexes.at(acme.id, stamps[acme.id]) is None
    assert indexes.at(globex.id, stamps[globex.id]) is not None
    assert indexes.held <= indexes.max_bytes
    none = AudienceIndexes(max_bytes=0)
    assert not none.worth_reading(acme.id, stamps[acme.id])
    # An index bigger than all the room answers the request that read it, is not kept, and is
    # not read again however many previews follow (it would be thrown away each time).
    small = AudienceIndexes(max_bytes=first.size // 2)
    async with sessions() as session:
        assert await small.read(session, acme.id, stamps[acme.id]) is not None
    assert small.at(acme.id, stamps[acme.id]) is None and small.held == 0
    for _ in range(3 * READ_AFTER_PREVIEWS):
        small.spent(acme.id, stamps[acme.id], 1.0)
    assert not small.worth_reading(acme.id, stamps[acme.id])
    assert indexes.worth_reading(acme.id, stamps[acme.id]) is False  # no preview counted yet
    for _ in range(READ_AFTER_PREVIEWS):
        indexes.spent(acme.id, stamps[acme.id], 0.0)
    assert indexes.worth_reading(acme.id, stamps[acme.id])


async def test_an_index_read_apart_is_read_once_and_stopped_with_the_process(
    acme: Workspace, engine: AsyncEngine
):
    """The preview that finds the index worth reading begins reading it on a connection of its
    own and is answered by Postgres; asking again meanwhile begins no second read, and stopping
    the process stops a read under way."""
    await _team(engine, acme.id, seed=3)
    async with make_sessionmaker(engine)() as session:
        stamp = await current_stamp(session, acme.id, Kind.audience)
    assert stamp is not None
    indexes = AudienceIndexes()
    begun = indexes.read_apart(engine, acme.id, stamp)
    assert begun is not None and indexes.read_apart(engine, acme.id, stamp) is None
    await begun
    assert indexes.at(acme.id, stamp) is not None
    stopped = AudienceIndexes()
    begun = stopped.read_apart(engine, acme.id, stamp)
    assert begun is not None
    await stopped.close()
    assert begun.cancelled() and stopped.at(acme.id, stamp) is None
    # A read that fails (here: no such database) is logged, leaves the previews to Postgres, and
    # is not begun again at that stamp.
    broken = make_engine(
        engine.url.set(database="no_such_database").render_as_string(hide_password=False)
    )
    failing = AudienceIndexes()
    for _ in range(READ_AFTER_PREVIEWS):
        failing.spent(acme.id, stamp, 0.0)
    assert failing.worth_reading(acme.id, stamp)
    begun = failing.read_apart(broken, acme.id, stamp)
    assert begun is not None
    await begun
    assert failing.at(acme.id, stamp) is None and not failing.worth_reading(acme.id, stamp)
    await broken.dispose()
