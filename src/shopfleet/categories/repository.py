"""Categories' queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.categories.models import Category

# Any constant works: it names the one advisory lock that serialises moves in the tree.
_TREE_LOCK_KEY = 7_240_316


async def get_by_id(session: AsyncSession, category_id: uuid.UUID) -> Category | None:
    return await session.get(Category, category_id)


async def get_by_slug(session: AsyncSession, slug: str) -> Category | None:
    result = await session.execute(select(Category).where(Category.slug == slug))
    return result.scalar_one_or_none()


async def slug_taken(
    session: AsyncSession, slug: str, *, other_than: uuid.UUID | None = None
) -> bool:
    condition = Category.slug == slug
    if other_than is not None:
        condition = condition & (Category.id != other_than)
    return bool(await session.scalar(select(exists().where(condition))))


async def list_categories(
    session: AsyncSession, *, parent_id: uuid.UUID | None, roots_only: bool, offset: int, limit: int
) -> tuple[Sequence[Category], int]:
    conditions: list[ColumnElement[bool]] = []
    if roots_only:
        conditions.append(Category.parent_id.is_(None))
    elif parent_id is not None:
        conditions.append(Category.parent_id == parent_id)
    total = await session.scalar(select(func.count()).select_from(Category).where(*conditions))
    rows = await session.scalars(
        select(Category)
        .where(*conditions)
        .order_by(Category.name, Category.id)
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)


async def has_children(session: AsyncSession, category_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(exists().where(Category.parent_id == category_id))))


async def ancestor_ids(session: AsyncSession, category_id: uuid.UUID) -> set[uuid.UUID]:
    """Return a category's id and the ids of all its ancestors, in one recursive query."""
    chain = (
        select(Category.id, Category.parent_id)
        .where(Category.id == category_id)
        .cte("chain", recursive=True)
    )
    # UNION (not UNION ALL) ends the walk even if the data ever held a cycle.
    chain = chain.union(
        select(Category.id, Category.parent_id).join(chain, Category.id == chain.c.parent_id)
    )
    return set((await session.scalars(select(chain.c.id))).all())


async def lock_tree(session: AsyncSession) -> None:
    """Serialise changes of parents, so two concurrent moves cannot close a cycle.

    SQLite writers are serialised already (BEGIN IMMEDIATE); PostgreSQL takes an
    advisory lock held until the transaction ends.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TREE_LOCK_KEY})
