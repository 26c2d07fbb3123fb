"""Categories' rules: unique slugs, a tree without cycles, no deletes of categories in use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.categories import repository
from shopfleet.categories.caching import invalidate_category_caches
from shopfleet.categories.models import Category
from shopfleet.categories.products_client import ProductsClient
from shopfleet.categories.schemas import (
    CategoryCreate,
    CategoryUpdate,
    slugify,
)
from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, NotFound, Unprocessable
from shopfleet.common.schemas import parse_id


class SlugTaken(Conflict):
    problem_type = "urn:shopfleet:problem:slug-taken"

    def __init__(self, slug: str) -> None:
        super().__init__(f"A category with the slug '{slug}' already exists.")


class CategoryInUse(Conflict):
    problem_type = "urn:shopfleet:problem:category-in-use"


class CategoryNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such category.")


async def get_category(*, db: AsyncSession, category_id: str) -> Category:
    """Return a category by id; a malformed id is simply not found."""
    parsed = parse_id(category_id)
    category = await repository.get_by_id(db, parsed) if parsed is not None else None
    if category is None:
        raise CategoryNotFound
    return category


async def list_categories(
    *, db: AsyncSession, parent: uuid.UUID | None, roots_only: bool, offset: int, limit: int
) -> tuple[Sequence[Category], int]:
    return await repository.list_categories(
        db, parent_id=parent, roots_only=roots_only, offset=offset, limit=limit
    )


async def create_category(*, db: AsyncSession, data: CategoryCreate) -> Category:
    """Create a category; its slug comes from the name unless one is given."""
    slug = data.slug or _derived_slug(data.name)
    if data.parent_id is not None:
        await _require_parent(db=db, parent_id=data.parent_id)
    if await repository.slug_taken(db, slug):
        raise SlugTaken(slug)
    now = utcnow()
    category = Category(
        name=data.name,
        slug=slug,
        description=data.description,
        parent_id=data.parent_id,
        created_at=now,
        updated_at=now,
    )
    db.add(category)
    await _flush(db=db, slug=slug)
    invalidate_category_caches(db)
    return category


async def update_category(
    *, db: AsyncSession, category_id: str, changes: CategoryUpdate
) -> Category:
    """Change a category; a new parent must exist and must not be the category's descendant."""
    fields = changes.model_fields_set
    for required in ("name", "slug"):
        if required in fields and getattr(changes, required) is None:
            raise Unprocessable(f"{required} cannot be null.", field=required)
    category = await get_category(db=db, category_id=category_id)
    if "parent_id" in fields and changes.parent_id != category.parent_id:
        if changes.parent_id is not None:
            await repository.lock_tree(db)
            await _require_parent(db=db, parent_id=changes.parent_id)
            if category.id in await repository.ancestor_ids(db, changes.parent_id):
                raise Unprocessable(
                    "A category cannot be moved below itself or its descendants.",
                    field="parentId",
                )
        category.parent_id = changes.parent_id
    if changes.slug is not None and changes.slug != category.slug:
        if await repository.slug_taken(db, changes.slug, other_than=category.id):
            raise SlugTaken(changes.slug)
        category.slug = changes.slug
    if changes.name is not None:
        category.name = changes.name
    if "description" in fields:
        category.description = changes.description
    if fields:
        category.updated_at = utcnow()
    await _flush(db=db, slug=category.slug)
    invalidate_category_caches(db)
    return category


async def delete_category(*, db: AsyncSession, products: ProductsClient, category_id: str) -> None:
    """Delete a category nothing uses: no child categories and no products."""
    parsed = parse_id(category_id)
    if parsed is None:
        raise CategoryNotFound
    # Ask products before touching the database, so no write lock waits on the network.
    in_use = await products.count_products_using(category_id=parsed)
    category = await get_category(db=db, category_id=category_id)
    if await repository.has_children(db, category.id):
        raise CategoryInUse("The category still has child categories.")
    if in_use:
        raise CategoryInUse(f"{in_use} product(s) still use the category.")
    await db.delete(category)
    try:
        await db.flush()
    except IntegrityError as exc:  # a child was added concurrently
        raise CategoryInUse("The category still has child categories.") from exc
    invalidate_category_caches(db)


def _derived_slug(name: str) -> str:
    slug = slugify(name)
    if not slug:
        raise Unprocessable("No slug can be derived from this name; give one.", field="slug")
    return slug


async def _require_parent(*, db: AsyncSession, parent_id: uuid.UUID) -> None:
    if await repository.get_by_id(db, parent_id) is None:
        raise Unprocessable("The parent category does not exist.", field="parentId")


async def _flush(*, db: AsyncSession, slug: str) -> None:
    try:
        await db.flush()
    except IntegrityError as exc:
        # The checks above ran first; failing here means a concurrent request inserted
        # the slug or deleted the parent in between.
        if "slug" in str(exc.orig):
            raise SlugTaken(slug) from exc
        raise Unprocessable("The parent category does not exist.", field="parentId") from exc
