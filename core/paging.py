"""One page of a list: the shape every list endpoint returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def page_and_total(
    session: AsyncSession,
    make: Callable[[Iterable[Any]], R],
    rows: Select[*tuple[Any, ...]],
    count: Select[int],
    page: PageParams,
) -> tuple[list[R], int]:
    """One page of ``rows``, each made into an ``R`` (a named tuple of its columns), and how
    many there are in all, in one statement: the count rides along as an uncorrelated subquery,
    which Postgres runs once, beside a page that still walks an index in order (``count(*) OVER
    ()`` would sort every matching row first). Only a page past the end, which carries no row to
    read the count from, asks again."""
    numbered = rows.add_columns(count.scalar_subquery())
    found = (await session.execute(numbered.limit(page.limit).offset(page.offset))).all()
    if found:
        return [make(row[:-1]) for row in found], int(found[0][-1])
    return [], 0 if page.offset == 0 else int(await session.scalar(count) or 0)
