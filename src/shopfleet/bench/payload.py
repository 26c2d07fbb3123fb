"""The ~1 KB JSON body that `ceiling` (nginx alone) and `floor` (bare FastAPI) both return.

Shaped like a product, so the reference scenarios move as many bytes as a product detail.
No `$` or `'`: nginx's `return 200 '...'` would read them as a variable or the end.
"""

from __future__ import annotations

from typing import Any

import orjson

PAYLOAD: dict[str, Any] = {
    "id": "00000000-0000-4000-8000-000000000000",
    "sku": "BENCH-0001",
    "name": "A benchmark payload shaped like a product",
    "description": "x" * 700,
    "price": 19.99,
    "currency": "USD",
    "categoryId": "00000000-0000-4000-8000-000000000001",
    "stock": 10,
    "inStock": True,
    "image": None,
    "createdAt": "2026-01-01T00:00:00Z",
    "updatedAt": "2026-01-01T00:00:00Z",
}


def payload_json() -> str:
    """The payload as compact JSON text (what nginx returns verbatim)."""
    return orjson.dumps(PAYLOAD).decode()
