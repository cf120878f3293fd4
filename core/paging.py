"""One page of a list: the shape every list endpoint returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, Select, bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import plain_connection

MAX_PAGE = 200
T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])


# Past any list a workspace can hold, and well inside Postgres' 64-bit integers.
MAX_OFFSET = 1_000_000_000


class PageParams(BaseModel):
    """Which page of a list to return. Unknown query parameters are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


class NameQuery(PageParams):
    q: Annotated[str, Field(max_length=200, description="Part of the name")] | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# A page's bounds, bound at each execution of a list's statements.
_LIMIT = bindparam("page_limit", type_=Integer())
_OFFSET = bindparam("page_offset", type_=Integer())


class PagedQuery(NamedTuple):
    """A list's statements: one page of rows with the total riding along (``LIMIT`` and
    ``OFFSET`` bound at each execution), and the total alone."""

    page: Select[Any]
    total: Select[Any]


def paged(rows: Select[*tuple[Any, ...]], count: Select[int]) -> PagedQuery:
    """The statements for ``page_and_total``: the count rides along as an uncorrelated subquery,
    which Postgres runs once, beside a page that still walks an index in order (``count(*) OVER
    ()`` would sort every matching row first). Built once, with a list's filters as bound
    parameters too, they are run with new values and no building (building a list's statements
    and deriving their cache key took 0.2 ms of every list request)."""
    numbered = rows.add_columns(count.scalar_subquery())
    return PagedQuery(numbered.limit(_LIMIT).offset(_OFFSET), count)


async def page_and_total(
    session: AsyncSession,
    make: Callable[[Iterable[Any]], R],
    query: PagedQuery,
    page: PageParams,
    values: Mapping[str, Any] | None = None,
) -> tuple[list[R], int]:
    """One page of the query's rows, each made into an ``R`` (a named tuple of its columns), and
    how many there are in all, in one statement (``values``: its bound filters). Only a page past
    the end, which carries no row to read the count from, asks again."""
    bound = {**(values or {}), "page_limit": page.limit, "page_offset": page.offset}
    connection = await plain_connection(session)
    found = (await connection.execute(query.page, bound)).all()
    if found:
        return [make(row[:-1]) for row in found], int(found[0][-1])
    if page.offset == 0:
        return [], 0
    return [], int(await connection.scalar(query.total, dict(values or {})) or 0)
