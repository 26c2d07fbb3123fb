"""Reservations stay exact across real processes sharing one database."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.categories.helpers import INTERNAL
from tests.products.helpers import insert_products
from tests.support import REDIS_URL, MakePlatform, start_service, test_env

pytestmark = pytest.mark.e2e


async def test_two_instances_never_oversell(
    make_platform: MakePlatform, backend: str, tmp_path: Path, redis_prefix: str
) -> None:
    async with make_platform("products") as platform:
        (product,) = await insert_products(
            platform,
            [{"name": "Last Lamp", "price_cents": 500, "stock": 7, "category_id": uuid.uuid4()}],
        )
        # Two processes share one cache only through Redis; without it each keeps its own,
        # and a product warmed into one is stale there once the other changes its stock.
        env = test_env(
            "products",
            backend,
            tmp_path,
            SHOPFLEET_REDIS_URL=REDIS_URL,
            SHOPFLEET_REDIS_KEY_PREFIX=redis_prefix,
        )
        instances = []
        try:
            for number in (1, 2):
                instances.append(
                    start_service("products", env=env, log_dir=tmp_path, instance=number)
                )
            async with httpx.AsyncClient(headers=INTERNAL, timeout=30) as client:

                async def reserve(index: int, order_id: uuid.UUID) -> httpx.Response:
                    url = instances[index % 2].url + "/internal/products/reservations"
                    body = {
                        "orderId": str(order_id),
                        "items": [{"productId": str(product), "quantity": 1}],
                    }
                    return await client.post(url, json=body)

                racing = await asyncio.gather(*(reserve(i, uuid.uuid4()) for i in range(24)))
                assert sorted(r.status_code for r in racing) == [200] * 7 + [409] * 17
                served_by = {r.headers["x-instance"] for r in racing}
                assert served_by == {"products-1", "products-2"}

                detail = await client.get(f"{instances[0].url}/v1/products/{product}")
                assert detail.json()["stock"] == 0
                order = next(r.json()["orderId"] for r in racing if r.status_code == 200)
                releases = await asyncio.gather(
                    *(
                        client.post(
                            f"{instances[i % 2].url}/internal/products/reservations/{order}/release"
                        )
                        for i in range(6)
                    )
                )
                assert {r.status_code for r in releases} == {200}
                detail = await client.get(f"{instances[1].url}/v1/products/{product}")
                assert detail.json()["stock"] == 1
        finally:
            for instance in instances:
                instance.terminate()
