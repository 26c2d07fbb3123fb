"""Pydantic bases for the public API: camelCase fields, unknown fields rejected."""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

T = TypeVar("T")


# The input hygiene rule (docs/architecture.md, "Input hygiene"): no text the API takes may
# hold NUL (PostgreSQL cannot store it, SQLite's LIKE stops at it), an unpaired surrogate
# (not encodable as UTF-8), or any other C0 control or DEL. Tab, line feed and carriage
# return stay allowed: free text (descriptions) may have lines.
_UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def reject_unsafe_text(value: str) -> str:
    """Return `value`, or refuse it (422) if it holds a code point the rule forbids."""
    found = _UNSAFE_TEXT.search(value)
    if found is not None:
        raise PydanticCustomError(
            "unsafe_text",
            "must not contain control characters (except tab, line feed and carriage "
            "return) or unpaired surrogates; found U+{code}",
            {"code": f"{ord(found.group()):04X}"},
        )
    return value


# Put last in an Annotated string type (after StringConstraints) to apply the rule.
SAFE_TEXT = AfterValidator(reject_unsafe_text)
# Any string the API accepts: body fields, query, path and header parameters. Length
# limits go in a StringConstraints before SAFE_TEXT (see SearchText), not in Query(), so
# their errors read "String should have at most ... characters".
SafeStr = Annotated[str, SAFE_TEXT]


def parse_id(value: str) -> uuid.UUID | None:
    """Return the UUID a path segment spells, or None when it spells none."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _bounded(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(min_length=min_length, max_length=max_length)


EmailQuery = Annotated[str, _bounded(0, 320), SAFE_TEXT]
SearchText = Annotated[str, _bounded(1, 200), SAFE_TEXT]


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


MAX_PAGE = 1_000_000
MAX_LIMIT = 100
DEFAULT_LIMIT = 20


async def _page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(page=page, limit=limit)


PageDep = Annotated[PageParams, Depends(_page_params)]
_PLAIN_NUMBER = re.compile(rb"[1-9][0-9]{0,6}")


def plain_paging(query_string: bytes) -> PageParams | None:
    """The paging of a query that says nothing else, each number spelled plainly
    (`limit=20&page=2`, or nothing), as `PageDep` reads it; None for any other query.

    For direct answers (common/cached_reads.py): whatever this refuses, FastAPI reads.
    """
    values = {b"page": 1, b"limit": DEFAULT_LIMIT}
    given: set[bytes] = set()
    for part in query_string.split(b"&") if query_string else ():
        name, _, value = part.partition(b"=")
        if name not in values or name in given or not _PLAIN_NUMBER.fullmatch(value):
            return None
        given.add(name)
        values[name] = int(value)
    page, limit = values[b"page"], values[b"limit"]
    if page > MAX_PAGE or limit > MAX_LIMIT:
        return None
    return PageParams(page=page, limit=limit)


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


NonEmptyStr = Annotated[str, Field(min_length=1), SAFE_TEXT]
# A human-readable name: trimmed, 1 to 200 characters.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SAFE_TEXT
]
