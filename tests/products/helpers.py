"""Helpers for products tests: a running catalog with an admin and a category."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from shopfleet.common.database import utcnow
from shopfleet.products.caching import LIST_SCOPE, TOTALS_SCOPE
from shopfleet.products.models import Product
from tests.support import Platform

_skus = itertools.count(1)


def product_body(category_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "sku": f"SKU-{next(_skus):05d}",
        "name": "Oak Desk Lamp",
        "price": 19.99,
        "categoryId": category_id,
        "stock": 5,
    }
    body.update(fields)
    return body


async def create_product(
    platform: Platform, headers: dict[str, str], category_id: str, **fields: Any
) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/products", json=product_body(category_id, **fields), headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def insert_products(platform: Platform, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Arrange catalog rows directly in products' database (exact timestamps, ties)."""
    now = utcnow()
    values = []
    for row in rows:
        created: datetime = row.get("created_at", now)
        values.append(
            {
                "id": row.get("id", uuid.uuid4()),
                "sku": row.get("sku", f"ROW-{next(_skus):05d}"),
                "name": row["name"],
                "description": None,
                "price_cents": row["price_cents"],
                "category_id": row["category_id"],
                "stock": row.get("stock", 1),
                "image": None,
                "created_at": created,
                "updated_at": created,
            }
        )
    resources = platform.resources("products")
    async with resources.sessionmaker() as db:
        await db.execute(insert(Product), values)
        await db.commit()
    if resources.cache is not None:  # written behind the service's back: say so
        await resources.cache.invalidate(LIST_SCOPE, TOTALS_SCOPE)
    return [value["id"] for value in values]
