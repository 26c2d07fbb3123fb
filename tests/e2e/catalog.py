"""A small shop on a running local platform: an admin, a customer, a category, a product."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.localrun import LocalRun

PASSWORD = "correct-horse-1"
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}


@dataclass
class Catalog:
    admin: dict[str, str]
    customer: dict[str, str]
    category: dict[str, Any]
    product: dict[str, Any]


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


async def open_catalog(run: LocalRun, client: httpx.AsyncClient, *, stock: int) -> Catalog:
    """An admin made with the operator CLI, a registered customer, a category, a product."""
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    run.cli("create-admin", "--email", admin_email, "--password-stdin", stdin=PASSWORD)
    admin = await login(client, admin_email)
    email = f"customer-{uuid.uuid4().hex[:8]}@example.com"
    registered = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Cus"}
    )
    assert registered.status_code == 201, registered.text
    customer = {"Authorization": f"Bearer {registered.json()['accessToken']}"}
    category = await client.post(
        "/v1/categories", json={"name": f"Books {uuid.uuid4().hex[:6]}"}, headers=admin
    )
    assert category.status_code == 201, category.text
    product = await client.post(
        "/v1/products",
        json={
            "sku": f"BK-{uuid.uuid4().hex[:8]}",
            "name": "A book",
            "price": 12.5,
            "categoryId": category.json()["id"],
            "stock": stock,
        },
        headers=admin,
    )
    assert product.status_code == 201, product.text
    return Catalog(admin, customer, category.json(), product.json())
