"""A category by id or slug, straight to the JSON bytes CategoryPublic would serialise."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfleet.categories.models import Category
from shopfleet.common.reads import optional_str, rfc3339
from shopfleet.common.schemas import parse_id
from shopfleet.common.statements import statements
from shopfleet.contracts.categories import is_slug

_COLUMNS = (
    Category.id,
    Category.name,
    Category.slug,
    Category.description,
    Category.parent_id,
    Category.created_at,
    Category.updated_at,
)
# Built once with bound parameters: SQLAlchemy's compiled cache is hit directly.
_BY_ID = select(*_COLUMNS).where(Category.id == bindparam("value"))
_BY_SLUG = select(*_COLUMNS).where(Category.slug == bindparam("value"))


async def category_bytes(engine: AsyncEngine, *, id_or_slug: str) -> bytes | None:
    """The category's JSON, or None when no category has that id or slug."""
    category_id = parse_id(id_or_slug)
    value: Any
    if category_id is not None:
        statement, value = _BY_ID, category_id
    elif is_slug(id_or_slug):
        statement, value = _BY_SLUG, id_or_slug
    else:
        return None
    async with statements(engine) as connection:
        rows = await connection.rows(statement, {"value": value})
    if not rows:
        return None
    row = rows[0]
    return orjson.dumps(
        {
            "id": str(row["id"]),
            "name": row["name"],
            "slug": row["slug"],
            "description": row["description"],
            "parentId": optional_str(row["parent_id"]),
            "createdAt": rfc3339(row["created_at"]),
            "updatedAt": rfc3339(row["updated_at"]),
        }
    )
