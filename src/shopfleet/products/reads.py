"""Reads straight to JSON bytes: Core rows -> dicts -> orjson, no ORM and no pydantic.

The bytes are what the endpoint answers and what the response cache stores, so they
must equal what the response models (ProductPublic, Page) would serialise: the same
keys in the same order, prices as JSON numbers, timestamps in RFC 3339 with `Z`.
tests/products check the shapes; tests/test_schemathesis.py checks them against the
OpenAPI schema.

Statements are built once per shape (fields, sort, which filters) with bound
parameters, so SQLAlchemy's compiled cache is hit without recomputing a cache key.
On PostgreSQL a single SELECT runs in autocommit: one round trip, no BEGIN/COMMIT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfleet.common.reads import read_connection, rfc3339
from shopfleet.products.listing import columns_for
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
    "createdAt": lambda row, _: rfc3339(row["created_at"]),
    "updatedAt": lambda row, _: rfc3339(row["updated_at"]),
}


@lru_cache(maxsize=256)
def ordered_fields(fields: frozenset[str]) -> tuple[str, ...]:
    """The chosen fields in the response model's order."""
    return tuple(field for field in PRODUCT_FIELDS if field in fields)


def product_dict(row: Mapping[str, Any], fields: Sequence[str], currency: str) -> dict[str, Any]:
    return {field: _JSON_VALUES[field](row, currency) for field in fields}


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
        }
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
    async with read_connection(engine) as connection:
        row = (await connection.execute(statement, {"product_id": product_id})).mappings().first()
    if row is None:
        return None
    return orjson.dumps(product_dict(row, ordered_fields(fields), currency))
