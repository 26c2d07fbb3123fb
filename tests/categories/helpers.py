"""Helpers for tests that need categories (and an admin to create them)."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer, make_admin, register
from tests.support import INTERNAL_TOKEN, Platform

INTERNAL = {"X-Internal-Token": INTERNAL_TOKEN}


async def admin_headers(platform: Platform) -> dict[str, str]:
    return bearer(await make_admin(platform))


async def customer_headers(platform: Platform) -> dict[str, str]:
    return bearer(await register(platform.client))


async def create_category(
    platform: Platform, headers: dict[str, str], name: str, **fields: Any
) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/categories", json={"name": name, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
