"""One page of a list: the shape every list endpoint returns."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

MAX_PAGE = 200
T = TypeVar("T")


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
