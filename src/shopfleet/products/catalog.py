"""Reads of the catalog, built into response models straight from the selected columns."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.schemas import ApiModel, Page, make_page
from shopfleet.products import repository
from shopfleet.products.listing import (
    ALL_FIELDS,
    ProductListQuery,
    columns_for,
    encode_cursor,
    field_values,
)
from shopfleet.products.models import Product
from shopfleet.products.schemas import ProductPublic, product_fields_model


async def list_products(
    *,
    db: AsyncSession,
    query: ProductListQuery,
    category_id: uuid.UUID | None,
    currency: str,
) -> Page[ApiModel]:
    """One page of products; `nextCursor` continues after its last row while more may follow."""
    rows = await repository.list_products(db, query, category_id=category_id)
    if query.after is None:
        total = await repository.count_products(db, query, category_id=category_id)
        more = query.paging.offset + len(rows) < total
    else:  # deep in a walk: no count, the first page's total rides along in the cursor
        total = query.after.total
        more = len(rows) == query.paging.limit
    model = product_fields_model(query.fields)
    results = [model.model_validate(field_values(row, query.fields, currency)) for row in rows]
    next_cursor = encode_cursor(query.sort, rows[-1], total) if rows and more else None
    return make_page(results, params=query.paging, total=total, next_cursor=next_cursor)


def public_product(product: Product, *, currency: str) -> ProductPublic:
    row = {column: getattr(product, column) for column in columns_for(ALL_FIELDS)}
    return ProductPublic.model_validate(field_values(row, ALL_FIELDS, currency))
