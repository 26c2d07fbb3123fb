"""Reads straight to JSON bytes: Core rows -> dicts -> orjson, no ORM and no pydantic.

The bytes are what the endpoint answers and what the response cache stores, so they
must equal what the response models (ProductPublic, Page) would serialise: the same
keys in the same order, prices as JSON numbers, timestamps in RFC 3339 with `Z`.
tests/products check the shapes; tests/test_schemathesis.py checks them against the
OpenAPI schema.

Statements are built once per shape (fields, sort, which filters) with bound
parameters, so SQLAlchemy's compiled cache is hit without recomputing a cache key.
On PostgreSQL a single SELECT runs in autocommit, straight on the driver
(common/statements.py): one round trip, no BEGIN/COMMIT.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    func,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfleet.common.statements import statements
from shopfleet.products.listing import ProductListQuery, columns_for, encode_cursor
from shopfleet.products.models import Product
from shopfleet.products.schemas import PRODUCT_FIELDS

# Each public field from its row, as JSON-ready values (common/schemas.py's serialisers).
_JSON_VALUES: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "id": lambda row, _: str(row["id"]),
    "sku": lambda row, _: row["sku"],
    "name": lambda row, _: row["name"],
    "description": lambda row, _: row["description"],
    # cents / 100 is the double nearest the exact price, as float(Decimal) is.
    "price": lambda row, _: row["price_cents"] / 100,
    "currency": lambda _, currency: currency,
    "categoryId": lambda row, _: str(row["category_id"]),
    "stock": lambda row, _: row["stock"],
    "inStock": lambda row, _: row["stock"] > 0,
    "image": lambda row, _: row["image"],
    # Datetimes go to orjson as they are: with _DUMPS it writes UTC as `Z`, exactly as
    # common.reads.rfc3339 does, without a Python call per timestamp.
    "createdAt": lambda row, _: row["created_at"],
    "updatedAt": lambda row, _: row["updated_at"],
}


_DUMPS = orjson.OPT_UTC_Z


@lru_cache(maxsize=256)
def ordered_fields(fields: frozenset[str]) -> tuple[str, ...]:
    """The chosen fields in the response model's order."""
    return tuple(field for field in PRODUCT_FIELDS if field in fields)


def product_dict(row: Mapping[str, Any], fields: Sequence[str], currency: str) -> dict[str, Any]:
    """The product's JSON-ready fields; `fields` in the response model's order."""
    if len(fields) == len(PRODUCT_FIELDS):  # every field (ordered_fields: no repeats)
        return _whole_product(row, currency)
    return {field: _JSON_VALUES[field](row, currency) for field in fields}


