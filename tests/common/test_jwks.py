"""Token keys from auth's JWKS: one fetch in flight, rotation without spurious 401s."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from shopfleet.common.app import ServiceSpec, create_service_app
from shopfleet.common.errors import DependencyUnavailable, Unauthorized
from shopfleet.common.settings import Settings
from shopfleet.common.tokens import TokenSigner, TokenVerifier, public_jwk
from tests.support import base_settings


class SlowJwks:
    """An auth stand-in: answers the JWKS after `delay` seconds and counts the fetches."""

    def __init__(self, *keys: Ed25519PrivateKey, delay: float = 0.2) -> None:
        self.keys = list(keys)
        self.delay = delay
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        return httpx.Response(200, json={"keys": [public_jwk(k.public_key()) for k in self.keys]})


def _verifier(jwks: SlowJwks, **settings: object) -> TokenVerifier:
    http = httpx.AsyncClient(
        base_url="http://internal:8081",
        headers={"X-Internal-Token": "secret"},
        transport=httpx.MockTransport(jwks),
    )
    return TokenVerifier(Settings(service="orders", **settings), http=http)  # type: ignore[arg-type]


def _token(key: Ed25519PrivateKey) -> str:
    signer = TokenSigner(key, Settings(service="auth", jwt_private_key=SecretStr("unused")))
    return signer.issue(subject="u1", role="customer")[0]


async def test_concurrent_requests_share_one_fetch_and_none_fails() -> None:
    key = Ed25519PrivateKey.generate()
    jwks = SlowJwks(key, delay=0.3)
    verifier = _verifier(jwks)
    # Distinct tokens, so the verified-token cache cannot hide a failure.
    tokens = [_token(key) for _ in range(50)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(jwks.requests) == 1


async def test_a_rotated_key_is_picked_up_right_after_a_fetch() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    jwks = SlowJwks(old, delay=0.05)
    verifier = _verifier(jwks)
    assert (await verifier.verify(_token(old))).subject == "u1"
    # Auth rotates moments after the last fetch: the new kid waits for the next allowed
    # fetch instead of being refused.
    jwks.keys.append(new)
    results = await asyncio.gather(*(verifier.verify(_token(new)) for _ in range(20)))
    assert all(r.subject == "u1" for r in results)
    assert len(jwks.requests) == 2


async def test_an_unknown_key_is_refused_after_one_fresh_fetch() -> None:
    known, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    jwks = SlowJwks(known, delay=0.01)
    verifier = _verifier(jwks)
    for _ in range(3):
        with pytest.raises(Unauthorized, match="unknown key"):
            await verifier.verify(_token(stranger))
    # Forged key ids cost at most one fetch per interval, never one per request.
    assert len(jwks.requests) <= 3
    results = await asyncio.gather(
        *(verifier.verify(_token(stranger)) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert len(jwks.requests) <= 4


async def test_the_internal_token_goes_only_to_internal_hosts() -> None:
    key = Ed25519PrivateKey.generate()
    jwks = SlowJwks(key, delay=0)
    await _verifier(jwks).jwks.prime(max_wait=1)  # type: ignore[union-attr]
    await _verifier(jwks, jwks_url="http://elsewhere.example/jwks.json").jwks.prime(max_wait=1)  # type: ignore[union-attr]
    await _verifier(
        jwks,
        jwks_url="http://auth.ns.svc:8000/v1/auth/.well-known/jwks.json",
        service_urls={"auth": "http://auth.ns.svc:8000"},
    ).jwks.prime(max_wait=1)  # type: ignore[union-attr]
    sent = [(str(r.url), r.headers.get("x-internal-token")) for r in jwks.requests]
    assert sent == [
        ("http://internal:8081/v1/auth/.well-known/jwks.json", "secret"),
        ("http://elsewhere.example/jwks.json", None),
        ("http://auth.ns.svc:8000/v1/auth/.well-known/jwks.json", "secret"),
    ]


async def test_prime_retries_until_auth_answers() -> None:
    key = Ed25519PrivateKey.generate()
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("auth is starting", request=request)
        return httpx.Response(200, json={"keys": [public_jwk(key.public_key())]})

    http = httpx.AsyncClient(base_url="http://internal", transport=httpx.MockTransport(handler))
    verifier = TokenVerifier(Settings(service="orders"), http=http)
    assert not verifier.ready
    assert await verifier.jwks.prime(max_wait=5)  # type: ignore[union-attr]
    assert verifier.ready and calls == 3


async def test_an_instance_without_keys_serves_anonymous_reads_and_keeps_fetching(
    tmp_path: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    auth_up = False

    def handler(request: httpx.Request) -> httpx.Response:
        if not auth_up:
            raise httpx.ConnectError("auth is down", request=request)
        return httpx.Response(200, json={"keys": [public_jwk(key.public_key())]})

    settings = base_settings("orders", "sqlite", tmp_path, jwt_public_key=None)
    settings = settings.model_copy(update={"jwks_startup_timeout": 0.3})
    app = create_service_app(
        settings,
        ServiceSpec(name="orders", title="t", routers=[]),
        http_transport=httpx.MockTransport(handler),
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with app.router.lifespan_context(app), client:
        # Auth down past the bounded wait: the instance is ready (anonymous reads need no
        # key), and a token cannot be checked yet: 503 with Retry-After, not a 401.
        assert (await client.get("/health/ready")).status_code == 200
        verifier = app.state.resources.verifier
        token = jwt.encode(
            {"sub": "u", "role": "customer"}, key, algorithm="EdDSA", headers={"kid": "k"}
        )
        with pytest.raises(DependencyUnavailable):
            await verifier.verify(token)
        auth_up = True
        for _ in range(100):
            if verifier.keys:
                break
            await asyncio.sleep(0.05)
        assert verifier.keys
