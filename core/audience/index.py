"""Who belongs to what in one workspace, held in memory at one stamp of its audience data.

A lead choosing an audience tries rule after rule against the same team. Postgres answers each
preview by building the rule's sets of member ids again (58 ms at 100,000 members, most of it
hashing 85,000 ids); held here as arrays of member positions, a preview is a few numpy
operations over them (about a millisecond at 100,000 members). Reading a workspace in takes
several previews' worth of Postgres's time, so it is read only once previews at one stamp have
cost about that much (``AudienceIndexes.worth_reading``).

The stamp is ``read_versions``' audience stamp (migration 0026), which the database renews as any
change to members' names or status, groups, tags, roles or who is in them commits, whoever makes
it. An index is used only at the stamp it was read at, and kept only if the stamp was the same
before and after reading it, so a preview never shows what a committed change has undone.

A team also changes between previews: a lead adds people to a group, someone joins, a name or
status moves. Each such change moves the stamp, and the index held is then brought to the new
stamp by reading only what changed (``refresh_index``): the groups, tags and roles whose own
stamps moved, and the members a numbered log names since the index was read (migration 0027),
each put back in (name, id) order after the member Postgres puts before it. A few milliseconds,
where reading it whole takes hundreds. So that a member who joins or is renamed moves no other
member, each member keeps a position of their own and ``order`` lists the positions in name
order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import ids_param, make_sessionmaker, plain_connection
from core.reads.cache import Kind, current_stamp
from core.teams.schemas import Ref

if TYPE_CHECKING:
    from core.audience.rule import AudienceRule

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Previews at one stamp read from Postgres before the index is read, whatever they cost: the
# first index of a workspace (its cost not yet known) and any whose previews are quick.
READ_AFTER_PREVIEWS = 3
# A status's code in the index (what ``_MEMBERS`` writes), by status.
STATUS_CODES = {"active": b"a", "unsubscribed": b"s", "unreachable": b"r"}


def _status_code(column: str) -> str:
    """SQL for the code of the status in ``column`` (``?`` for one the index does not count)."""
    whens = " ".join(
        f"WHEN '{status}' THEN '{code.decode()}'" for status, code in STATUS_CODES.items()
    )
    return f"CASE {column} {whens} ELSE '?' END"


# Every member in (name, id) order, the order of a preview's first names: a member's position
# in it is how the index knows them. The ids as 16 bytes each and the status as one letter each,
# in one value apiece, read from ``ix_members_workspace_name`` alone (47-90 ms at 100,000).
_MEMBERS = text(
    "SELECT string_agg(uuid_send(id), ''::bytea ORDER BY name, id),"
    f" string_agg({_status_code('status')}, '' ORDER BY name, id),"
    " array_agg(name ORDER BY name, id)"
    " FROM members WHERE workspace_id = :workspace_id"
)
# Each group's, tag's and role's members, as their ids' bytes in id order, read from the links'
# primary keys alone, which lead with the group, tag or role (135-165 ms for 500,000 links;
# their positions computed in Postgres instead, by joining the links to the members: 330-420).
_LINKS = text(
    "SELECT 'g', group_id, string_agg(uuid_send(member_id), ''::bytea ORDER BY member_id)"
    " FROM member_groups WHERE group_id IN (SELECT id FROM groups WHERE workspace_id = :workspace_id)"
    " GROUP BY group_id"
    " UNION ALL SELECT 't', tag_id, string_agg(uuid_send(member_id), ''::bytea ORDER BY member_id)"
    " FROM member_tags WHERE tag_id IN (SELECT id FROM tags WHERE workspace_id = :workspace_id)"
    " GROUP BY tag_id"
    " UNION ALL SELECT 'r', role_id, string_agg(uuid_send(member_id), ''::bytea ORDER BY member_id)"
    " FROM member_roles WHERE role_id IN (SELECT id FROM roles WHERE workspace_id = :workspace_id)"
    " GROUP BY role_id"
)

# The links of some groups, tags and roles alone (``:owners``), as ``_LINKS`` reads them all.
_LINKS_OF = text(
    "SELECT 'g', group_id, string_agg(uuid_send(member_id), ''::bytea ORDER BY member_id)"
    " FROM member_groups WHERE group_id = ANY(:owners) GROUP BY group_id"
    " UNION ALL SELECT 't', tag_id, string_agg(uuid_send(member_id), ''::bytea ORDER BY member_id)"
    " FROM member_tags WHERE tag_id = ANY(:owners) GROUP BY tag_id"
    " UNION ALL SELECT 'r', role_id, string_agg(uuid_send(member_id), ''::bytea ORDER BY member_id)"
    " FROM member_roles WHERE role_id = ANY(:owners) GROUP BY role_id"
).bindparams(ids_param("owners"))
# Each group's, tag's and role's stamp (migration 0027; a part without a row has not changed
# since), and how many changes to the members themselves have been numbered.
_PARTS = text("SELECT owner, stamp FROM audience_parts WHERE workspace_id = :workspace_id")
_ROSTER = text("SELECT seq FROM audience_rosters WHERE workspace_id = :workspace_id")
# The members changed after number :since (one row a change, in order): fewer than the numbers
# between when the log has been cut past them.
_ROSTER_CHANGES = text(
    "SELECT member_id FROM audience_roster_changes"
    " WHERE workspace_id = :workspace_id AND seq > :since ORDER BY seq"
)
# Those of them still in the workspace, as they are now, in (name, id) order, each with the
# member just before it in that order (found by one step back along ix_members_workspace_name,
# in Postgres's own collation, as ``_MEMBERS`` orders them).
_NOW = text(
    f"SELECT m.id, m.name, {_status_code('m.status')},"
    " (SELECT b.id FROM members b WHERE b.workspace_id = m.workspace_id"
    "   AND (b.name, b.id) < (m.name, m.id) ORDER BY b.name DESC, b.id DESC LIMIT 1)"
    " FROM members m WHERE m.workspace_id = :workspace_id AND m.id = ANY(:ids)"
    " ORDER BY m.name, m.id"
).bindparams(ids_param("ids"))
# A refresh reads the changed parts and members while a preview waits; past these, it would cost
# what reading the whole index does, which is done apart instead.
REFRESH_MOST_CHANGED = 0.25  # of the groups, tags and roles with members (or 8)
REFRESH_MOST_MEMBERS = 32

Positions = npt.NDArray[np.intp]
Parts = dict[uuid.UUID, uuid.UUID]


class Moved(Exception):
    """What was read is not one stamp's data (a change committed while it was read)."""


