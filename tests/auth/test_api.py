"""The auth contract of API.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from tests.conftest import bearer, register, unique_email
from tests.support import PRIVATE_PEM, MakePlatform, Platform


@pytest.fixture
async def auth(make_platform: MakePlatform) -> AsyncIterator[Platform]:
    async with make_platform("auth") as platform:
        yield platform


async def test_register_returns_user_and_tokens(auth: Platform) -> None:
    email = unique_email().upper()
    body = await register(auth.client, email=email, name="  Ann  ")
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 900
    user = body["user"]
    assert user["email"] == email.lower()
    assert user["name"] == "Ann"
    assert user["role"] == "customer" and user["active"] is True
    assert set(user) == {"id", "email", "name", "role", "active", "createdAt", "updatedAt"}
    assert user["createdAt"].endswith("Z")
    me = await auth.client.get("/v1/auth/me", headers=bearer(body))
    assert me.status_code == 200 and me.json()["id"] == user["id"]


async def test_email_is_unique_case_insensitively(auth: Platform) -> None:
    email = unique_email()
    await register(auth.client, email=email)
    again = await auth.client.post(
        "/v1/auth/register",
        json={"email": email.upper(), "password": "another-pass-1", "name": "B"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "long-enough-1", "name": "A"},
        {"email": "a@example.com", "password": "short", "name": "A"},
        {"email": "a@example.com", "password": "x" * 129, "name": "A"},
        {"email": "a@example.com", "password": "long-enough-1", "name": ""},
        {"email": "a@example.com", "password": "long-enough-1"},
        {"email": "a@example.com", "password": "long-enough-1", "name": "A", "role": "admin"},
        {"email": "a@example.com", "password": 12345678, "name": "A"},
    ],
)
async def test_register_rejects_bad_input(auth: Platform, body: dict[str, Any]) -> None:
    response = await auth.client.post("/v1/auth/register", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422 and problem["errors"]
    assert all({"field", "message"} <= set(e) for e in problem["errors"])


async def test_malformed_wrong_type_and_oversize_bodies(auth: Platform) -> None:
    bad_json = await auth.client.post(
        "/v1/auth/login", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    array = await auth.client.post("/v1/auth/login", json=[1, 2])
    assert array.status_code in (400, 422)
    wrong_type = await auth.client.post(
        "/v1/auth/login", content=b"email=a", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    huge = await auth.client.post(
        "/v1/auth/register",
        content=b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    for response in (bad_json, wrong_type, huge):
        assert response.headers["content-type"] == "application/problem+json"


async def test_login_is_generic_for_unknown_email_and_wrong_password(auth: Platform) -> None:
    email = unique_email()
    await register(auth.client, email=email)
    wrong = await auth.client.post("/v1/auth/login", json={"email": email, "password": "nope-nope"})
    unknown = await auth.client.post(
        "/v1/auth/login", json={"email": unique_email(), "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert "Bearer" in wrong.headers["www-authenticate"]
    ok = await auth.client.post(
        "/v1/auth/login", json={"email": email.upper(), "password": "correct-horse-1"}
    )
    assert ok.status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_session(auth: Platform) -> None:
    first = await register(auth.client)
    second = await auth.client.post(
        "/v1/auth/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert second.status_code == 200
    pair = second.json()
    assert pair["refreshToken"] != first["refreshToken"]
    reuse = await auth.client.post("/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401
    # The reuse revoked the whole session: the newest token is dead too.
    newest = await auth.client.post("/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert newest.status_code == 401


async def test_logout_ends_the_session(auth: Platform) -> None:
    tokens = await register(auth.client)
    out = await auth.client.post("/v1/auth/logout", json={"refreshToken": tokens["refreshToken"]})
    assert out.status_code == 204
    again = await auth.client.post(
        "/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert again.status_code == 401


async def test_idle_session_expires(make_platform: MakePlatform) -> None:
    async with make_platform("auth", auth={"session_idle_timeout": 60}) as platform:
        tokens = await register(platform.client)
        from sqlalchemy import update

        from shopfleet.auth.models import Session
        from shopfleet.common.database import utcnow

        async with platform.resources("auth").sessionmaker() as db:
            await db.execute(update(Session).values(expires_at=utcnow()))
            await db.commit()
        response = await platform.client.post(
            "/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert response.status_code == 401


def _forge(
    claims: dict[str, object], *, key: str = PRIVATE_PEM, headers: dict[str, str] | None = None
) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


async def test_bad_tokens_are_401(auth: Platform) -> None:
    tokens = await register(auth.client)
    kid = jwt.get_unverified_header(tokens["accessToken"])["kid"]
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    now = int(time.time())
    expired = _forge({**claims, "iat": now - 3600, "exp": now - 60}, headers={"kid": kid})
    wrong_aud = _forge({**claims, "aud": "someone-else"}, headers={"kid": kid})
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other_key = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    forged = _forge({**claims, "role": "admin"}, key=other_key, headers={"kid": kid})
    alg_none = jwt.encode({**claims}, None, algorithm="none", headers={"kid": kid})  # type: ignore[arg-type]
    hs256 = jwt.encode(
        claims, "secret-key-that-is-long-enough-32b", algorithm="HS256", headers={"kid": kid}
    )
    for token in (expired, wrong_aud, forged, alg_none, hs256, "garbage", tokens["refreshToken"]):
        response = await auth.client.get(
            "/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith("Bearer")
    basic = await auth.client.get("/v1/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    missing = await auth.client.get("/v1/auth/me")
    assert missing.status_code == 401


async def test_access_token_claims(auth: Platform) -> None:
    tokens = await register(auth.client)
    header = jwt.get_unverified_header(tokens["accessToken"])
    assert header["alg"] == "EdDSA" and header["kid"]
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert {"iss", "aud", "sub", "role", "iat", "exp", "jti"} <= set(claims)
    assert claims["sub"] == tokens["user"]["id"]
    assert claims["exp"] - claims["iat"] == 900


async def test_jwks_verifies_tokens(auth: Platform) -> None:
    tokens = await register(auth.client)
    jwks = (await auth.client.get("/v1/auth/.well-known/jwks.json")).json()
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(tokens["accessToken"], key.key, algorithms=["EdDSA"], audience="shopfleet")
    assert claims["sub"] == tokens["user"]["id"]
    assert "d" not in jwks["keys"][0]  # never the private part


async def test_internal_routes_need_the_credential(auth: Platform) -> None:
    tokens = await register(auth.client)
    path = f"/internal/auth/accounts/{tokens['user']['id']}"
    assert (await auth.client.get(path)).status_code == 401
    assert (await auth.client.get(path, headers={"X-Internal-Token": "wrong"})).status_code == 401
    assert (await auth.client.get(path, headers=bearer(tokens))).status_code == 401
    from tests.support import INTERNAL_TOKEN

    ok = await auth.client.get(path, headers={"X-Internal-Token": INTERNAL_TOKEN})
    assert ok.status_code == 200


async def test_request_id_and_instance_headers(auth: Platform) -> None:
    echoed = await auth.client.get("/v1/auth/me", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert echoed.headers["x-instance"] == "auth-1"
    replaced = await auth.client.get("/v1/auth/me", headers={"X-Request-ID": "bad id " + "x" * 200})
    assert replaced.headers["x-request-id"] != "bad id"
    assert len(replaced.headers["x-request-id"]) == 32
    missing = await auth.client.get(f"/v1/auth/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = await auth.client.delete("/v1/auth/login")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405


async def test_token_responses_are_never_cached(auth: Platform) -> None:
    email = unique_email()
    registered = await auth.client.post(
        "/v1/auth/register", json={"email": email, "password": "long-enough-1", "name": "N"}
    )
    login = await auth.client.post(
        "/v1/auth/login", json={"email": email, "password": "long-enough-1"}
    )
    refreshed = await auth.client.post(
        "/v1/auth/refresh", json={"refreshToken": login.json()["refreshToken"]}
    )
    for response in (registered, login, refreshed):
        assert response.status_code in (200, 201), response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
    # The public key set is meant to be cached.
    jwks = await auth.client.get("/v1/auth/.well-known/jwks.json")
    assert jwks.headers["cache-control"] == "public, max-age=300"


async def test_every_answer_says_nosniff(auth: Platform) -> None:
    responses = [
        await auth.client.get("/v1/auth/.well-known/jwks.json"),  # 200
        await auth.client.get("/v1/auth/me"),  # 401 problem
        await auth.client.get(f"/v1/auth/{uuid.uuid4()}"),  # 404 from routing
        await auth.client.post(
            "/v1/auth/login", content=b"x", headers={"content-type": "text/plain"}
        ),  # 415 from the middleware
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.status_code
