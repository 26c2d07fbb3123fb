"""The gateway's own behaviour through a real nginx in front of a small real platform.

auth x1, categories x1, products x2 and orders scaled to zero (so nginx itself answers 502),
on the embedded defaults (SQLite files, a private redis-server). The rate limits are the
default profile's shape with room for a bounded load: `general` is the binding zone. Each
test talks from its own loopback address (127.0.0.x), which is its own rate-limit identity.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shopfleet.deploy.operator.local import instance_ready
from tests.e2e.localrun import LocalRun, base_env, write_topology

pytestmark = pytest.mark.e2e
PASSWORD = "correct-horse-1"
MICRO_CACHE_SECONDS = 2  # the promise: an update reaches anonymous readers within 2 s
GENERAL = {"rate": 50, "burst": 50}
RATE_LIMITS = {
    "general": GENERAL,
    "auth": {"rate": 5, "burst": 5},
    "api": {"rate": 1000, "burst": 1000},  # above `general`: only `general` can bind
    "connections_per_client": 1000,
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    root = tmp_path_factory.mktemp("gateway")
    topology = write_topology(
        root,
        instances={"auth": 1, "categories": 1, "products": 2},
        gateway={"micro_cache_seconds": MICRO_CACHE_SECONDS, "rate_limits": RATE_LIMITS},
    )
    # The instances' own limiter (100 requests per address per 15 min) would answer the
    # load before the gateway's zones do; these tests are about the gateway.
    env = base_env(root / "var", SHOPFLEET_RATE_LIMIT_ENABLED="false")
    run = LocalRun(root, topology, env)
    with run.running():
        yield run


def client(platform: LocalRun, source: str, **kwargs: Any) -> httpx.AsyncClient:
    """A client whose connections come from `source` (its own rate-limit identity)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=platform.gateway, transport=transport, timeout=30, **kwargs)


@dataclass
class Shop:
    admin: dict[str, str]
    product: dict[str, Any]


@pytest.fixture(scope="module")
async def shop(platform: LocalRun) -> Shop:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    platform.cli("create-admin", "--email", email, "--password-stdin", stdin=PASSWORD)
    async with client(platform, "127.0.0.10") as http:
        login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        admin = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        category = await http.post(
            "/v1/categories", json={"name": f"Books {uuid.uuid4().hex[:6]}"}, headers=admin
        )
        assert category.status_code == 201, category.text
        product = await new_product(http, admin, category.json()["id"])
        return Shop(admin, product)


