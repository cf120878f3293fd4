"""The audience rule and its resolution: the one place that decides who an event or message reaches.

A rule includes members who are in any of ``groups``, hold the ``tags`` (any or all of them), hold
any of ``roles``, or are listed in ``members``; then drops those in any of ``exclude_groups``,
holding any of ``exclude_tags``, or listed in ``exclude_members``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    Uuid,
    all_,
    and_,
    any_,
    bindparam,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import TenantMixin, plain_connection
from core.scoping import IdsCheck, missing_in_workspace_all, raise_if_any
from core.teams.models import (
    Group,
    Member,
    MemberGroup,
    MemberRole,
    MemberStatus,
    MemberTag,
    Role,
    Tag,
)
from core.teams.schemas import Ref

Ids = Annotated[list[uuid.UUID], Field(max_length=1000)]
# How many of a workspace's first members by name a preview probes for its first names (at most
# ~5 ms of index probes at 100,000 members, whatever the rule).
FIRST_NAMES_WINDOW = 2000


class AudienceRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: Ids = Field(default_factory=list, description="Members of any of these groups")
    tags: Ids = Field(default_factory=list, description="Members with these tags (see tags_mode)")
    tags_mode: Literal["any", "all"] = Field(
        default="any", description="'any': at least one of the tags; 'all': every one of them"
    )
    roles: Ids = Field(default_factory=list, description="Members holding any of these roles")
    members: Ids = Field(default_factory=list, description="These members, by id")
    exclude_groups: Ids = Field(default_factory=list)
    exclude_tags: Ids = Field(default_factory=list)
    exclude_members: Ids = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.groups or self.tags or self.roles or self.members)


class AudiencePreviewRequest(AudienceRule):
    limit: Annotated[int, Field(ge=1, le=200)] = 20


class AudienceCounts(BaseModel):
    total: int
    active: int
    unsubscribed: int
    unreachable: int


class AudiencePreview(BaseModel):
    count: int = Field(description="How many members the rule reaches")
    by_status: AudienceCounts
    members: list[Ref] = Field(description="The first members by name")


async def validate_audience(
    session: AsyncSession, workspace_id: uuid.UUID, rule: AudienceRule
) -> None:
    """Raise Invalid naming ``audience.<field>[i]`` for any id that is not of this workspace."""
    resources: list[tuple[str, type[TenantMixin], str]] = [
        ("groups", Group, "group"),
        ("tags", Tag, "tag"),
        ("roles", Role, "role"),
        ("members", Member, "member"),
        ("exclude_groups", Group, "group"),
        ("exclude_tags", Tag, "tag"),
        ("exclude_members", Member, "member"),
    ]
    checks = [
        IdsCheck(model, getattr(rule, field), f"audience.{field}", resource)
        for field, model, resource in resources
    ]
    errors = await missing_in_workspace_all(session, workspace_id, checks)
    raise_if_any(errors)


_PARTS = (
    "groups",
    "tags",
    "roles",
    "members",
    "exclude_groups",
    "exclude_tags",
    "exclude_members",
)


@dataclass(frozen=True)
class _Shape:
    """Which parts of a rule are given: what its SQL looks like, whatever its ids."""

    groups: bool
    tags: Literal["any", "all"] | None
    roles: bool
    members: bool
    exclude_groups: bool
    exclude_tags: bool
    exclude_members: bool

    @classmethod
    def of(cls, rule: AudienceRule) -> _Shape:
        return cls(
            groups=bool(rule.groups),
            tags=rule.tags_mode if rule.tags else None,
            roles=bool(rule.roles),
            members=bool(rule.members),
            exclude_groups=bool(rule.exclude_groups),
            exclude_tags=bool(rule.exclude_tags),
            exclude_members=bool(rule.exclude_members),
        )


def _values(rule: AudienceRule, workspace_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A rule's values, by the names ``_Sql`` binds them under."""
    values: dict[str, Any] = {
        f"audience_{part}": list(ids) for part in _PARTS if (ids := getattr(rule, part))
    }
    values["audience_tags_needed"] = len(set(rule.tags))
    if workspace_id is not None:
        values["audience_workspace"] = workspace_id
    return values


