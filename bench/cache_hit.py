"""Cache-hit benchmark: hello vs product detail (cache hit) vs product detail (uncached).

Side by side in one run: one products instance serves the hello route and the cached
detail; a second instance of the same build with caching off serves the uncached detail.
Both use the machine's Redis (rate limiter on, limits raised) and SQLite.

    .venv/bin/python bench/cache_hit.py [--duration 10] [--connections 32] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wrk(url: str, *, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)

    def ms(match: re.Match[str] | None) -> float:
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


def _delete_keys(url: str, prefix: str) -> None:
    """Teardown only: remove this run's keys (SCAN is fine here, never on a request path)."""
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default SQLite")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="shopfleet-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLEET_")}
    env.update(
        SHOPFLEET_DATA_DIR=str(work),
        SHOPFLEET_REDIS_URL=args.redis_url,
        SHOPFLEET_REDIS_KEY_PREFIX=f"bench:{uuid.uuid4().hex[:8]}:",
        SHOPFLEET_RATE_LIMIT_REQUESTS="1000000000",
        SHOPFLEET_RATE_LIMIT_WINDOW="60",
        SHOPFLEET_LOG_LEVEL="WARNING",
    )
    if args.database_url:
        env["SHOPFLEET_DATABASE_URL"] = args.database_url
        env["SHOPFLEET_DATABASE_SCHEMA_PREFIX"] = f"bench{uuid.uuid4().hex[:6]}_"
    cli = [PYTHON, "-m", "shopfleet"]
    subprocess.run(
        [*cli, "seed", "--categories", "5", "--products", "500", "--users", "0", "--seed", "7"],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )
    cached_port, uncached_port = _free_port(), _free_port()
    logs = (work / "cached.log").open("wb"), (work / "uncached.log").open("wb")
    cached = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "hello_app.py"), str(cached_port)],
        env=env,
        cwd=work,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    uncached = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "hello_app.py"), str(uncached_port)],
        env={**env, "SHOPFLEET_CACHE_ENABLED": "false"},
        cwd=work,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    try:
        base, base_off = f"http://127.0.0.1:{cached_port}", f"http://127.0.0.1:{uncached_port}"
        _wait(f"{base}/health/ready")
        _wait(f"{base_off}/health/ready")
        product_id = httpx.get(f"{base}/v1/products?limit=1").json()["results"][0]["id"]
        detail = f"/v1/products/{product_id}"
        assert httpx.get(base + detail).status_code == 200
        assert httpx.get(base + detail).headers.get("x-cache") == "HIT", "the detail is not cached"
        assert "x-cache" not in httpx.get(base_off + detail).headers
        results = {
            "hello": _wrk(
                f"{base}/v1/bench/hello", duration=args.duration, connections=args.connections
            ),
            "detail-cache-hit": _wrk(
                base + detail, duration=args.duration, connections=args.connections
            ),
            "detail-uncached": _wrk(
                base_off + detail, duration=args.duration, connections=args.connections
            ),
        }
    finally:
        for proc in (cached, uncached):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
        _delete_keys(args.redis_url, env["SHOPFLEET_REDIS_KEY_PREFIX"])
    hello = results["hello"]["rps"]
    print(
        f"{'scenario':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'x hello':>8}"
    )
    for name, figures in results.items():
        print(
            f"{name:<18} {figures['rps']:>9.0f} {figures['p50_ms']:>8.2f} "
            f"{figures['p99_ms']:>8.2f} {figures['non_2xx']:>8} {figures['rps'] / hello:>8.2f}"
        )
    print(json.dumps({"command": " ".join(sys.argv), "results": results}))


if __name__ == "__main__":
    main()
