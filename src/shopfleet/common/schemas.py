"""Pydantic bases for the public API: camelCase fields, unknown fields rejected."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints
from pydantic.alias_generators import to_camel

T = TypeVar("T")


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str)]
# Money travels as a JSON number with at most two decimals; inside it is a Decimal.
MoneyOut = Annotated[Decimal, PlainSerializer(float, return_type=float)]


class ApiModel(BaseModel):
    """Base of request and response bodies: camelCase on the wire, nothing unknown."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        from_attributes=True,
    )


class Pagination(ApiModel):
    page: int
    limit: int
    total: int
    pages: int
    next_cursor: str | None = None


class Page(ApiModel, Generic[T]):
    results: list[T]
    pagination: Pagination


class PageParams(ApiModel):
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


async def _page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PageParams:
    return PageParams(page=page, limit=limit)


PageDep = Annotated[PageParams, Depends(_page_params)]


def make_page(
    results: list[T], *, params: PageParams, total: int, next_cursor: str | None = None
) -> Page[T]:
    """Wrap one page of results with its pagination block."""
    return Page[T](
        results=results,
        pagination=Pagination(
            page=params.page,
            limit=params.limit,
            total=total,
            pages=math.ceil(total / params.limit) if total else 0,
            next_cursor=next_cursor,
        ),
    )


NonEmptyStr = Annotated[str, Field(min_length=1)]
# A human-readable name: trimmed, 1 to 200 characters.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
