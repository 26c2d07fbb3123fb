"""A cold instance behind a slow JWKS accepts every valid token, also across a key rotation."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from shopfleet.common.settings import Settings
from shopfleet.common.tokens import TokenSigner, public_jwk
from tests.support import PRIVATE_PEM, start_service, test_env

JWKS_DELAY = 1.5


class JwksServer:
    """A slow JWKS on a host of its own: answers after JWKS_DELAY, records what it was sent."""

    def __init__(self, *keys: Ed25519PrivateKey) -> None:
        self.keys = list(keys)
        self.seen: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append({k.lower(): v for k, v in self.headers.items()})
                time.sleep(JWKS_DELAY)
                body = orjson.dumps({"keys": [public_jwk(k.public_key()) for k in outer.keys]})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/jwks.json"

    def __enter__(self) -> JwksServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _token(key: Ed25519PrivateKey, subject: str) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = TokenSigner(key, Settings(service="auth", jwt_private_key=SecretStr(pem)))
    return signer.issue(subject=subject, role="customer")[0]


async def _load(url: str, tokens: list[str], *, seconds: float) -> dict[int, int]:
    """Send requests with valid tokens from before the port opens (40 each).

    The window of `seconds` starts at the first answer, not at the process start: a busy
    machine may take that long just to import the service.
    """
    statuses: dict[int, int] = {}
    opens_by = time.monotonic() + 60
    until: list[float] = []

    async def worker(client: httpx.AsyncClient, token: str) -> None:
        sent = 0
        while sent < 40 and time.monotonic() < (until[0] if until else opens_by):
            try:
                response = await client.get(
                    "/v1/orders", headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TransportError:
                await asyncio.sleep(0.02)  # not listening yet
                continue
            if not until:
                until.append(time.monotonic() + seconds)
            sent += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(*(worker(client, token) for token in tokens))
    return statuses


@pytest.fixture
def signing_key() -> Iterator[Ed25519PrivateKey]:
    key = serialization.load_pem_private_key(PRIVATE_PEM.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    yield key


@pytest.mark.e2e
def test_cold_instance_behind_a_slow_jwks_never_refuses_a_valid_token(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    with JwksServer(signing_key) as jwks:
        # Rate limits are another test's subject: off, so every answer speaks of the token.
        env = test_env(
            "orders",
            "sqlite",
            tmp_path,
            SHOPFLEET_JWKS_URL=jwks.url,
            SHOPFLEET_RATE_LIMIT_ENABLED="false",
        )
        del env["SHOPFLEET_JWT_PUBLIC_KEY"]  # the instance must learn the key from the JWKS
        subprocess.run(
            [sys.executable, "-m", "shopfleet", "migrate", "orders"],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        tokens = [_token(signing_key, f"00000000-0000-0000-0000-{i:012d}") for i in range(16)]
        proc = start_service("orders", env=env, log_dir=tmp_path, wait=False)
        try:
            statuses = asyncio.run(_load(proc.url, tokens, seconds=8))
            assert statuses.get(401, 0) == 0, (statuses, proc.log())
            assert statuses.get(200, 0) >= 50, (statuses, proc.log())
            assert set(statuses) == {200}, statuses

            # Auth rotates its key: a token signed by the new key is accepted at once.
            rotated = Ed25519PrivateKey.generate()
            jwks.keys.append(rotated)
            fresh = [_token(rotated, f"00000000-0000-0000-0001-{i:012d}") for i in range(8)]
            statuses = asyncio.run(_load(proc.url, fresh, seconds=3))
            assert set(statuses) == {200}, (statuses, proc.log())

            # One fetch at start and one for the rotation (a fetch that times out on a busy
            # machine is retried), never one per request (50 or more were answered); and the
            # JWKS, on a host of its own, never saw the internal service credential.
            assert 2 <= len(jwks.seen) <= 4, jwks.seen
            assert all("x-internal-token" not in headers for headers in jwks.seen)
        finally:
            proc.terminate()
