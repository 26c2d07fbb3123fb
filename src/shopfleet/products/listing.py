"""The catalog listing: its query parameters, field projection and keyset cursors."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

import orjson
from fastapi import Depends, Query
from pydantic import StringConstraints

from shopfleet.common.errors import Unprocessable
from shopfleet.common.schemas import SAFE_TEXT, PageDep, PageParams, SearchText
from shopfleet.products.schemas import MAX_PRICE, PRODUCT_FIELDS, cents_to_price, price_to_cents

SortOrder = Literal["createdAt", "-createdAt", "price", "-price", "name", "-name"]
SORT_ORDERS: tuple[str, ...] = get_args(SortOrder)
# The column each sort walks (id breaks ties).
SORT_COLUMNS = {"createdAt": "created_at", "price": "price_cents", "name": "name"}
# The columns each public field is built from.
FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "sku": ("sku",),
    "name": ("name",),
    "description": ("description",),
    "price": ("price_cents",),
    "currency": (),
    "categoryId": ("category_id",),
    "stock": ("stock",),
    "inStock": ("stock",),
    "image": ("image",),
    "createdAt": ("created_at",),
    "updatedAt": ("updated_at",),
}
_FIELD_VALUES: dict[str, Callable[[Mapping[Any, Any], str], Any]] = {
    "id": lambda row, _: row["id"],
    "sku": lambda row, _: row["sku"],
    "name": lambda row, _: row["name"],
    "description": lambda row, _: row["description"],
    "price": lambda row, _: cents_to_price(row["price_cents"]),
    "currency": lambda _, currency: currency,
    "categoryId": lambda row, _: row["category_id"],
    "stock": lambda row, _: row["stock"],
    "inStock": lambda row, _: row["stock"] > 0,
    "image": lambda row, _: row["image"],
    "createdAt": lambda row, _: row["created_at"],
    "updatedAt": lambda row, _: row["updated_at"],
}
ALL_FIELDS = frozenset(PRODUCT_FIELDS)


@dataclass(frozen=True)
class Position:
    """Where a keyset page starts: after the row with this sort key and id.

    It also carries the total counted on the walk's first page, so deep pages never
    count the whole catalog again.
    """

    key: datetime | int | str
    id: uuid.UUID
    total: int


@dataclass(frozen=True)
class ProductListQuery:
    paging: PageParams
    category: str | None = None
    in_stock: bool | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    name_contains: str | None = None
    sort: SortOrder = "-createdAt"
    fields: frozenset[str] = ALL_FIELDS
    after: Position | None = None

    @property
    def sort_column(self) -> str:
        return SORT_COLUMNS[self.sort.lstrip("-")]

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a page needs: those of the chosen fields, plus the cursor's."""
        return columns_for(self.fields, self.sort_column)


@lru_cache(maxsize=512)  # a few shapes, asked on every read
def columns_for(fields: frozenset[str], *extra: str) -> tuple[str, ...]:
    needed = {"id", *extra}
    for field in fields:
        needed.update(FIELD_COLUMNS[field])
    return tuple(sorted(needed))


def parse_fields(value: str | None) -> frozenset[str]:
    """Parse `fields=a,b`; id is always included and an unknown name is a 422."""
    if value is None:
        return ALL_FIELDS
    names = {part.strip() for part in value.split(",")} - {""}
    unknown = sorted(names - ALL_FIELDS)
    if unknown:
        raise Unprocessable(
            f"Unknown field(s): {', '.join(unknown)}. Known: {', '.join(PRODUCT_FIELDS)}.",
            field="fields",
        )
    if not names:
        raise Unprocessable("fields must name at least one field.", field="fields")
    return frozenset(names | {"id"})


def field_values(row: Mapping[Any, Any], fields: frozenset[str], currency: str) -> dict[str, Any]:
    """Build the public fields of one product from its row."""
    return {field: _FIELD_VALUES[field](row, currency) for field in fields}


def encode_cursor(sort: str, row: Mapping[Any, Any], total: int) -> str:
    key = row[SORT_COLUMNS[sort.lstrip("-")]]
    payload = [sort, key.isoformat() if isinstance(key, datetime) else key, str(row["id"]), total]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def decode_cursor(sort: str, cursor: str) -> Position:
    """Read a cursor made by encode_cursor for the same sort; anything else is a 422."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        cursor_sort, key, row_id, total = orjson.loads(raw)
        if cursor_sort != sort or not isinstance(row_id, str) or not _is_count(total):
            raise ValueError("another sort order, or not a cursor")
        return Position(key=_parse_key(sort.lstrip("-"), key), id=uuid.UUID(row_id), total=total)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise Unprocessable("The cursor is not valid for this sort order.", field="cursor") from exc


def _parse_key(sort: str, key: Any) -> datetime | int | str:
    if sort == "createdAt" and isinstance(key, str):
        parsed = datetime.fromisoformat(key)
        if parsed.tzinfo is not None:
            return parsed
    valid_price = sort == "price" and _is_count(key)
    valid_name = sort == "name" and isinstance(key, str) and len(key) <= 200
    if valid_price or valid_name:
        return key  # type: ignore[no-any-return]
    raise ValueError("bad cursor key")


def _is_count(value: Any) -> bool:
    """An int the database can bind (BIGINT), not a bool, not negative."""
    return type(value) is int and 0 <= value < 2**63


FieldsText = Annotated[str, StringConstraints(max_length=500), SAFE_TEXT]


def _price_query(alias: str, description: str) -> Any:
    return Query(alias=alias, ge=0, le=float(MAX_PRICE), decimal_places=2, description=description)


async def _list_query(
    paging: PageDep,
    category: Annotated[SearchText | None, Query(description="A category id or slug.")] = None,
    in_stock: Annotated[bool | None, Query(alias="inStock")] = None,
    min_price: Annotated[Decimal | None, _price_query("minPrice", "Lowest price.")] = None,
    max_price: Annotated[Decimal | None, _price_query("maxPrice", "Highest price.")] = None,
    q: Annotated[
        SearchText | None, Query(description="Case-insensitive match in the name.")
    ] = None,
    sort: SortOrder = "-createdAt",
    fields: Annotated[
        FieldsText | None,
        Query(description="Comma-separated product fields; id is always included."),
    ] = None,
    cursor: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=1000), SAFE_TEXT] | None,
        Query(
            description="pagination.nextCursor of the previous page (keyset pagination); "
            "pages after it report the total counted when the walk began.",
        ),
    ] = None,
) -> ProductListQuery:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise Unprocessable("minPrice must not exceed maxPrice.", field="minPrice")
    if cursor is not None and paging.page != 1:
        raise Unprocessable("Give either page or cursor, not both.", field="cursor")
    return ProductListQuery(
        paging=paging,
        category=category,
        in_stock=in_stock,
        min_price_cents=None if min_price is None else price_to_cents(min_price),
        max_price_cents=None if max_price is None else price_to_cents(max_price),
        name_contains=q,
        sort=sort,
        fields=parse_fields(fields),
        after=None if cursor is None else decode_cursor(sort, cursor),
    )


ProductListQueryDep = Annotated[ProductListQuery, Depends(_list_query)]
