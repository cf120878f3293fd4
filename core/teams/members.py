"""Members of a workspace: the people vestnik reminds."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    Uuid,
    any_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from core.audit import record_by
from core.db import ids_param
from core.errors import Conflict, Invalid, NotFound
from core.filters import contains
from core.paging import Page, PagedQuery, PageParams, page_and_total, paged
from core.scoping import get_scoped
from core.teams.accounts import (
    SHORTHANDS,
    set_account,
    shorthand_id,
    user_id_on,
    with_account,
)
from core.teams.builtin_roles import BuiltinRole
from core.teams.happenings import Happening, happened
from core.teams.models import (
    Group,
    Member,
    MemberAccount,
    MemberGroup,
    MemberRole,
    MemberStatus,
    MemberTag,
    Messenger,
    Role,
    Tag,
    TimeOfDay,
    Workspace,
)
from core.teams.permissions import Action, Actor
from core.teams.roles import (
    builtin_role_id,
    highest_role,
    require_another_owner,
    set_member_roles,
)
from core.teams.schemas import (
    AccountOut,
    MemberCreate,
    MemberFilter,
    MemberOut,
    MemberUpdate,
    QuietHours,
    Ref,
)


class _MemberRow(NamedTuple):
    """What a member's view is made of, read as plain columns: lists and single reads build no
    ORM object, and a named tuple reads its fields ten times faster than a SQLAlchemy Row."""

    id: uuid.UUID
    name: str
    email: str | None
    external_id: str | None
    timezone: str
    locale: str
    quiet_start: time | None
    quiet_end: time | None
    preferred_time: TimeOfDay
    preferred_messenger: str | None
    daily_report_at: time | None
    status: MemberStatus
    last_activity_at: datetime | None
    created_at: datetime


# The columns a view reads, selected once (each read adds its conditions to a copy): coercing
# them took a tenth of a millisecond of every list.
_VIEW_ROWS = select(*(getattr(Member, name) for name in _MemberRow._fields))


# The page's member ids, bound at each execution of the statement below.
_PAGE_IDS = ids_param("member_ids")


def _links_of(link: Any, target: Any, link_key: Any, kind: str) -> Select[Any]:
    return (
        select(
            literal(kind).label("kind"),
            link.member_id,
            target.id,
            target.name,
            null().cast(DateTime(timezone=True)).label("since"),
            null().cast(String).label("external_id"),
        )
        .join(target, target.id == link_key)
        .where(link.member_id == any_(_PAGE_IDS))
    )


# Each member's roles, groups and tags, and their accounts. Built once: building it and deriving
# its cache key took 0.6 ms of every members page (a tenth of its CPU). Links carry no time and
# accounts sort by theirs: one order serves both.
_LINKS: Executable = union_all(
    _links_of(MemberRole, Role, MemberRole.role_id, "roles"),
    _links_of(MemberGroup, Group, MemberGroup.group_id, "groups"),
    _links_of(MemberTag, Tag, MemberTag.tag_id, "tags"),
    select(
        literal("accounts"),
        MemberAccount.member_id,
        null().cast(Uuid()),
        cast(MemberAccount.messenger, String),
        MemberAccount.created_at,
        MemberAccount.external_id,
    ).where(MemberAccount.member_id == any_(_PAGE_IDS)),
).order_by("since", "name")


class _Linked(NamedTuple):
    roles: dict[uuid.UUID, list[Ref]]
    groups: dict[uuid.UUID, list[Ref]]
    tags: dict[uuid.UUID, list[Ref]]
    accounts: dict[uuid.UUID, list[AccountOut]]


async def _links(session: AsyncSession, ids: Sequence[uuid.UUID]) -> _Linked:
    """Each member's roles, groups and tags by name, and their accounts in the order they were
    linked: one round trip for a page of members."""
    rows = await session.execute(_LINKS, {"member_ids": list(ids)})
    out = _Linked(defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list))
    for kind, member_id, ident, name, _, external_id in rows:
        if kind == "accounts":
            out.accounts[member_id].append(AccountOut(messenger=name, external_id=external_id))
        else:
            getattr(out, kind)[member_id].append(Ref(id=ident, name=name))
    return out


def _on(accounts: list[AccountOut], messenger: Messenger) -> int | None:
    return shorthand_id(next((a.external_id for a in accounts if a.messenger == messenger), None))


async def _views(session: AsyncSession, rows: Sequence[_MemberRow]) -> list[MemberOut]:
    """Members with their roles, groups, tags and accounts: one more query, whatever their
    number."""
    linked = await _links(session, [m.id for m in rows])
    views = []
    for m in rows:
        accounts = linked.accounts.get(m.id, [])
        views.append(
            MemberOut(
                id=m.id,
                name=m.name,
                telegram_user_id=_on(accounts, Messenger.telegram),
                max_user_id=_on(accounts, Messenger.max),
                accounts=accounts,
                email=m.email,
                external_id=m.external_id,
                timezone=m.timezone,
                locale=m.locale,
                quiet_hours=(
                    QuietHours(start=m.quiet_start, end=m.quiet_end)
                    if m.quiet_start is not None and m.quiet_end is not None
                    else None
                ),
                preferred_time=m.preferred_time,
                preferred_messenger=m.preferred_messenger,
                daily_report_at=m.daily_report_at,
                status=m.status,
                last_activity_at=m.last_activity_at,
                created_at=m.created_at,
                roles=linked.roles.get(m.id, []),
                groups=linked.groups.get(m.id, []),
                tags=linked.tags.get(m.id, []),
            )
        )
    return views


async def member_view(
    session: AsyncSession, workspace_id: uuid.UUID, member_id: uuid.UUID
) -> MemberOut:
    """One member of the workspace as the API shows them (pending changes flushed first)."""
    row = (
        await session.execute(
            _VIEW_ROWS.where(Member.workspace_id == workspace_id, Member.id == member_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("member", member_id)
    return (await _views(session, [_MemberRow._make(row)]))[0]


def member_query(where: Sequence[ColumnElement[bool]]) -> PagedQuery:
    """The members matching ``where``, by name, as ``member_page`` reads them."""
    return paged(
        _VIEW_ROWS.where(*where).order_by(Member.name, Member.id),
        select(func.count()).select_from(Member).where(*where),
    )


async def member_page(
    session: AsyncSession,
    query: PagedQuery,
    page: PageParams,
    values: Mapping[str, Any] | None = None,
) -> Page[MemberOut]:
    """One page of the members ``query`` (from ``member_query``, with its bound ``values``)
    finds, and how many in all."""
    rows, total = await page_and_total(session, _MemberRow._make, query, page, values)
    items = await _views(session, rows)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def _check_unique(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    accounts: dict[str, int | None],
    email: str | None,
    external_id: str | None = None,
    exclude: uuid.UUID | None = None,
) -> None:
    checks: list[tuple[str, ColumnElement[bool]]] = []
    for field, user_id in accounts.items():
        if user_id is not None:
            checks.append((field, with_account(SHORTHANDS[field], str(user_id))))
    if email is not None:
        checks.append(("email", Member.email == email))
    if external_id is not None:
        checks.append(("external_id", Member.external_id == external_id))
    for field, condition in checks:
        query = select(Member.id).where(Member.workspace_id == workspace_id, condition)
        if exclude is not None:
            query = query.where(Member.id != exclude)
        if await session.scalar(query) is not None:
            raise Conflict(field, f"another member of this workspace already has this {field}")


async def create_member(session: AsyncSession, actor: Actor, data: MemberCreate) -> MemberOut:
    """Add a person to the workspace, with the 'member' role unless roles are given."""
    actor.require(Action.manage_people)
    email = data.email.lower() if data.email else None
    await _check_unique(
        session,
        actor.workspace_id,
        accounts={field: getattr(data, field) for field in SHORTHANDS},
        email=email,
        external_id=data.external_id,
    )
    timezone = data.timezone
    if timezone is None:
        workspace = await session.get_one(Workspace, actor.workspace_id)
        timezone = workspace.timezone
    member = Member(
        workspace_id=actor.workspace_id,
        name=data.name,
        email=email,
        external_id=data.external_id,
        timezone=timezone,
        locale=data.locale,
        quiet_start=data.quiet_hours.start if data.quiet_hours else None,
        quiet_end=data.quiet_hours.end if data.quiet_hours else None,
        preferred_time=data.preferred_time.value,
    )
    for field, messenger in SHORTHANDS.items():
        if (user_id := getattr(data, field)) is not None:
            set_account(member, messenger, str(user_id))
    session.add(member)
    await session.flush()
    role_ids = data.role_ids
    if role_ids is None:
        role_ids = [await builtin_role_id(session, actor.workspace_id, BuiltinRole.member)]
    await set_member_roles(session, actor, member.id, role_ids)
    record_by(session, actor, "person.added", member, f"person {member.name!r}", member.id)
    await happened(session, Happening("joined_workspace", actor.workspace_id, [member.id]))
    return await member_view(session, actor.workspace_id, member.id)


async def get_member(session: AsyncSession, actor: Actor, member_id: uuid.UUID) -> MemberOut:
    actor.require(Action.read)
    return await member_view(session, actor.workspace_id, member_id)


@lru_cache(maxsize=32)
def _filtered(q: bool, status: bool, group: bool, tag: bool, role: bool) -> PagedQuery:
    """The members list's query for the filters given (their values bound by name), built once
    per combination."""
    where: list[ColumnElement[bool]] = [Member.workspace_id == bindparam("workspace_id")]
    if q:
        pattern = bindparam("q", type_=String())
        where.append(or_(Member.name.ilike(pattern), Member.email.ilike(pattern)))
    if status:
        where.append(Member.status == bindparam("status"))
    for given, link, key, name in (
        (group, MemberGroup, MemberGroup.group_id, "group_id"),
        (tag, MemberTag, MemberTag.tag_id, "tag_id"),
        (role, MemberRole, MemberRole.role_id, "role_id"),
    ):
        if given:
            where.append(exists().where(link.member_id == Member.id, key == bindparam(name)))
    return member_query(where)


async def list_members(session: AsyncSession, actor: Actor, flt: MemberFilter) -> Page[MemberOut]:
    """Members matching the filter, by name, one page at a time."""
    actor.require(Action.read)
    values: dict[str, Any] = {"workspace_id": actor.workspace_id}
    if flt.q:
        values["q"] = contains(flt.q)
    if flt.status is not None:
        values["status"] = flt.status.value
    for name in ("group_id", "tag_id", "role_id"):
        if (ident := getattr(flt, name)) is not None:
            values[name] = ident
    query = _filtered(
        "q" in values,
        "status" in values,
        "group_id" in values,
        "tag_id" in values,
        "role_id" in values,
    )
    return await member_page(session, query, flt, values)


async def update_member(
    session: AsyncSession, actor: Actor, member_id: uuid.UUID, patch: MemberUpdate
) -> MemberOut:
    """Change the fields present in ``patch`` (an explicit null clears email or quiet hours).

    Identity decides who signs in as whom: a messenger account is changed only by an owner (or
    by the person, through the messenger), and nobody changes the email of someone above them."""
    actor.require(Action.manage_people)
    member = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    given = patch.model_fields_set
    accounts = {f: getattr(patch, f) for f in SHORTHANDS if f in given}
    if any(user_id != user_id_on(member, SHORTHANDS[f]) for f, user_id in accounts.items()):
        actor.require(Action.link_messenger)
    if "email" in given or "role_ids" in given or "external_id" in given:
        # An external id decides whose record another system's signals land on: like an email.
        actor.require_not_below(
            await highest_role(session, member.id), "change the email, external id or roles"
        )
    email = patch.email.lower() if patch.email else None
    await _check_unique(
        session,
        actor.workspace_id,
        accounts=accounts,
        email=email if "email" in given else None,
        external_id=patch.external_id if "external_id" in given else None,
        exclude=member.id,
    )
    for field in ("name", "timezone", "locale"):
        value = getattr(patch, field)
        if field in given and value is not None:
            setattr(member, field, value)
    for field, user_id in accounts.items():
        set_account(member, SHORTHANDS[field], str(user_id) if user_id is not None else None)
    if "email" in given:
        member.email = email
    if "external_id" in given:
        member.external_id = patch.external_id
    if "preferred_time" in given and patch.preferred_time is not None:
        member.preferred_time = patch.preferred_time
    if "preferred_messenger" in given:
        chosen = patch.preferred_messenger
        if chosen is not None and member.account(chosen) is None:
            raise Invalid("preferred_messenger", f"the member has no {chosen.value} account")
        member.preferred_messenger = chosen.value if chosen else None
    if "daily_report_at" in given:
        member.daily_report_at = patch.daily_report_at
    if "status" in given and patch.status is not None:
        member.status = patch.status
    if "quiet_hours" in given:
        member.quiet_start = patch.quiet_hours.start if patch.quiet_hours else None
        member.quiet_end = patch.quiet_hours.end if patch.quiet_hours else None
    if "role_ids" in given and patch.role_ids is not None:
        await set_member_roles(session, actor, member.id, patch.role_ids)
    await session.flush()
    record_by(
        session,
        actor,
        "person.changed",
        member,
        f"person {member.name!r}: {', '.join(sorted(given))}",
        member.id,
    )
    return await member_view(session, actor.workspace_id, member.id)


async def delete_member(session: AsyncSession, actor: Actor, member_id: uuid.UUID) -> None:
    """Remove a person from the workspace, with their memberships, tags and tag history. Nobody
    removes someone above them, and the last owner stays."""
    actor.require(Action.manage_people)
    member = await get_scoped(session, Member, actor.workspace_id, member_id, "member")
    role = await highest_role(session, member.id)
    actor.require_not_below(role, "remove the record")
    if role is BuiltinRole.owner:
        await require_another_owner(session, actor.workspace_id, member.id, "member_id")
    record_by(session, actor, "person.removed", member, f"person {member.name!r}")
    await session.delete(member)
    await session.flush()