@dataclass(frozen=True)
class _Sql:
    """Builds a rule's SQL, its values either in it (``values``; each bound under a name of its
    own, so two rules can meet in one statement) or bound by name at each execution (None: the
    statements of a shape are then built once: a preview's CPU in the API 5.5-5.9 -> 3.7-3.9 ms,
    in process)."""

    shape: _Shape
    values: dict[str, Any] | None = None

    def bind(self, name: str, type_: Any) -> ColumnElement[Any]:
        key = f"audience_{name}"
        if self.values is None:
            parameter = bindparam(key, type_=type_)
        else:
            parameter = bindparam(key, self.values[key], type_=type_, unique=True)
        # Cast, so that a statement printed with its values (EXPLAIN, tests) says uuid[].
        return cast(parameter, type_) if isinstance(type_, ARRAY) else parameter

    def ids(self, part: str) -> ColumnElement[Any]:
        return self.bind(part, ARRAY(Uuid()))

    def in_groups(self, part: str) -> Select[uuid.UUID]:
        return select(MemberGroup.member_id).where(MemberGroup.group_id == any_(self.ids(part)))

    def with_any_tag(self, part: str) -> Select[uuid.UUID]:
        return select(MemberTag.member_id).where(MemberTag.tag_id == any_(self.ids(part)))

    def links_in(self) -> list[Select[uuid.UUID]]:
        """Member ids the rule's groups, tags and roles include, one query of the links each."""
        links: list[Select[uuid.UUID]] = []
        if self.shape.groups:
            links.append(self.in_groups("groups"))
        if self.shape.tags == "all":
            needed = self.bind("tags_needed", Integer())
            links.append(
                self.with_any_tag("tags")
                .group_by(MemberTag.member_id)
                .having(func.count() == needed)
            )
        elif self.shape.tags == "any":
            links.append(self.with_any_tag("tags"))
        if self.shape.roles:
            roles = self.ids("roles")
            links.append(select(MemberRole.member_id).where(MemberRole.role_id == any_(roles)))
        return links

    def links_out(self) -> list[Select[uuid.UUID]]:
        """Member ids the rule's excluded groups and tags drop."""
        return [
            *([self.in_groups("exclude_groups")] if self.shape.exclude_groups else []),
            *([self.with_any_tag("exclude_tags")] if self.shape.exclude_tags else []),
        ]

    def condition(self) -> ColumnElement[bool]:
        """The WHERE clause over ``members`` that a rule stands for, sealed to one workspace.

        Shaped for one pass over the workspace's members with two hash lookups per member, read from
        ``ix_members_workspace_id`` alone (id and status): the link tables' ids of those included
        are one set, those excluded another (the plans at 100,000 members: ``python
        bench/audience_preview.py --members 100000 --explain``). The inclusion stays under an OR,
        which keeps Postgres from turning it into a join: it cannot estimate a UNION's distinct ids
        (it assumes 200) and would then fetch each included member by primary key, 2x slower; NOT IN
        is never turned into a join (member ids in the links are never NULL, so it means NOT
        EXISTS). The pass is never split between parallel workers (migration 0024): each would build
        both sets again. Postgres hashes a set only when it expects it to fit its hash memory, and
        otherwise scans it again for every member: vestnik's connections give hash tables room
        (``core.db.HASH_MEM_MULTIPLIER``).
        """
        links, unlinked = self.links_in(), self.links_out()
        include: list[ColumnElement[bool]] = [literal_column("false")]  # never true; keeps OR
        if links:
            include.append(Member.id.in_(_one_set(links)))
        if self.shape.members:
            include.append(Member.id == any_(self.ids("members")))
        workspace = self.bind("workspace", Uuid())
        where: list[ColumnElement[bool]] = [Member.workspace_id == workspace, or_(*include)]
        if unlinked:
            where.append(Member.id.not_in(_one_set(unlinked)))
        if self.shape.exclude_members:
            where.append(Member.id != all_(self.ids("exclude_members")))
        return and_(*where)

    def probed(self, member_id: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
        """The rule as a condition on one member id at a time, each link probed by index: for
        a few members already chosen (the first by name), where building the whole audience's
        sets would cost more than all the probes. Not sealed: the caller's members are."""
        include: list[ColumnElement[bool]] = [false()]
        include += [_probe(links, member_id) for links in self.links_in()]
        if self.shape.members:
            include.append(member_id == any_(self.ids("members")))
        where = [or_(*include), *(~_probe(links, member_id) for links in self.links_out())]
        if self.shape.exclude_members:
            where.append(member_id != all_(self.ids("exclude_members")))
        return and_(*where)


def _one_set(parts: list[Select[uuid.UUID]]) -> Select[uuid.UUID] | CompoundSelect[uuid.UUID]:
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _probe(links: Select[uuid.UUID], member_id: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """Whether ``member_id`` is among ``links``' member ids, looked up in the links' index for
    that one member. OFFSET 0 keeps Postgres from reading the whole set into a hash first (an
    EXISTS with an OFFSET cannot become one): per member, that is the point."""
    return links.where(links.selected_columns[0] == member_id).offset(0).exists()


def audience_condition(workspace_id: uuid.UUID, rule: AudienceRule) -> ColumnElement[bool]:
    """The WHERE clause over ``members`` that a rule stands for, sealed to one workspace
    (``_Sql.condition``)."""
    return _Sql(_Shape.of(rule), _values(rule, workspace_id)).condition()


def probed_condition(
    rule: AudienceRule, member_id: ColumnElement[uuid.UUID]
) -> ColumnElement[bool]:
    """``_Sql.probed`` with the rule's values."""
    return _Sql(_Shape.of(rule), _values(rule)).probed(member_id)


def audience_query(workspace_id: uuid.UUID, rule: AudienceRule) -> Select[Member]:
    """Members a rule reaches, as one SQL query (send-time resolution builds on this)."""
    return (
        select(Member)
        .where(audience_condition(workspace_id, rule))
        .order_by(Member.name, Member.id)
    )


def _with_status(status: MemberStatus) -> ColumnElement[int]:
    return func.count().filter(Member.status == status.value)


class _Preview(NamedTuple):
    counts: Select[int, int, int, int]
    probed: Select[uuid.UUID, str]
    by_sets: Select[uuid.UUID, str]


@lru_cache(maxsize=512)
def _preview(shape: _Shape) -> _Preview:
    """A preview's three statements for rules of this shape, their values bound by name at
    each execution (see ``preview_in_sql``)."""
    sql = _Sql(shape)
    condition = sql.condition()
    limit = sql.bind("limit", Integer())
    counts = select(
        func.count(),
        _with_status(MemberStatus.active),
        _with_status(MemberStatus.unsubscribed),
        _with_status(MemberStatus.unreachable),
    ).where(condition)
    first = (
        select(Member.id, Member.name)
        .where(Member.workspace_id == sql.bind("workspace", Uuid()))
        .order_by(Member.name, Member.id)
        .limit(sql.bind("window", Integer()))
        .subquery()
    )
    probed = (
        select(first.c.id, first.c.name)
        .where(sql.probed(first.c.id))
        .order_by(first.c.name, first.c.id)
        .limit(limit)
    )
    by_sets = (
        select(Member.id, Member.name)
        .where(condition)
        .order_by(Member.name, Member.id)
        .limit(limit)
    )
    return _Preview(counts, probed, by_sets)


async def preview_in_sql(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    rule: AudienceRule,
    limit: int = 20,
    *,
    window: int = FIRST_NAMES_WINDOW,
) -> AudiencePreview:
    """How many members a rule reaches (by status) and the first ``limit`` of them by name, as
    Postgres answers them (``core.audience.preview`` says when the caller asks it). The rule's
    ids are taken as checked (``validate_audience``).

    The counts are one aggregate over the members the rule reaches (``audience_condition``). The
    first names are looked for among the workspace's first ``window`` members by name, each
    probed by index (``probed_condition``): an audience of any breadth has its first names
    there, found in a millisecond where building its sets took 35 ms at 100,000 members. Only
    when they are not all there (a narrow audience, or names late in the alphabet) does the
    page walk ``ix_members_workspace_name`` with the sets, as the counts do. A window count
    over the whole audience would sort all of it first: 68 ms at 100,000 members.
    """
    statements = _preview(_Shape.of(rule))
    values = _values(rule, workspace_id)
    connection = await plain_connection(session)
    total, active, unsubscribed, unreachable = (
        await connection.execute(statements.counts, values)
    ).one()
    values |= {"audience_window": window, "audience_limit": limit}
    rows = (await connection.execute(statements.probed, values)).all()
    if len(rows) < min(limit, total):
        rows = (await connection.execute(statements.by_sets, values)).all()
    return AudiencePreview(
        count=total,
        by_status=AudienceCounts(
            total=total, active=active, unsubscribed=unsubscribed, unreachable=unreachable
        ),
        members=[Ref(id=r[0], name=r[1]) for r in rows],
    )


@dataclass(frozen=True)
class Memberships:
    """What a member belongs to: the facts an audience rule is matched against."""

    member_id: uuid.UUID
    group_ids: tuple[uuid.UUID, ...]
    tag_ids: tuple[uuid.UUID, ...]
    role_ids: tuple[uuid.UUID, ...]


async def memberships(session: AsyncSession, member_id: uuid.UUID) -> Memberships:
    async def ids(column: Any, key: Any) -> tuple[uuid.UUID, ...]:
        return tuple(await session.scalars(select(column).where(key == member_id)))

    return Memberships(
        member_id=member_id,
        group_ids=await ids(MemberGroup.group_id, MemberGroup.member_id),
        tag_ids=await ids(MemberTag.tag_id, MemberTag.member_id),
        role_ids=await ids(MemberRole.role_id, MemberRole.member_id),
    )


def reaches_member(audience: Any, who: Memberships) -> ColumnElement[bool]:
    """The same rule as ``audience_condition``, read the other way round: a condition over a
    JSONB audience column that holds when that audience includes this member. Lets a calendar
    feed find a member's events in one query. Tests check both directions agree.
    """

    def listed(key: str, ids: tuple[uuid.UUID, ...]) -> ColumnElement[bool]:
        if not ids:
            return false()
        matched: ColumnElement[bool] = audience[key].has_any(array([str(i) for i in ids]))
        return matched

    mine = [str(who.member_id)]
    held_tags = cast(literal(json.dumps([str(t) for t in who.tag_ids])), JSONB)
    all_tags = and_(
        audience["tags_mode"].astext == "all",
        func.jsonb_array_length(audience["tags"]) > 0,
        audience["tags"].contained_by(held_tags),
    )
    any_tag = and_(audience["tags_mode"].astext != "all", listed("tags", who.tag_ids))
    return and_(
        or_(
            audience["members"].has_any(array(mine)),
            listed("groups", who.group_ids),
            listed("roles", who.role_ids),
            any_tag,
            all_tags,
        ),
        ~audience["exclude_members"].has_any(array(mine)),
        ~listed("exclude_groups", who.group_ids),
        ~listed("exclude_tags", who.tag_ids),
    )
