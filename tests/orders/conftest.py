"""A shop for orders tests: auth, categories, products and orders in-process, seeded by an admin."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_admin, register
from tests.support import INTERNAL_TOKEN, Platform

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}
INTERNAL = {"X-Internal-Token": INTERNAL_TOKEN}
RESERVE_PATH = "/internal/products/reservations"


@dataclass
class Shop:
    platform: Platform
    admin: dict[str, str]
    category_id: str

    @property
    def client(self) -> httpx.AsyncClient:
        return self.platform.client

    async def product(self, *, price: float | str = 19.99, stock: int = 10) -> str:
        """Create a product through the admin API; return its id."""
        sku = f"SKU-{uuid.uuid4().hex[:10]}"
        response = await self.client.post(
            "/v1/products",
            json={
                "sku": sku,
                "name": f"Product {sku}",
                "price": price,
                "categoryId": self.category_id,
                "stock": stock,
            },
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        product_id: str = response.json()["id"]
        return product_id

    async def customer(self) -> dict[str, str]:
        return bearer(await register(self.client))

    async def stock(self, product_id: str) -> int:
        """Current stock, read from products' uncached internal lookup."""
        response = await self.client.post(
            "/internal/products/lookup", json={"ids": [product_id]}, headers=INTERNAL
        )
        assert response.status_code == 200, response.text
        stock: int = response.json()["products"][0]["stock"]
        return stock

    async def reservation(self, order_id: str) -> dict[str, Any] | None:
        response = await self.client.get(f"{RESERVE_PATH}/{order_id}", headers=INTERNAL)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def order(
        self,
        headers: dict[str, str],
        items: list[tuple[str, int]],
        *,
        key: str | None = None,
        address: dict[str, Any] | None = None,
    ) -> httpx.Response:
        body = {
            "items": [{"productId": p, "quantity": q} for p, q in items],
            "shippingAddress": address or ADDRESS,
        }
        extra = {"Idempotency-Key": key} if key is not None else {}
        return await self.client.post("/v1/orders", json=body, headers={**headers, **extra})


@contextlib.asynccontextmanager
async def open_shop(make_platform: Any, **overrides: Any) -> AsyncIterator[Shop]:
    async with make_platform("auth", "categories", "products", "orders", **overrides) as platform:
        admin = bearer(await make_admin(platform))
        response = await platform.client.post(
            "/v1/categories", json={"name": f"Widgets {uuid.uuid4().hex[:6]}"}, headers=admin
        )
        assert response.status_code == 201, response.text
        yield Shop(platform=platform, admin=admin, category_id=response.json()["id"])


@pytest.fixture
async def shop(make_platform: Any) -> AsyncIterator[Shop]:
    async with open_shop(make_platform) as opened:
        yield opened


class ReservationFault(httpx.AsyncBaseTransport):
    """Breaks the network on the way to products' reserve endpoint, like a crash would.

    `lose="request"`: products never sees the call. `lose="response"`: products handles
    it (stock is reserved) but the answer never comes back.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, lose: str, times: int) -> None:
        self.inner = inner
        self.lose = lose
        self.remaining = times
        self.broken_calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hit = request.method == "POST" and request.url.path == RESERVE_PATH
        if not hit or self.remaining <= 0:
            return await self.inner.handle_async_request(request)
        self.remaining -= 1
        self.broken_calls += 1
        if self.lose == "response":
            response = await self.inner.handle_async_request(request)
            await response.aread()
        raise httpx.ConnectError("injected fault")


@contextlib.contextmanager
def reservation_fault(shop: Shop, *, lose: str, times: int = 3) -> Any:
    """Install a ReservationFault in front of products for the block."""
    mesh = shop.platform.mesh
    original = mesh.apps["products"]
    fault = ReservationFault(original, lose=lose, times=times)
    mesh.apps["products"] = fault
    try:
        yield fault
    finally:
        mesh.apps["products"] = original