def _whole_product(row: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """_JSON_VALUES of every field, in one call per row instead of one per field (a page
    of 20 in a third of the time); tests/products/test_listing.py checks the two agree."""
    stock = row["stock"]
    return {
        "id": str(row["id"]),
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "price": row["price_cents"] / 100,
        "currency": currency,
        "categoryId": str(row["category_id"]),
        "stock": stock,
        "inStock": stock > 0,
        "image": row["image"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def page_bytes(
    results: list[dict[str, Any]],
    *,
    page: int,
    limit: int,
    total: int,
    next_cursor: str | None = None,
) -> bytes:
    """A Page as common/schemas.make_page would serialise it."""
    return orjson.dumps(
        {
            "results": results,
            "pagination": {
                "page": page,
                "limit": limit,
                "total": total,
                "pages": math.ceil(total / limit) if total else 0,
                "nextCursor": next_cursor,
            },
        },
        option=_DUMPS,
    )


@lru_cache(maxsize=256)
def _detail_statement(columns: tuple[str, ...]) -> Select[Any]:
    return select(*(getattr(Product, column) for column in columns)).where(
        Product.id == bindparam("product_id")
    )


async def product_detail_bytes(
    engine: AsyncEngine, *, product_id: Any, fields: frozenset[str], currency: str
) -> bytes | None:
    """The product's JSON (only `fields`), or None when there is no such product."""
    statement = _detail_statement(columns_for(fields))
    async with statements(engine) as connection:
        rows = await connection.rows(statement, {"product_id": product_id})
    if not rows:
        return None
    return orjson.dumps(product_dict(rows[0], ordered_fields(fields), currency), option=_DUMPS)


@dataclass(frozen=True)
class _Shape:
    """What a listing statement's text depends on (values are bound parameters)."""

    columns: tuple[str, ...]
    sort_column: str
    descending: bool
    category: bool
    in_stock: bool | None
    min_price: bool
    max_price: bool
    name_contains: bool
    after: bool
    # Read every row in the price range, then sort (few match), rather than walk the
    # sort order's index filtering by price (many match); see _narrow.
    narrow: bool = False


def _shape(query: ProductListQuery, category_id: uuid.UUID | None) -> _Shape:
    return _Shape(
        columns=query.columns,
        sort_column=query.sort_column,
        descending=query.descending,
        category=category_id is not None,
        in_stock=query.in_stock,
        min_price=query.min_price_cents is not None,
        max_price=query.max_price_cents is not None,
        name_contains=bool(query.name_contains),
        after=query.after is not None,
    )


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if shape.category:
        conditions.append(Product.category_id == bindparam("category_id"))
    if shape.in_stock is not None:
        conditions.append(Product.stock > 0 if shape.in_stock else Product.stock == 0)
    if shape.min_price:
        conditions.append(Product.price_cents >= bindparam("min_price"))
    if shape.max_price:
        conditions.append(Product.price_cents <= bindparam("max_price"))
    if shape.name_contains:
        conditions.append(Product.name.ilike(bindparam("pattern", type_=String), escape="\\"))
    return conditions


@lru_cache(maxsize=512)
def _page_statement(shape: _Shape) -> Select[Any]:
    sort_column = getattr(Product, shape.sort_column)
    conditions = _conditions(shape)
    if shape.after:
        key = tuple_(sort_column, Product.id)
        after = tuple_(
            bindparam("after_key", type_=sort_column.type),
            bindparam("after_id", type_=Product.id.type),
        )
        conditions.append(key < after if shape.descending else key > after)
    order = (
        (sort_column.desc(), Product.id.desc())
        if shape.descending
        else (sort_column.asc(), Product.id.asc())
    )
    columns = [getattr(Product, column) for column in shape.columns]
    if shape.narrow:
        # MATERIALIZED keeps PostgreSQL from folding it back into the ordered walk.
        matching = (
            select(*columns)
            .where(*conditions)
            .cte("matching")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        columns = [matching.c[column] for column in shape.columns]
        sort_column = matching.c[shape.sort_column]
        order = (
            (sort_column.desc(), matching.c.id.desc())
            if shape.descending
            else (sort_column.asc(), matching.c.id.asc())
        )
        conditions = []
    elif _walks_keys_first(shape):
        # Walk the index alone (it carries the price: models.py), then read the page's
        # rows by id, instead of reading every row walked to judge its price.
        keys = select(Product.id, sort_column).where(*conditions).order_by(*order)
        keys = keys.limit(bindparam("limit", type_=Integer))
        if not shape.after:
            keys = keys.offset(bindparam("offset", type_=Integer))
        page = keys.subquery("page")
        key_column = page.c[shape.sort_column]
        return (
            select(*columns)
            .join_from(Product, page, Product.id == page.c.id)
            .order_by(
                *(
                    (key_column.desc(), page.c.id.desc())
                    if shape.descending
                    else (key_column.asc(), page.c.id.asc())
                )
            )
        )
    statement = (
        select(*columns)
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
    )
    if not shape.after:
        statement = statement.offset(bindparam("offset", type_=Integer))
    return statement


def _walks_keys_first(shape: _Shape) -> bool:
    """A category's walk by date or name judged by price only: the index has it all."""
    return (
        shape.category
        and (shape.min_price or shape.max_price)
        and shape.sort_column in ("created_at", "name")
        and shape.in_stock is None
        and not shape.name_contains
    )


@lru_cache(maxsize=256)
def _count_statement(shape: _Shape) -> Select[Any]:
    return select(func.count().label("total")).select_from(Product).where(*_conditions(shape))


def _params(query: ProductListQuery, category_id: uuid.UUID | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": query.paging.limit, "offset": query.paging.offset}
    if category_id is not None:
        params["category_id"] = category_id
    if query.min_price_cents is not None:
        params["min_price"] = query.min_price_cents
    if query.max_price_cents is not None:
        params["max_price"] = query.max_price_cents
    if query.name_contains:
        params["pattern"] = f"%{escape_like(query.name_contains)}%"
    if query.after is not None:
        params["after_key"] = query.after.key
        params["after_id"] = query.after.id
    return params


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def total_key(query: ProductListQuery, category_id: uuid.UUID | None) -> str:
    """The cache key of a filter's total (sort, fields and page do not change it)."""
    return (
        "products:total:"
        + orjson.dumps(
            [
                str(category_id) if category_id else None,
                query.in_stock,
                query.min_price_cents,
                query.max_price_cents,
                query.name_contains,
            ]
        ).decode()
    )


@lru_cache(maxsize=1)
def _prices_statement() -> Select[Any]:
    return (
        select(Product.price_cents)
        .where(Product.category_id == bindparam("category_id"))
        .order_by(Product.price_cents)
        .limit(bindparam("limit", type_=Integer))
    )


@dataclass(frozen=True)
class Total:
    """A filter's total; `of`: how many products its category has, when known."""

    matching: int
    of: int | None = None


Count = Callable[[], Awaitable[int]]
CategoryPrices = Callable[[int], Awaitable[list[int]]]
# cached_total(count, prices): the filter's total, from the cache, the category's prices
# (`prices(limit)`: at most `limit` of them, ascending; None when the query has no
# category) or the database's count.
Counter = Callable[[Count, CategoryPrices | None], Awaitable[Total]]


def _narrow(shape: _Shape, total: Total, paging_end: int) -> bool:
    """Whether a page of a category's price range reads faster from the price index.

    Walking the sort order's index reads about paging_end * of / matching rows to find
    the page's; reading the range reads `matching` rows and sorts them. Sorted by price,
    the walk is the range.
    """
    if total.of is None or shape.sort_column == "price_cents":
        return False
    if not (shape.min_price or shape.max_price):
        return False
    return total.matching * total.matching < paging_end * total.of


async def list_page_bytes(
    engine: AsyncEngine,
    *,
    query: ProductListQuery,
    category_id: uuid.UUID | None,
    currency: str,
    cached_total: Counter,
) -> bytes:
    """One page of products as JSON; `nextCursor` continues after its last row.

    `cached_total(count, prices)` answers the filter's total, calling `count` or
    `prices` only when it is not known under the current generation (see caching.py).
    """
    shape = _shape(query, category_id)
    params = _params(query, category_id)
    end = query.paging.offset + query.paging.limit
    async with statements(engine) as connection:
        if query.after is None:
            # The total first: it says whether any row is left to read, and how.

            async def count() -> int:
                found = await connection.rows(_count_statement(shape), params)
                return int(found[0]["total"])

            async def prices(limit: int) -> list[int]:
                found = await connection.rows(
                    _prices_statement(), {"category_id": category_id, "limit": limit}
                )
                return [row["price_cents"] for row in found]

            counted = await cached_total(count, None if category_id is None else prices)
            total = counted.matching
            rows: Sequence[Mapping[str, Any]] = ()
            if query.paging.offset < total:
                if _narrow(shape, counted, end):
                    shape = replace(shape, narrow=True)
                rows = await connection.rows(_page_statement(shape), params)
            more = query.paging.offset + len(rows) < total
        else:  # deep in a walk: no count, the first page's total rides along in the cursor
            rows = await connection.rows(_page_statement(shape), params)
            total = query.after.total
            more = len(rows) == query.paging.limit
    fields = ordered_fields(query.fields)
    results = [product_dict(row, fields, currency) for row in rows]
    next_cursor = encode_cursor(query.sort, rows[-1], total) if rows and more else None
    return page_bytes(
        results,
        page=query.paging.page,
        limit=query.paging.limit,
        total=total,
        next_cursor=next_cursor,
    )
