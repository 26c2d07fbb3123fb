"""The users contract of API.md, on SQLite and PostgreSQL, with users calling auth via the mesh."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr
from sqlalchemy import event

from tests.conftest import bearer, make_admin, register, unique_email
from tests.support import MakePlatform, Platform

PROFILE_KEYS = {
    "id",
    "email",
    "name",
    "role",
    "active",
    "createdAt",
    "updatedAt",
    "phone",
    "addresses",
}
HOME = {
    "label": "Home",
    "line1": "1 Main Street",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "de",
}
WORK = {
    "label": "Work",
    "line1": "2 Side Road",
    "line2": "Floor 3",
    "city": "Paris",
    "postalCode": "75001",
    "country": "FR",
}


@pytest.fixture
async def platform(make_platform: MakePlatform) -> AsyncIterator[Platform]:
    async with make_platform("auth", "users") as running:
        yield running


def _role_claim(tokens: dict[str, Any]) -> str:
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    return str(claims["role"])


def _instant(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


async def test_me_without_a_profile_row_has_no_phone_and_no_addresses(platform: Platform) -> None:
    tokens = await register(platform.client, name="Ann")
    response = await platform.client.get("/v1/users/me", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    profile = response.json()
    assert set(profile) == PROFILE_KEYS
    user = tokens["user"]
    assert {k: profile[k] for k in user} == user
    assert profile["phone"] is None and profile["addresses"] == []


async def test_patch_me_changes_name_phone_and_addresses(platform: Platform) -> None:
    tokens = await register(platform.client, name="Ann")
    before = (await platform.client.get("/v1/users/me", headers=bearer(tokens))).json()
    response = await platform.client.patch(
        "/v1/users/me",
        headers=bearer(tokens),
        json={"name": " Ann Lee ", "phone": "+49 30 1234567", "addresses": [HOME, WORK]},
    )
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["name"] == "Ann Lee"
    assert profile["phone"] == "+49 30 1234567"
    assert profile["addresses"] == [{**HOME, "line2": None, "country": "DE"}, WORK]
    assert _instant(profile["updatedAt"]) > _instant(before["updatedAt"])
    assert profile["createdAt"] == before["createdAt"]
    # The name lives in auth: auth itself now says so.
    account = (await platform.client.get("/v1/auth/me", headers=bearer(tokens))).json()
    assert account["name"] == "Ann Lee"
    # A partial patch keeps the other fields; null clears the phone, [] the addresses.
    phone_only = await platform.client.patch(
        "/v1/users/me", headers=bearer(tokens), json={"phone": "(030) 555-0100"}
    )
    assert phone_only.json()["phone"] == "(030) 555-0100"
    assert phone_only.json()["addresses"] == profile["addresses"]
    cleared = await platform.client.patch(
        "/v1/users/me", headers=bearer(tokens), json={"phone": None, "addresses": []}
    )
    assert cleared.status_code == 200
    again = (await platform.client.get("/v1/users/me", headers=bearer(tokens))).json()
    assert again["phone"] is None and again["addresses"] == [] and again["name"] == "Ann Lee"
    empty = await platform.client.patch("/v1/users/me", headers=bearer(tokens), json={})
    assert empty.status_code == 200 and empty.json() == again


async def test_patch_me_rejects_unknown_fields_and_bad_values(platform: Platform) -> None:
    tokens = await register(platform.client, name="Ann")
    bad_bodies: list[tuple[dict[str, Any], str]] = [
        ({"role": "admin"}, "role"),
        ({"active": False}, "active"),
        ({"email": "new@example.com"}, "email"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"phone": "call me maybe"}, "phone"),
        ({"phone": "123"}, "phone"),
        ({"phone": "+" + "1" * 40}, "phone"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"addresses": None}, "addresses"),
        ({"addresses": [HOME] * 11}, "addresses"),
        ({"addresses": [{**HOME, "country": "XX"}]}, "addresses[0].country"),
        ({"addresses": [{**HOME, "country": "DEU"}]}, "addresses[0].country"),
        ({"addresses": [{k: v for k, v in HOME.items() if k != "line1"}]}, "addresses[0].line1"),
        ({"addresses": [{**HOME, "city": "x" * 101}]}, "addresses[0].city"),
        ({"addresses": [{**HOME, "userId": "someone"}]}, "addresses[0].userId"),
        ({"addresses": "Main Street"}, "addresses"),
    ]
    for body, field in bad_bodies:
        response = await platform.client.patch("/v1/users/me", headers=bearer(tokens), json=body)
        problem = _assert_problem(response, 422)
        assert field in [error["field"] for error in problem["errors"]], (body, problem)
    profile = (await platform.client.get("/v1/users/me", headers=bearer(tokens))).json()
    assert profile["role"] == "customer" and profile["active"] is True
    assert profile["name"] == "Ann" and profile["phone"] is None and profile["addresses"] == []
    not_json = await platform.client.patch(
        "/v1/users/me",
        headers={**bearer(tokens), "content-type": "application/json"},
        content=b"{nope",
    )
    _assert_problem(not_json, 400)


async def test_concurrent_first_writes_to_one_profile_all_succeed(platform: Platform) -> None:
    tokens = await register(platform.client)
    phones = [f"+49301234{n:02d}" for n in range(6)]
    responses = await asyncio.gather(
        *(
            platform.client.patch("/v1/users/me", headers=bearer(tokens), json={"phone": p})
            for p in phones
        )
    )
    assert [r.status_code for r in responses] == [200] * len(phones)
    final = (await platform.client.get("/v1/users/me", headers=bearer(tokens))).json()
    assert final["phone"] in phones


async def test_routes_without_a_token_are_401(platform: Platform) -> None:
    some_id = str(uuid.uuid4())
    calls = [
        ("GET", "/v1/users/me", None),
        ("PATCH", "/v1/users/me", {"phone": "+4930123456"}),
        ("GET", "/v1/users", None),
        ("GET", f"/v1/users/{some_id}", None),
        ("PATCH", f"/v1/users/{some_id}", {"role": "admin"}),
        ("DELETE", f"/v1/users/{some_id}", None),
    ]
    for method, path, body in calls:
        response = await platform.client.request(method, path, json=body)
        _assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    garbage = await platform.client.get(
        "/v1/users/me", headers={"Authorization": "Bearer not-a-token"}
    )
    _assert_problem(garbage, 401)


async def test_customer_on_admin_routes_is_403(platform: Platform) -> None:
    customer = await register(platform.client)
    other = await register(platform.client)
    own_id, other_id = customer["user"]["id"], other["user"]["id"]
    calls = [
        ("GET", "/v1/users", None),
        ("GET", "/v1/users?role=admin", None),
        ("PATCH", f"/v1/users/{other_id}", {"name": "Hacked"}),
        ("PATCH", f"/v1/users/{own_id}", {"role": "admin"}),
        ("DELETE", f"/v1/users/{other_id}", None),
        ("DELETE", f"/v1/users/{own_id}", None),
    ]
    for method, path, body in calls:
        response = await platform.client.request(method, path, json=body, headers=bearer(customer))
        _assert_problem(response, 403)
    me = (await platform.client.get("/v1/users/me", headers=bearer(customer))).json()
    assert me["role"] == "customer"
    victim = (await platform.client.get("/v1/users/me", headers=bearer(other))).json()
    assert victim["active"] is True and victim["name"] == "Test User"


async def test_profile_by_id_is_for_that_user_or_an_admin(platform: Platform) -> None:
    ann = await register(platform.client)
    bob = await register(platform.client)
    admin = await make_admin(platform)
    own = await platform.client.get(f"/v1/users/{ann['user']['id']}", headers=bearer(ann))
    assert own.status_code == 200 and own.json()["email"] == ann["user"]["email"]
    # Someone else's profile looks exactly like a missing one.
    other = await platform.client.get(f"/v1/users/{bob['user']['id']}", headers=bearer(ann))
    missing = await platform.client.get(f"/v1/users/{uuid.uuid4()}", headers=bearer(ann))
    assert _assert_problem(other, 404)["detail"] == _assert_problem(missing, 404)["detail"]
    by_admin = await platform.client.get(f"/v1/users/{bob['user']['id']}", headers=bearer(admin))
    assert by_admin.status_code == 200 and by_admin.json()["id"] == bob["user"]["id"]
    assert set(by_admin.json()) == PROFILE_KEYS
    upper = await platform.client.get(
        f"/v1/users/{bob['user']['id'].upper()}", headers=bearer(admin)
    )
    assert upper.status_code == 200 and upper.json()["id"] == bob["user"]["id"]
    # Ids are opaque: a malformed one is a 404 on every /{id} route, like an unknown one.
    for response in (
        await platform.client.get(f"/v1/users/{uuid.uuid4()}", headers=bearer(admin)),
        await platform.client.get("/v1/users/not-a-uuid", headers=bearer(admin)),
        await platform.client.get("/v1/users/not-a-uuid", headers=bearer(ann)),
        await platform.client.patch(
            "/v1/users/not-a-uuid", headers=bearer(admin), json={"name": "X"}
        ),
        await platform.client.patch(
            f"/v1/users/{uuid.uuid4()}", headers=bearer(admin), json={"phone": "+4930123456"}
        ),
        await platform.client.delete("/v1/users/not-a-uuid", headers=bearer(admin)),
        await platform.client.delete(f"/v1/users/{uuid.uuid4()}", headers=bearer(admin)),
    ):
        _assert_problem(response, 404)


async def test_admin_list_filters_and_paginates(platform: Platform) -> None:
    admin = await make_admin(platform, email=unique_email("boss"))
    ann = await register(platform.client, email=unique_email("ann"))
    bob = await register(platform.client, email=unique_email("bob"))
    cid = await register(platform.client, email=unique_email("cid"))
    await platform.client.patch(
        "/v1/users/me", headers=bearer(bob), json={"phone": "+4930123456", "addresses": [WORK]}
    )
    deleted = await platform.client.delete(f"/v1/users/{cid['user']['id']}", headers=bearer(admin))
    assert deleted.status_code == 204

    async def ids(query: str) -> tuple[list[str], dict[str, Any]]:
        response = await platform.client.get(f"/v1/users{query}", headers=bearer(admin))
        assert response.status_code == 200, response.text
        body = response.json()
        assert all(set(profile) == PROFILE_KEYS for profile in body["results"])
        return [profile["id"] for profile in body["results"]], body["pagination"]

    everyone, pagination = await ids("")
    newest_first = [cid, bob, ann, admin]
    assert everyone == [t["user"]["id"] for t in newest_first]
    assert pagination == {"page": 1, "limit": 20, "total": 4, "pages": 1, "nextCursor": None}
    listed = (await platform.client.get("/v1/users", headers=bearer(admin))).json()["results"]
    bob_row = next(p for p in listed if p["id"] == bob["user"]["id"])
    assert bob_row["phone"] == "+4930123456" and bob_row["addresses"] == [WORK]
    ann_row = next(p for p in listed if p["id"] == ann["user"]["id"])
    assert ann_row["phone"] is None and ann_row["addresses"] == []

    assert (await ids("?email=BOB-"))[0] == [bob["user"]["id"]]
    assert (await ids("?email=example.com"))[1]["total"] == 4
    assert (await ids("?email=nobody-here"))[0] == []
    assert (await ids("?role=admin"))[0] == [admin["user"]["id"]]
    assert (await ids("?role=customer"))[1]["total"] == 3
    assert (await ids("?active=false"))[0] == [cid["user"]["id"]]
    assert (await ids("?active=true&role=customer"))[0] == [bob["user"]["id"], ann["user"]["id"]]

    first, first_page = await ids("?limit=3")
    second, second_page = await ids("?limit=3&page=2")
    assert first_page == {"page": 1, "limit": 3, "total": 4, "pages": 2, "nextCursor": None}
    assert second_page["page"] == 2 and len(first) == 3 and len(second) == 1
    assert first + second == everyone
    beyond, _ = await ids("?limit=3&page=3")
    assert beyond == []


async def test_admin_list_rejects_bad_query_parameters(platform: Platform) -> None:
    admin = await make_admin(platform)
    for query in (
        "page=0",
        "page=-1",
        "page=abc",
        "limit=0",
        "limit=101",
        "limit=abc",
        "role=boss",
        "active=maybe",
        "email=" + "a" * 321,
    ):
        response = await platform.client.get(f"/v1/users?{query}", headers=bearer(admin))
        problem = _assert_problem(response, 422)
        assert problem["errors"][0]["field"] == query.split("=")[0], query


async def test_admin_list_loads_the_pages_profiles_in_one_query(platform: Platform) -> None:
    admin = await make_admin(platform)
    for _ in range(3):
        tokens = await register(platform.client)
        await platform.client.patch(
            "/v1/users/me", headers=bearer(tokens), json={"phone": "+4930123456"}
        )
    statements: list[str] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        statements.append(statement)

    engine = platform.resources("users").engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = await platform.client.get("/v1/users", headers=bearer(admin))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200
    assert [p["phone"] for p in response.json()["results"]].count("+4930123456") == 3
    profile_queries = [s for s in statements if "profiles" in s]
    assert len(profile_queries) == 1, profile_queries


async def test_admin_patch_changes_account_and_profile_fields(platform: Platform) -> None:
    admin = await make_admin(platform)
    ann = await register(platform.client, name="Ann")
    path = f"/v1/users/{ann['user']['id']}"
    response = await platform.client.patch(
        path,
        headers=bearer(admin),
        json={"name": "Ann B", "phone": "+33 1 23 45 67 89", "addresses": [WORK]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Ann B" and response.json()["addresses"] == [WORK]
    seen_by_ann = (await platform.client.get("/v1/users/me", headers=bearer(ann))).json()
    assert seen_by_ann == response.json()
    for body in (
        {"role": "root"},
        {"active": "sometimes"},
        {"role": None},
        {"email": "new@example.com"},
        {"id": str(uuid.uuid4())},
        {"password": "new-password-1"},
        {"phone": "not a phone"},
    ):
        _assert_problem(await platform.client.patch(path, headers=bearer(admin), json=body), 422)
    unchanged = (await platform.client.get("/v1/users/me", headers=bearer(ann))).json()
    assert unchanged == seen_by_ann


async def test_role_change_reaches_the_token_at_the_next_refresh(platform: Platform) -> None:
    admin = await make_admin(platform)
    ann = await register(platform.client)
    promoted = await platform.client.patch(
        f"/v1/users/{ann['user']['id']}", headers=bearer(admin), json={"role": "admin"}
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    # The access token already issued keeps its role until it is refreshed.
    assert _role_claim(ann) == "customer"
    assert (await platform.client.get("/v1/users", headers=bearer(ann))).status_code == 403
    refreshed = await platform.client.post(
        "/v1/auth/refresh", json={"refreshToken": ann["refreshToken"]}
    )
    assert refreshed.status_code == 200
    assert _role_claim(refreshed.json()) == "admin"
    assert (
        await platform.client.get("/v1/users", headers=bearer(refreshed.json()))
    ).status_code == 200
    demoted = await platform.client.patch(
        f"/v1/users/{ann['user']['id']}", headers=bearer(admin), json={"role": "customer"}
    )
    assert demoted.json()["role"] == "customer"
    login = await platform.client.post(
        "/v1/auth/login", json={"email": ann["user"]["email"], "password": "correct-horse-1"}
    )
    assert _role_claim(login.json()) == "customer"


async def test_delete_deactivates_the_account(platform: Platform) -> None:
    admin = await make_admin(platform)
    ann = await register(platform.client)
    path = f"/v1/users/{ann['user']['id']}"
    response = await platform.client.delete(path, headers=bearer(admin))
    assert response.status_code == 204 and response.content == b""
    credentials = {"email": ann["user"]["email"], "password": "correct-horse-1"}
    _assert_problem(await platform.client.post("/v1/auth/login", json=credentials), 403)
    refresh = await platform.client.post(
        "/v1/auth/refresh", json={"refreshToken": ann["refreshToken"]}
    )
    assert refresh.status_code in (401, 403)
    profile = (await platform.client.get(path, headers=bearer(admin))).json()
    assert profile["active"] is False
    # The access token still lives for a while, but it may no longer change anything.
    _assert_problem(
        await platform.client.patch("/v1/users/me", headers=bearer(ann), json={"name": "Zed"}),
        403,
    )
    assert (await platform.client.delete(path, headers=bearer(admin))).status_code == 204
    # An admin can bring the account back.
    revived = await platform.client.patch(path, headers=bearer(admin), json={"active": True})
    assert revived.status_code == 200 and revived.json()["active"] is True
    assert (await platform.client.post("/v1/auth/login", json=credentials)).status_code == 200


async def test_admin_cannot_deactivate_or_demote_themselves(platform: Platform) -> None:
    admin = await make_admin(platform)
    path = f"/v1/users/{admin['user']['id']}"
    _assert_problem(await platform.client.delete(path, headers=bearer(admin)), 409)
    for body in ({"active": False}, {"role": "customer"}, {"name": "Me", "active": False}):
        _assert_problem(await platform.client.patch(path, headers=bearer(admin), json=body), 409)
    me = (await platform.client.get("/v1/users/me", headers=bearer(admin))).json()
    assert me["role"] == "admin" and me["active"] is True and me["name"] != "Me"
    harmless = await platform.client.patch(
        path, headers=bearer(admin), json={"active": True, "role": "admin", "name": "Boss"}
    )
    assert harmless.status_code == 200 and harmless.json()["name"] == "Boss"


class _Unreachable(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def test_auth_unreachable_is_503_never_500(platform: Platform) -> None:
    admin = await make_admin(platform)
    ann = await register(platform.client, name="Ann")
    mesh = platform.mesh
    calls = [
        ("GET", "/v1/users/me", None, ann),
        ("PATCH", "/v1/users/me", {"phone": "+4930123456"}, ann),
        ("PATCH", "/v1/users/me", {"name": "Zed"}, ann),
        ("GET", "/v1/users", None, admin),
        ("GET", f"/v1/users/{ann['user']['id']}", None, admin),
        ("PATCH", f"/v1/users/{ann['user']['id']}", {"role": "admin"}, admin),
        ("DELETE", f"/v1/users/{ann['user']['id']}", None, admin),
    ]
    auth_route = mesh.apps.pop("auth")  # the gateway has no auth upstream: 502
    try:
        for method, path, body, tokens in calls:
            response = await platform.client.request(
                method, path, json=body, headers=bearer(tokens)
            )
            _assert_problem(response, 503)
            assert int(response.headers["retry-after"]) >= 1
        mesh.apps["auth"] = _Unreachable()  # connection refused
        for method, path, body, tokens in calls:
            response = await platform.client.request(
                method, path, json=body, headers=bearer(tokens)
            )
            _assert_problem(response, 503)
    finally:
        mesh.apps["auth"] = auth_route
    # Nothing was written while auth was away.
    platform.resources("users").http.breakers.clear()
    profile = (await platform.client.get("/v1/users/me", headers=bearer(ann))).json()
    assert profile["phone"] is None and profile["name"] == "Ann"
    assert profile["role"] == "customer" and profile["active"] is True


async def test_auth_refusing_our_credential_is_503_not_our_clients_fault(
    make_platform: MakePlatform,
) -> None:
    async with make_platform("auth", "users", users={"internal_token": SecretStr("wrong")}) as p:
        tokens = await register(p.client)
        response = await p.client.get("/v1/users/me", headers=bearer(tokens))
        assert "auth" in _assert_problem(response, 503)["detail"]


async def test_openapi_documents_the_public_routes_only(platform: Platform) -> None:
    async with platform.instance_client("users") as client:
        schema = (await client.get("/openapi.json")).json()
    assert set(schema["paths"]) == {"/v1/users/me", "/v1/users", "/v1/users/{user_id}"}
    assert set(schema["paths"]["/v1/users/{user_id}"]) == {"get", "patch", "delete"}
    profile = schema["components"]["schemas"]["ProfilePublic"]
    assert set(profile["properties"]) == PROFILE_KEYS
