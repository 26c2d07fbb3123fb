"""What one service call costs the caller: httpx's own transport vs aiohttp under httpx.

One client process on uvloop calls a local uvicorn peer (a fixed ~120-byte JSON answer)
with concurrent callers, sending a reservation-sized JSON body and the internal token
header; the figure is the client process's CPU time per call after a warm-up.

    .venv/bin/python bench/service_client.py [--calls 4000] [--callers 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop
from httpx_aiohttp import AiohttpTransport

ANSWER = (
    b'{"orderId":"00000000-0000-0000-0000-000000000001","status":"reserved","items":'
    b'[{"productId":"00000000-0000-0000-0000-000000000002","quantity":2,"sku":"SKU-1",'
    b'"name":"A product","price":"9.99"}]}'
)
PAYLOAD = {
    "orderId": "00000000-0000-0000-0000-000000000001",
    "items": [{"productId": "00000000-0000-0000-0000-000000000002", "quantity": 2}],
}
HEADERS = {"X-Internal-Token": "bench"}
PATH = "/internal/products/reservations"
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50)
PEER = f"""
import uvicorn
ANSWER = {ANSWER!r}
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({{"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]}})
    await send({{"type": "http.response.body", "body": ANSWER}})
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(call: Callable[[], Awaitable[None]], *, calls: int, callers: int) -> float:
    """CPU ms of this process per call, after a warm-up of a quarter as many calls."""

    async def caller(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(caller(calls // callers // 4) for _ in range(callers)))
    started = time.process_time()
    await asyncio.gather(*(caller(calls // callers) for _ in range(callers)))
    return 1000 * (time.process_time() - started) / (calls // callers * callers)


async def _with_httpx(url: str, transport: httpx.AsyncBaseTransport | None, **sizes: int) -> float:
    async with httpx.AsyncClient(base_url=url, limits=LIMITS, transport=transport) as client:

        async def call() -> None:
            response = await client.request("POST", PATH, json=PAYLOAD, headers=HEADERS)
            assert response.status_code == 200 and response.content == ANSWER

        return await _measure(call, **sizes)


async def _with_aiohttp(url: str, **sizes: int) -> float:
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=100)) as session:
        body = orjson.dumps(PAYLOAD)
        headers = {**HEADERS, "Content-Type": "application/json"}

        async def call() -> None:
            async with session.post(PATH, data=body, headers=headers) as response:
                assert response.status == 200 and await response.read() == ANSWER

        return await _measure(call, **sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sizes = {"calls": args.calls, "callers": args.callers}
    port = _free_port()
    peer = subprocess.Popen([sys.executable, "-c", PEER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        clients: dict[str, Callable[[], Coroutine[Any, Any, float]]] = {
            "httpx, its own transport (httpcore)": lambda: _with_httpx(url, None, **sizes),
            "httpx on AiohttpTransport": lambda: _with_httpx(
                url, AiohttpTransport(limits=LIMITS), **sizes
            ),
            "aiohttp ClientSession alone": lambda: _with_aiohttp(url, **sizes),
        }
        for round_ in range(1, args.rounds + 1):
            for name, run in clients.items():
                print(f"round {round_}  {name:38s} {uvloop.run(run()):.3f} ms CPU per call")
    finally:
        peer.terminate()
        peer.wait(timeout=10)


if __name__ == "__main__":
    main()
