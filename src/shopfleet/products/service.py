"""Products' rules. Every write to the catalog goes through the functions here:

create_product, update_product and delete_product change products; reservations change
stock through take_stock and return_stock, or on PostgreSQL in one statement
(repository.reserve_at_once).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, NotFound, Unprocessable
from shopfleet.common.schemas import parse_id
from shopfleet.products import repository
from shopfleet.products.caching import invalidate_product_caches
from shopfleet.products.categories_client import CategoriesClient
from shopfleet.products.models import Product
from shopfleet.products.schemas import ProductCreate, ProductUpdate, price_to_cents


class SkuTaken(Conflict):
    problem_type = "urn:shopfleet:problem:sku-taken"

    def __init__(self, sku: str) -> None:
        super().__init__(f"A product with the SKU '{sku}' already exists.")


class ProductNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such product.")


async def get_product(*, db: AsyncSession, product_id: str) -> Product:
    """Return a product by id; a malformed id is simply not found."""
    parsed = parse_id(product_id)
    product = await repository.get_product(db, parsed) if parsed is not None else None
    if product is None:
        raise ProductNotFound
    return product


async def create_product(
    *, db: AsyncSession, categories: CategoriesClient, data: ProductCreate
) -> Product:
    """Add a product to an existing category."""
    # Ask categories before the first statement, so no write lock waits on the network.
    await categories.require(data.category_id)
    if await repository.sku_taken(db, data.sku):
        raise SkuTaken(data.sku)
    now = utcnow()
    product = Product(
        sku=data.sku,
        name=data.name,
        description=data.description,
        price_cents=price_to_cents(data.price),
        category_id=data.category_id,
        stock=data.stock,
        image=data.image,
        created_at=now,
        updated_at=now,
    )
    db.add(product)
    await _flush(db=db, sku=data.sku)
    invalidate_product_caches(db, product.id, totals=True)
    return product


async def update_product(
    *, db: AsyncSession, categories: CategoriesClient, product_id: str, changes: ProductUpdate
) -> Product:
    """Change any field of a product; `stock` sets the level an admin counted."""
    fields = changes.model_fields_set
    for required in ("sku", "name", "price", "category_id", "stock"):
        if required in fields and getattr(changes, required) is None:
            raise Unprocessable(f"{required} cannot be null.", field=_camel(required))
    if changes.category_id is not None:
        await categories.require(changes.category_id)
    product = await get_product(db=db, product_id=product_id)
    if changes.sku is not None and changes.sku != product.sku:
        if await repository.sku_taken(db, changes.sku, other_than=product.id):
            raise SkuTaken(changes.sku)
        product.sku = changes.sku
    if changes.price is not None:
        product.price_cents = price_to_cents(changes.price)
    for name in ("name", "category_id", "stock"):
        if getattr(changes, name) is not None:
            setattr(product, name, getattr(changes, name))
    for name in ("description", "image"):
        if name in fields:
            setattr(product, name, getattr(changes, name))
    if fields:
        product.updated_at = utcnow()
    await _flush(db=db, sku=product.sku)
    invalidate_product_caches(db, product.id, totals=True)
    return product


async def delete_product(*, db: AsyncSession, product_id: str) -> None:
    product = await get_product(db=db, product_id=product_id)
    await db.delete(product)
    await db.flush()
    invalidate_product_caches(db, product.id, totals=True)


async def take_stock(*, db: AsyncSession, quantities: Mapping[uuid.UUID, int]) -> None:
    """Take stock of rows the caller has locked and checked, in product id order.

    (The reservation's steps on SQLite; on PostgreSQL it is one statement,
    repository.reserve_at_once.) The decrement stays conditional (`stock >= quantity`).
    """
    await repository.change_stock(db, quantities, take=True, now=utcnow())


async def return_stock(*, db: AsyncSession, quantities: Mapping[uuid.UUID, int]) -> None:
    """Put released stock back, in product id order (the same lock order as take_stock)."""
    invalidate_product_caches(db, *quantities)
    await repository.change_stock(db, quantities, take=False, now=utcnow())


async def _flush(*, db: AsyncSession, sku: str) -> None:
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent request took the SKU after our check
        raise SkuTaken(sku) from exc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
