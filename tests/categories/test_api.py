"""The categories contract of API.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.categories.helpers import INTERNAL, admin_headers, create_category, customer_headers
from tests.support import MakePlatform, Platform, with_fields


@dataclass(kw_only=True)
class Catalog(Platform):
    """Auth, categories and products with a signed-in admin."""

    admin: dict[str, str]


@pytest.fixture
async def catalog(make_platform: MakePlatform) -> AsyncIterator[Catalog]:
    async with make_platform("auth", "categories", "products") as platform:
        yield with_fields(platform, Catalog, admin=await admin_headers(platform))


async def test_create_derives_the_slug_and_reads_by_id_and_slug(catalog: Catalog) -> None:
    created = await create_category(
        catalog, catalog.admin, "  Café & Küche Ünique  ", description="Pots"
    )
    assert created["slug"] == "cafe-kuche-unique"
    assert created["name"] == "Café & Küche Ünique"
    assert set(created) == {
        "id",
        "name",
        "slug",
        "description",
        "parentId",
        "createdAt",
        "updatedAt",
    }
    assert created["parentId"] is None and created["description"] == "Pots"
    assert created["createdAt"].endswith("Z")
    by_id = await catalog.client.get(f"/v1/categories/{created['id']}")
    by_slug = await catalog.client.get("/v1/categories/cafe-kuche-unique")
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json() == created


async def test_given_slug_is_kept_and_validated(catalog: Catalog) -> None:
    created = await create_category(catalog, catalog.admin, "Shoes", slug="foot-wear-2")
    assert created["slug"] == "foot-wear-2"
    for slug in ("Foot-Wear", "foot--wear", "-foot", "foot-", "foot wear", "", "fööt", "a" * 201):
        response = await catalog.client.post(
            "/v1/categories", json={"name": "Shoes", "slug": slug}, headers=catalog.admin
        )
        assert response.status_code == 422, slug
        assert response.json()["errors"][0]["field"] == "slug"


async def test_duplicate_slug_is_409(catalog: Catalog) -> None:
    await create_category(catalog, catalog.admin, "Garden Tools")
    for body in ({"name": "garden tools"}, {"name": "Other", "slug": "garden-tools"}):
        response = await catalog.client.post("/v1/categories", json=body, headers=catalog.admin)
        assert response.status_code == 409
        assert response.json()["type"] == "urn:shopfleet:problem:slug-taken"
        assert response.headers["content-type"] == "application/problem+json"


BAD_BODIES: list[dict[str, Any]] = [
    {"name": "!!!"},  # no slug can be derived
    {"name": ""},
    {"name": "x" * 201},
    {"slug": "no-name"},
    {"name": "A", "parentId": "not-a-uuid"},
    {"name": "A", "parentId": str(uuid.uuid4())},  # unknown parent
    {"name": "A", "id": str(uuid.uuid4())},  # no mass assignment
    {"name": "A", "description": 5},
]


async def test_create_rejects_bad_input(catalog: Catalog) -> None:
    for body in BAD_BODIES:
        response = await catalog.client.post("/v1/categories", json=body, headers=catalog.admin)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"]
    assert (await catalog.client.get("/v1/categories")).json()["results"] == []


async def test_writes_need_an_admin(catalog: Catalog) -> None:
    category = await create_category(catalog, catalog.admin, "Toys")
    path = f"/v1/categories/{category['id']}"
    customer = await customer_headers(catalog)
    for headers, status in (({}, 401), (customer, 403)):
        assert (
            await catalog.client.post("/v1/categories", json={"name": "X"}, headers=headers)
        ).status_code == status
        assert (
            await catalog.client.patch(path, json={"name": "Y"}, headers=headers)
        ).status_code == status
        assert (await catalog.client.delete(path, headers=headers)).status_code == status
    anonymous = await catalog.client.post("/v1/categories", json={"name": "X"})
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert (await catalog.client.get(path)).json()["name"] == "Toys"


async def test_list_pages_by_name_and_filters_by_parent(catalog: Catalog) -> None:
    home = await create_category(catalog, catalog.admin, "Home")
    toys = await create_category(catalog, catalog.admin, "Toys")
    lamps = await create_category(catalog, catalog.admin, "Lamps", parentId=home["id"])
    beds = await create_category(catalog, catalog.admin, "Beds", parentId=home["id"])
    everything = (await catalog.client.get("/v1/categories")).json()
    assert [c["name"] for c in everything["results"]] == ["Beds", "Home", "Lamps", "Toys"]
    assert everything["pagination"] == {
        "page": 1,
        "limit": 20,
        "total": 4,
        "pages": 1,
        "nextCursor": None,
    }
    second = (await catalog.client.get("/v1/categories", params={"page": 2, "limit": 3})).json()
    assert [c["id"] for c in second["results"]] == [toys["id"]]
    assert second["pagination"]["pages"] == 2
    children = await catalog.client.get("/v1/categories", params={"parentId": home["id"]})
    assert [c["id"] for c in children.json()["results"]] == [beds["id"], lamps["id"]]
    roots = await catalog.client.get("/v1/categories", params={"parentId": "root"})
    assert [c["id"] for c in roots.json()["results"]] == [home["id"], toys["id"]]
    none = await catalog.client.get("/v1/categories", params={"parentId": str(uuid.uuid4())})
    assert none.json()["results"] == [] and none.json()["pagination"]["total"] == 0


async def test_list_rejects_bad_query(catalog: Catalog) -> None:
    for params in ({"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}, {"parentId": "nope"}):
        response = await catalog.client.get("/v1/categories", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_and_malformed_ids_are_404(catalog: Catalog) -> None:
    for key in (str(uuid.uuid4()), "no-such-slug", "Not A Slug!", "x" * 300):
        assert (await catalog.client.get(f"/v1/categories/{key}")).status_code == 404
    for key in (str(uuid.uuid4()), "not-a-uuid"):
        path = f"/v1/categories/{key}"
        patch = await catalog.client.patch(path, json={"name": "X"}, headers=catalog.admin)
        assert patch.status_code == 404
        assert (await catalog.client.delete(path, headers=catalog.admin)).status_code == 404


async def test_update_changes_fields_and_keeps_the_slug(catalog: Catalog) -> None:
    parent = await create_category(catalog, catalog.admin, "Outdoor")
    category = await create_category(catalog, catalog.admin, "Tents", description="Camping")
    path = f"/v1/categories/{category['id']}"
    renamed = await catalog.client.patch(
        path,
        json={"name": "Tents & Tarps", "description": None, "parentId": parent["id"]},
        headers=catalog.admin,
    )
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert body["name"] == "Tents & Tarps" and body["slug"] == "tents"
    assert body["description"] is None and body["parentId"] == parent["id"]
    assert body["updatedAt"] > category["updatedAt"]
    reslugged = await catalog.client.patch(
        path, json={"slug": "tents-tarps", "parentId": None}, headers=catalog.admin
    )
    assert reslugged.json()["slug"] == "tents-tarps" and reslugged.json()["parentId"] is None
    taken = await catalog.client.patch(path, json={"slug": "outdoor"}, headers=catalog.admin)
    assert taken.status_code == 409
    for body in ({"name": None}, {"slug": None}, {"slug": "Bad Slug"}, {"role": "x"}):
        response = await catalog.client.patch(path, json=body, headers=catalog.admin)
        assert response.status_code == 422, body
    unknown_parent = await catalog.client.patch(
        path, json={"parentId": str(uuid.uuid4())}, headers=catalog.admin
    )
    assert unknown_parent.status_code == 422
    assert unknown_parent.json()["errors"][0]["field"] == "parentId"


async def test_a_category_cannot_become_its_own_ancestor(catalog: Catalog) -> None:
    top = await create_category(catalog, catalog.admin, "Top")
    middle = await create_category(catalog, catalog.admin, "Middle", parentId=top["id"])
    bottom = await create_category(catalog, catalog.admin, "Bottom", parentId=middle["id"])
    for parent in (top, middle, bottom):
        response = await catalog.client.patch(
            f"/v1/categories/{top['id']}", json={"parentId": parent["id"]}, headers=catalog.admin
        )
        assert response.status_code == 422, parent["name"]
        assert response.json()["errors"][0]["field"] == "parentId"
    # Moving a leaf elsewhere in the tree is fine.
    moved = await catalog.client.patch(
        f"/v1/categories/{bottom['id']}", json={"parentId": top["id"]}, headers=catalog.admin
    )
    assert moved.status_code == 200 and moved.json()["parentId"] == top["id"]


async def test_delete_refuses_categories_in_use(catalog: Catalog) -> None:
    parent = await create_category(catalog, catalog.admin, "Kitchen")
    child = await create_category(catalog, catalog.admin, "Knives", parentId=parent["id"])
    product = await catalog.client.post(
        "/v1/products",
        json={
            "sku": "KN-1",
            "name": "Chef Knife",
            "price": 30,
            "categoryId": child["id"],
            "stock": 1,
        },
        headers=catalog.admin,
    )
    assert product.status_code == 201
    with_child = await catalog.client.delete(
        f"/v1/categories/{parent['id']}", headers=catalog.admin
    )
    assert with_child.status_code == 409
    assert with_child.json()["type"] == "urn:shopfleet:problem:category-in-use"
    with_product = await catalog.client.delete(
        f"/v1/categories/{child['id']}", headers=catalog.admin
    )
    assert with_product.status_code == 409
    assert "product" in with_product.json()["detail"]
    removed = await catalog.client.delete(
        f"/v1/products/{product.json()['id']}", headers=catalog.admin
    )
    assert removed.status_code == 204
    for category in (child, parent):
        deleted = await catalog.client.delete(
            f"/v1/categories/{category['id']}", headers=catalog.admin
        )
        assert deleted.status_code == 204
        assert (await catalog.client.get(f"/v1/categories/{category['id']}")).status_code == 404


async def test_delete_without_products_service_is_503_and_deletes_nothing(
    make_platform: MakePlatform,
) -> None:
    async with make_platform("auth", "categories") as platform:
        admin = await admin_headers(platform)
        category = await create_category(platform, admin, "Orphans")
        response = await platform.client.delete(f"/v1/categories/{category['id']}", headers=admin)
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert (await platform.client.get(f"/v1/categories/{category['id']}")).status_code == 200


async def test_internal_lookup_by_id_or_slug_needs_the_credential(catalog: Catalog) -> None:
    category = await create_category(catalog, catalog.admin, "Books")
    for key in (category["id"], "books"):
        path = f"/internal/categories/categories/{key}"
        assert (await catalog.client.get(path)).status_code == 401
        found = await catalog.client.get(path, headers=INTERNAL)
        assert found.status_code == 200 and found.json() == category
    missing = await catalog.client.get("/internal/categories/categories/no-such", headers=INTERNAL)
    assert missing.status_code == 404


async def test_internal_routes_stay_out_of_the_schema(catalog: Catalog) -> None:
    async with catalog.instance_client("categories") as client:
        schema = (await client.get("/openapi.json")).json()
    assert "/v1/categories/{id_or_slug}" in schema["paths"]
    assert not [path for path in schema["paths"] if path.startswith("/internal")]