async def new_product(
    http: httpx.AsyncClient, admin: dict[str, str], category_id: str
) -> dict[str, Any]:
    response = await http.post(
        "/v1/products",
        json={
            "sku": f"BK-{uuid.uuid4().hex[:8]}",
            "name": "A book",
            "price": 12.5,
            "categoryId": category_id,
            "stock": 10,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_gateway_problem(response: httpx.Response, status: int) -> None:
    """An answer nginx made itself: problem+json, a request id, the security headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "x-instance" not in response.headers


async def burst(http: httpx.AsyncClient, path: str, count: int, **kwargs: Any) -> list[int]:
    answers = await asyncio.gather(*(http.get(path, **kwargs) for _ in range(count)))
    limited = [r for r in answers if r.status_code == 429]
    for response in limited:
        assert_gateway_problem(response, 429)
        assert response.headers["retry-after"] == "1"
    return [r.status_code for r in answers]


async def test_the_general_zone_applies_on_every_v1_location(platform: LocalRun) -> None:
    # More than rate + burst at once from one address, on a route with its own zone (`api`,
    # far above): `general` must still answer 429.
    count = 3 * (GENERAL["rate"] + GENERAL["burst"])
    async with client(platform, "127.0.0.3") as http:
        statuses = await burst(http, "/v1/categories", count)
    print(f"\n{count} GET /v1/categories from one address: {statuses.count(429)} x 429")
    assert 429 in statuses
    assert set(statuses) <= {200, 429}
    # `x-no-compression` switches to nginx's `if` block: the limits must hold there too.
    async with client(platform, "127.0.0.9") as http:
        plain = await burst(http, "/v1/categories", count, headers={"X-No-Compression": "1"})
    assert 429 in plain


async def test_a_spoofed_x_forwarded_for_does_not_change_the_rate_limit_identity(
    platform: LocalRun,
) -> None:
    count = 3 * (GENERAL["rate"] + GENERAL["burst"])
    async with client(platform, "127.0.0.4") as http:
        answers = await asyncio.gather(
            *(
                http.get("/v1/categories", headers={"X-Forwarded-For": f"203.0.113.{i % 250}"})
                for i in range(count)
            )
        )
    statuses = [r.status_code for r in answers]
    assert 429 in statuses, "a forged X-Forwarded-For escaped the per-address limit"


async def test_x_no_compression_is_honoured_at_the_gateway(platform: LocalRun) -> None:
    async with client(platform, "127.0.0.5") as http:
        path = "/docs/products/openapi.json"
        compressed = await http.get(path, headers={"Accept-Encoding": "gzip"})
        assert compressed.headers["content-encoding"] == "gzip"
        plain = await http.get(path, headers={"Accept-Encoding": "gzip", "X-No-Compression": "1"})
        assert plain.status_code == 200
        assert "content-encoding" not in plain.headers
        assert "/v1/products" in plain.json()["paths"]


async def test_every_answer_is_nosniff_and_the_cache_key_stays_internal(
    platform: LocalRun, shop: Shop
) -> None:
    path = f"/v1/products/{shop.product['id']}"
    async with client(platform, "127.0.0.6") as http:
        answers = [await http.get(path) for _ in range(2)]  # MISS, then HIT
        answers.append(await http.get(path, headers=shop.admin))  # BYPASS
        answers.append(await http.get("/v1/auth/.well-known/jwks.json"))
        answers.append(await http.get("/docs/products/"))
        for response in answers:
            assert response.status_code == 200, response.text
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "x-cache-key" not in response.headers
    async with httpx.AsyncClient(base_url=platform.internal, timeout=30) as internal:
        assert "x-cache-key" in (await internal.get(path)).headers


async def test_gateway_made_errors_are_problems_with_the_request_id(platform: LocalRun) -> None:
    async with client(platform, "127.0.0.7") as http:
        missing = await http.get("/no/such/route", headers={"X-Request-ID": "e2e-404"})
        assert_gateway_problem(missing, 404)
        assert missing.headers["x-request-id"] == "e2e-404"
        assert_gateway_problem(await http.request("TRACE", "/v1/products"), 405)
        assert_gateway_problem(await http.get("/v1/products?q=" + "a" * 20_000), 414)
        too_large = await http.post(
            "/v1/products", content=b"{" + b" " * 2_000_000 + b"}", headers={"X-Request-ID": "big"}
        )
        assert_gateway_problem(too_large, 413)
        assert too_large.headers["x-request-id"] == "big"
        no_instance = await http.get("/v1/orders", headers={"X-Request-ID": "e2e-502"})
        assert_gateway_problem(no_instance, 502)
        assert no_instance.headers["x-request-id"] == "e2e-502"
    assert_gateway_problem(raw_request(platform, b"GET / HTTP/1.1\r\n\r\n"), 400)


def raw_request(platform: LocalRun, request: bytes) -> httpx.Response:
    """Send bytes no HTTP client would (a request without Host) and parse the answer."""
    port = platform.topology.gateway.public_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


async def test_an_update_reaches_anonymous_readers_within_the_micro_cache_window(
    platform: LocalRun, shop: Shop
) -> None:
    async with client(platform, "127.0.0.8") as http:
        product = await new_product(http, shop.admin, shop.product["categoryId"])
        path = f"/v1/products/{product['id']}"
        # Fill the cache just after a second starts: nginx's whole-second clock then gives
        # the entry the longest life it can have.
        await asyncio.sleep(1 - time.time() % 1 + 0.02)
        filled = await http.get(path)
        assert filled.headers["x-cache-status"] == "MISS"
        patched = await http.patch(path, json={"price": 99.5}, headers=shop.admin)
        assert patched.status_code == 200, patched.text
        changed_at = time.monotonic()
        assert (await http.get(path)).headers["x-cache-status"] == "HIT"
        await asyncio.sleep(MICRO_CACHE_SECONDS - (time.monotonic() - changed_at))
        seen = await http.get(path)
    assert seen.json()["price"] == 99.5, f"old price after {MICRO_CACHE_SECONDS} s"


@dataclass
class Load:
    sent: int = 0
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def paced_requests(
    platform: LocalRun,
    requests: list[tuple[str, str, int]],
    headers: dict[str, str],
    stop: asyncio.Event,
) -> Load:
    """Signed-in idempotent requests (past the micro-cache) from 127.0.0.2, ~40 r/s, under
    `general`; (method, path, expected status)."""
    result = Load()

    async def worker(http: httpx.AsyncClient, index: int) -> None:
        while not stop.is_set():
            method, path, expected = requests[(result.sent + index) % len(requests)]
            result.sent += 1
            try:
                response = await http.request(method, path, headers=headers)
                status = response.status_code
                failed = "" if status == expected else f"{method} HTTP {status}"
            except httpx.HTTPError as exc:
                failed = f"{method} {type(exc).__name__}"
            if failed:
                result.failures += 1
                result.errors[failed] = result.errors.get(failed, 0) + 1
            await asyncio.sleep(0.1)

    async with client(platform, "127.0.0.2") as http:
        await asyncio.gather(*(worker(http, i) for i in range(4)))
    return result


async def wait_restarted(platform: LocalRun, program: str, old_pid: int, port: int) -> None:
    deadline = time.monotonic() + 30
    while not (platform.pid_of(program) not in (0, old_pid) and instance_ready(port)):
        assert time.monotonic() < deadline, f"supervisor did not bring {program} back"
        await asyncio.sleep(0.2)


async def test_two_restarts_a_few_seconds_apart_fail_no_idempotent_request(
    platform: LocalRun, shop: Shop
) -> None:
    products = platform.topology.services["products"]
    requests = [
        ("GET", f"/v1/products/{shop.product['id']}", 200),
        ("GET", "/v1/products?limit=5", 200),
        # Idempotent, so nginx may retry it on another instance: it must never fail.
        ("DELETE", f"/v1/products/{uuid.uuid4()}", 404),
    ]
    stop = asyncio.Event()
    load = asyncio.create_task(paced_requests(platform, requests, shop.admin, stop))
    await asyncio.sleep(1)
    # A crash or a restart outside `shopfleet reload`, then the sibling's the moment the
    # first one answers again (before the gateway may have sent it anything): the other
    # instance must take every read meanwhile.
    for index in (1, 2):
        program = f"products-{index}"
        pid = platform.pid_of(program)
        os.kill(pid, signal.SIGTERM)
        await wait_restarted(platform, program, pid, products.instance_port(index))
    await asyncio.sleep(2)
    stop.set()
    result = await load
    print(f"\nSIGTERM products-1, then products-2 (GET, GET, DELETE): {result}")
    assert result.sent > 100
    assert result.failures == 0, str(result)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def open_in_chromium(url: str, workdir: Path) -> tuple[str, list[tuple[str, str]]]:
    """The DOM of `url` after Swagger UI rendered, and every request the page itself made
    as (initiator origin, URL), from Chromium's net log. Requests the browser makes on its
    own (update checks) have no initiator and are left out; no name resolves except
    127.0.0.1, so nothing leaves the machine either way."""
    assert Path(CHROMIUM).exists(), "scripts/setup installs chromium"
    netlog = workdir / "netlog.json"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={workdir / 'profile'}",
            f"--log-net-log={netlog}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start_job]
    requests = [
        (params["initiator"], params["url"])
        for params in starts
        if str(params.get("initiator", "")).startswith("http")
    ]
    return result.stdout, requests


@pytest.mark.parametrize("service", ["auth", "categories", "products"])
def test_the_docs_page_renders_in_chromium_from_shopfleet_alone(
    platform: LocalRun, service: str, tmp_path: Path
) -> None:
    dom, requests = open_in_chromium(f"{platform.gateway}/docs/{service}/", tmp_path)
    # Swagger UI rendered the schema: one block per operation, with its path.
    assert 'class="swagger-ui' in dom
    assert dom.count("opblock-summary-path") >= 2, dom[-2000:]
    assert f"/v1/{service}" in dom
    # The page's own requests (assets, schema) all went to the gateway, none elsewhere.
    urls = [url for _, url in requests]
    assert any(url.endswith("/assets/swagger-ui-bundle.js") for url in urls), urls
    assert any(url.endswith("/openapi.json") for url in urls), urls
    origins = {f"{u.scheme}://{u.netloc}" for u in map(urlsplit, urls)}
    assert origins == {platform.gateway}, urls