@dataclass(eq=False)
class AudienceIndex:
    """One workspace's members and links at ``stamp``: each member at a position of its own (in
    (name, id) order as read; one who joined since, after them), ``order`` the positions of the
    members there are in (name, id) order, each group, tag and role as its members' positions."""

    stamp: uuid.UUID
    ids: bytes  # 16 bytes per position
    names: list[str]
    status: npt.NDArray[np.uint8]  # STATUS_CODES' letter per position
    sets: dict[tuple[str, uuid.UUID], Positions]  # ("g" | "t" | "r", id) -> positions
    parts: Parts  # each part's stamp as read with the rest (``_PARTS``)
    roster: int  # the members' changes numbered when it was read (``_ROSTER``)
    order: Positions  # the positions of the members there are, in (name, id) order
    alive: npt.NDArray[np.bool_]  # False at the position of a member who left
    # The ids' first eight bytes as numbers, sorted, and the positions in that order: ids are
    # found by one binary search for all (500,000 links: 74 ms; on the ids as 16-byte strings,
    # 194 ms).
    _heads: npt.NDArray[np.uint64] = field(repr=False)
    _by_head: Positions = field(repr=False)
    _position: dict[bytes, int] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        """About the bytes held, to bound what a process keeps."""
        arrays = self.status.nbytes + self._heads.nbytes + self._by_head.nbytes
        arrays += self.order.nbytes + self.alive.nbytes
        arrays += sum(positions.nbytes for positions in self.sets.values())
        names = sum(len(name) + 64 for name in self.names) + 8 * len(self.names)
        return len(self.ids) + names + arrays

    def __len__(self) -> int:
        return len(self.names)

    def positions(self, wanted: bytes) -> Positions:
        """The positions of these members (16 bytes each); -1 for one not in the workspace."""
        if not wanted or not len(self):
            return np.full(len(wanted) // 16, -1, dtype=np.intp)
        heads = np.frombuffer(wanted, dtype=">u8")[::2].astype(np.uint64)
        at = np.minimum(np.searchsorted(self._heads, heads), len(self) - 1)
        found = self._by_head[at]
        same = np.frombuffer(self.ids, dtype="S16")[found] == np.frombuffer(wanted, dtype="S16")
        if not same.all():
            # Not here (its first eight bytes found in no id), or sharing its first eight bytes
            # with another member's id (never seen among random ids; ids made from a clock can):
            # those looked up one by one.
            found[~same] = -1
            shared = np.flatnonzero(~same & (self._heads[at] == heads))
            if len(shared):
                if self._position is None:
                    ids = self.ids
                    self._position = {ids[i : i + 16]: i // 16 for i in range(0, len(ids), 16)}
                position = self._position
                for i in shared:
                    found[i] = position.get(wanted[16 * i : 16 * i + 16], -1)
        return found

    def _of(self, kind: str, ids: list[uuid.UUID]) -> list[Positions]:
        empty = np.empty(0, dtype=np.intp)
        return [self.sets.get((kind, i), empty) for i in dict.fromkeys(ids)]

    def _people(self, ids: list[uuid.UUID]) -> Positions:
        found = self.positions(b"".join(i.bytes for i in ids))
        return found[found >= 0]

    def reach(self, rule: AudienceRule) -> npt.NDArray[np.bool_]:
        """Which members the rule reaches, by position (``core.audience.rule`` says how a rule
        reads; tests hold the two to the same answers)."""
        chosen = np.zeros(len(self), dtype=np.bool_)
        for positions in self._of("g", rule.groups) + self._of("r", rule.roles):
            chosen[positions] = True
        tags = self._of("t", rule.tags)
        if tags and rule.tags_mode == "all":
            # Each tag holds a member once: holding all is being counted once per tag.
            held = np.bincount(np.concatenate(tags), minlength=len(self))
            chosen |= held == len(tags)
        else:
            for positions in tags:
                chosen[positions] = True
        chosen[self._people(rule.members)] = True
        for positions in self._of("g", rule.exclude_groups) + self._of("t", rule.exclude_tags):
            chosen[positions] = False
        chosen[self._people(rule.exclude_members)] = False
        chosen &= self.alive  # named by id (a stale request might) after they left
        return chosen

    def preview(self, rule: AudienceRule, limit: int) -> tuple[dict[str, int], list[Ref]]:
        """How many the rule reaches, by status (and ``total``), and the first ``limit`` by name."""
        chosen = self.reach(rule)
        codes = np.bincount(self.status[chosen], minlength=256)
        counts = {name: int(codes[ord(code)]) for name, code in STATUS_CODES.items()}
        counts["total"] = int(np.count_nonzero(chosen))
        first = self.order[np.flatnonzero(chosen[self.order])[:limit]]
        ids = self.ids
        refs = [
            Ref(id=uuid.UUID(bytes=ids[16 * i : 16 * i + 16]), name=self.names[i]) for i in first
        ]
        return counts, refs


async def read_index(session: AsyncSession, workspace_id: uuid.UUID) -> AudienceIndex:
    """The workspace's members and links as this transaction sees them now, at the stamp it sees
    before and after reading them (``Moved`` if those differ, or if the transaction has written
    anything: what it sees is then no stamp's)."""
    stamp = await current_stamp(session, workspace_id, Kind.audience)
    if stamp is None:
        raise Moved()
    connection = await plain_connection(session)
    values = {"workspace_id": workspace_id}
    parts: Parts = dict((await connection.execute(_PARTS, values)).all())
    roster = (await connection.execute(_ROSTER, values)).scalar() or 0
    ids, statuses, names = (await connection.execute(_MEMBERS, values)).one()
    links = (await connection.execute(_LINKS, values)).all()
    if await current_stamp(session, workspace_id, Kind.audience) != stamp:
        raise Moved()
    ids, statuses, names = ids or b"", statuses or "", names or []
    heads = np.frombuffer(ids, dtype=">u8")[::2].astype(np.uint64)
    by_head = np.argsort(heads, kind="stable")
    index = AudienceIndex(
        stamp=stamp,
        ids=ids,
        names=names,
        status=np.frombuffer(statuses.encode(), dtype=np.uint8),
        sets={},
        parts=parts,
        roster=roster,
        order=np.arange(len(names), dtype=np.intp),
        alive=np.ones(len(names), dtype=np.bool_),
        _heads=heads[by_head],
        _by_head=by_head,
    )
    _place(index, links)
    return index


def _place(index: AudienceIndex, links: Sequence[tuple[str, uuid.UUID, bytes]]) -> None:
    """Each (kind, owner, member ids) read into the index's sets, as its members' positions."""
    # One search for every link at once (a hundred sets of a hundred thousand members).
    found = index.positions(b"".join(blob for _, _, blob in links))
    if (found < 0).any():
        raise Moved()  # a member linked who is not among those read: read at two stamps
    start = 0
    for kind, owner, blob in links:
        end = start + len(blob) // 16
        index.sets[(kind, owner)] = found[start:end]
        start = end


async def refresh_index(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    held: AudienceIndex,
    stamp: uuid.UUID | None = None,
) -> AudienceIndex | None:
    """``held`` brought to the stamp this transaction sees now by reading again only the groups,
    tags and roles whose members changed since, and the members who joined, left, or whose name
    or status moved (``Moved`` as ``read_index``). None when too many of either changed, or the
    log of members changed no longer reaches back to ``held``, or the positions of members who
    left have come to a tenth of all: the index is then read whole. ``stamp``: the audience stamp
    this transaction has just read, if the caller has it (a preview has), else it is read."""
    if stamp is None:
        stamp = await current_stamp(session, workspace_id, Kind.audience)
    if stamp is None:
        raise Moved()
    if stamp == held.stamp:
        return held
    if len(held) - len(held.order) > max(100, len(held.order) // 10):
        return None
    connection = await plain_connection(session)
    values = {"workspace_id": workspace_id}
    parts: Parts = dict((await connection.execute(_PARTS, values)).all())
    changed = {
        owner
        for owner in parts.keys() | held.parts.keys()
        if parts.get(owner) != held.parts.get(owner)
    }
    if len(changed) > max(8, REFRESH_MOST_CHANGED * len(held.sets)):
        return None
    roster = (await connection.execute(_ROSTER, values)).scalar() or 0
    people: list[uuid.UUID] = []
    now: list[tuple[uuid.UUID, str, str, uuid.UUID | None]] = []
    if roster != held.roster:
        if not 0 < roster - held.roster <= REFRESH_MOST_MEMBERS:
            return None
        since = {**values, "since": held.roster}
        people = list((await connection.execute(_ROSTER_CHANGES, since)).scalars())
        if len(people) != roster - held.roster:
            return None  # the log has been cut since
        people = list(dict.fromkeys(people))
        now = [tuple(row) for row in await connection.execute(_NOW, {**values, "ids": people})]
    links = (
        (await connection.execute(_LINKS_OF, {"owners": list(changed)})).all() if changed else []
    )
    if await current_stamp(session, workspace_id, Kind.audience) != stamp:
        raise Moved()
    index = dataclasses.replace(
        held,
        stamp=stamp,
        sets={key: positions for key, positions in held.sets.items() if key[1] not in changed},
        parts=parts,
        roster=roster,
    )
    if people:
        _move(index, people, now)
    # Only the changed sets are read (one that lost all its members is read as no row, and so
    # left out, as ``_LINKS`` leaves it).
    _place(index, links)
    return index


def _move(
    index: AudienceIndex,
    people: list[uuid.UUID],
    now: list[tuple[uuid.UUID, str, str, uuid.UUID | None]],
) -> None:
    """The members changed taken out of the index's order and put back as they are now: each
    there is (in (name, id) order) just after the member before it; one new at a new position.
    The arrays are copies: the index held before is unchanged (a preview may be using it)."""
    found = index.positions(b"".join(person.bytes for person in people))
    alive = index.alive.copy()
    alive[found[found >= 0]] = False
    order = index.order[np.isin(index.order, found[found >= 0], invert=True)]
    status, names = index.status.copy(), list(index.names)
    for person, name, letter, before in now:
        at = int(index.positions(person.bytes)[0])
        if at < 0:  # joined: a new position, after every one there is
            at = len(names)
            names.append(name)
            status = np.append(status, np.uint8(0))
            alive = np.append(alive, False)
            head = np.frombuffer(person.bytes, dtype=">u8")[:1].astype(np.uint64)
            where = np.searchsorted(index._heads, head)
            index.ids += person.bytes
            index.names = names
            index._heads = np.insert(index._heads, where, head)
            index._by_head = np.insert(index._by_head, where, at)
            index._position = None
        names[at], status[at], alive[at] = name, ord(letter), True
        after = 0
        if before is not None:
            places = np.flatnonzero(order == index.positions(before.bytes)[0])
            if len(places) != 1:
                raise Moved()  # the member before it is not in the order: read at two stamps
            after = int(places[0]) + 1
        order = np.insert(order, after, at)
    if len(order) != int(np.count_nonzero(alive)):
        raise Moved()
    index.names, index.status, index.alive, index.order = names, status, alive, order


@dataclass
class _Spent:
    stamp: uuid.UUID
    seconds: float = 0.0
    previews: int = 0


class AudienceIndexes:
    """A process's indexes, one per workspace at its latest stamp read, the least recently used
    dropped past ``max_bytes`` (0: none kept, every preview from Postgres)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        # What previews from Postgres cost at a workspace's current stamp, and what reading its
        # index took last time: the index is read once the one reaches the other. Each bounded
        # by count (a workspace previewed lately each), as the indexes are by bytes.
        self._spent: LRUCache[uuid.UUID, _Spent] = LRUCache(_MOST_WORKSPACES)
        self._cost: LRUCache[uuid.UUID, float] = LRUCache(_MOST_WORKSPACES)
        # Workspaces whose index came out bigger than all the room there is: read again, it
        # would be thrown away again.
        self._too_big: LRUCache[uuid.UUID, int] = LRUCache(_MOST_WORKSPACES)
        self._reading: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Future[AudienceIndex | None]] = {}
        # Reads begun apart from any request (``read_apart``), by (workspace, stamp); and the
        # stamp at which a workspace's last one failed (not tried again at that stamp).
        self._apart: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Task[None]] = {}
        self._failed: LRUCache[uuid.UUID, uuid.UUID] = LRUCache(_MOST_WORKSPACES)
        # The stamp at which a workspace's index could not be brought to: it is read whole.
        self._whole: LRUCache[uuid.UUID, uuid.UUID] = LRUCache(_MOST_WORKSPACES)

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        """Set once, as the process starts (the indexes held so far are dropped)."""
        self._max_bytes = value
        self._indexes: LRUCache[uuid.UUID, AudienceIndex] = LRUCache(
            maxsize=max(value, 0), getsizeof=_size
        )

    @property
    def held(self) -> int:
        """About the bytes the indexes kept hold."""
        return int(self._indexes.currsize)

    def clear(self) -> None:
        for entries in (
            self._indexes,
            self._spent,
            self._cost,
            self._too_big,
            self._failed,
            self._whole,
        ):
            entries.clear()

    def at(self, workspace_id: uuid.UUID, stamp: uuid.UUID) -> AudienceIndex | None:
        kept = self._indexes.get(workspace_id)
        return kept if kept is not None and kept.stamp == stamp else None

    def spent(self, workspace_id: uuid.UUID, stamp: uuid.UUID, seconds: float) -> None:
        """A preview at ``stamp`` was read from Postgres in ``seconds``."""
        spent = self._spent.get(workspace_id)
        if spent is None or spent.stamp != stamp:
            spent = _Spent(stamp)
        spent.seconds += seconds
        spent.previews += 1
        self._spent[workspace_id] = spent

    def worth_reading(self, workspace_id: uuid.UUID, stamp: uuid.UUID) -> bool:
        """Whether previews from Postgres at this stamp have cost as much as reading the index
        did last time, or numbered READ_AFTER_PREVIEWS, whichever comes first: read sooner, it
        would be wasted on a stamp about to move; later, every preview pays Postgres's price."""
        if self.max_bytes <= 0 or self._too_big.get(workspace_id, 0) > self.max_bytes:
            return False
        if self._failed.get(workspace_id) == stamp:
            return False
        spent = self._spent.get(workspace_id)
        if spent is None or spent.stamp != stamp:
            return False
        cost = self._cost.get(workspace_id)
        return spent.previews >= READ_AFTER_PREVIEWS or (cost is not None and spent.seconds >= cost)

    async def read(
        self, session: AsyncSession, workspace_id: uuid.UUID, stamp: uuid.UUID
    ) -> AudienceIndex | None:
        """The workspace's index at ``stamp``, read now (or by the request already reading it);
        None if the stamp moved meanwhile, for those waiting as for the reader."""
        key = (workspace_id, stamp)
        other = self._reading.get(key)
        if other is not None:
            return await asyncio.shield(other)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AudienceIndex | None] = loop.create_future()
        self._reading[key] = future
        index: AudienceIndex | None = None
        try:
            started = loop.time()
            try:
                read = await read_index(session, workspace_id)
            except Moved:
                return None
            self._cost[workspace_id] = loop.time() - started
            if read.stamp != stamp:
                return None
            index = read
            self._keep(workspace_id, index)
            return index
        finally:
            del self._reading[key]
            future.set_result(index)

    async def refresh(
        self, session: AsyncSession, workspace_id: uuid.UUID, stamp: uuid.UUID
    ) -> AudienceIndex | None:
        """The index held at an earlier stamp brought to ``stamp`` by reading only what changed
        (``refresh_index``, from the stamp the caller read in ``session``), kept in its place;
        None if none is held, too much changed (not tried again at this stamp: it is read
        whole), or the stamp moved meanwhile."""
        held = self._indexes.get(workspace_id)
        if held is None or self._whole.get(workspace_id) == stamp:
            return None
        try:
            index = await refresh_index(session, workspace_id, held, stamp)
        except Moved:
            return None
        if index is None:
            self._whole[workspace_id] = stamp
            return None
        if self._indexes.get(workspace_id) is held:  # not replaced meanwhile by a later one
            self._keep(workspace_id, index)
        return index

    def read_apart(
        self, engine: AsyncEngine, workspace_id: uuid.UUID, stamp: uuid.UUID
    ) -> asyncio.Task[None] | None:
        """Begin reading the workspace's index at ``stamp`` on a connection of its own, unless it
        is being read: the preview that found it worth reading is answered by Postgres meanwhile
        instead of waiting the hundreds of milliseconds a large team's index takes to read, and
        the next previews find it held. The read begun, or None if one is under way."""
        key = (workspace_id, stamp)
        if key in self._apart or key in self._reading:
            return None
        task = asyncio.create_task(self._read_apart(engine, workspace_id, stamp))
        self._apart[key] = task
        task.add_done_callback(lambda _: self._apart.pop(key, None))
        return task

    async def _read_apart(
        self, engine: AsyncEngine, workspace_id: uuid.UUID, stamp: uuid.UUID
    ) -> None:
        try:
            async with make_sessionmaker(engine)() as session:
                await self.read(session, workspace_id, stamp)
        except Exception:  # the previews go on from Postgres; the next stamp may try again
            self._failed[workspace_id] = stamp
            log.warning(
                "the audience index of workspace %s was not read", workspace_id, exc_info=True
            )

    async def close(self) -> None:
        """Stop the reads begun apart (the process is stopping, its engine about to close)."""
        tasks = list(self._apart.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _keep(self, workspace_id: uuid.UUID, index: AudienceIndex) -> None:
        try:
            self._indexes[workspace_id] = index
        except ValueError:  # bigger than all the room (cachetools keeps nothing then)
            self._indexes.pop(workspace_id, None)
            self._too_big[workspace_id] = index.size
            return
        self._too_big.pop(workspace_id, None)


_MOST_WORKSPACES = 10_000


def _size(index: AudienceIndex) -> int:
    return index.size
