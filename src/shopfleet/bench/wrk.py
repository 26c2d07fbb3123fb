"""Run wrk with the replay script and read its figures."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parents[3] / "bench" / "lua" / "replay.lua"
TIMEOUT_SECONDS = 10  # a request slower than this counts as a socket error (timeout)


@dataclass
class Load:
    """One wrk run's figures."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # wrk's socket errors by kind
    tags: dict[str, int] = field(default_factory=dict)  # values of the counted header

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def count(self, *codes: int) -> int:
        return sum(n for status, n in self.statuses.items() if status in codes)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str = ""
    body: str = ""

    def line(self) -> str:
        return "\t".join((self.method, self.path, self.token, self.body))


def write_requests(path: Path, requests: list[Request]) -> Path:
    path.write_text("".join(r.line() + "\n" for r in requests))
    return path


def run_wrk(
    base_url: str,
    requests_file: Path,
    *,
    seconds: int,
    connections: int,
    threads: int = 2,
    header: str = "",
    count_header: str = "",
) -> Load:
    """Load `base_url` with the requests in `requests_file` for `seconds` (bounded)."""
    if not base_url.startswith(("http://127.", "http://localhost")):
        raise ValueError(f"the bench loads loopback addresses only, not {base_url}")
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests_file),
        "BENCH_HEADER": header,
        "BENCH_COUNT_HEADER": count_header,
    }
    result = subprocess.run(  # noqa: S603 (wrk with our script, on loopback)
        ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s",  # noqa: S607
         "--timeout", f"{TIMEOUT_SECONDS}s", "-s", str(LUA), base_url],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=sum(data["errors"].values()),
        statuses={int(k): v for k, v in data["statuses"].items()},
        errors={k: v for k, v in data["errors"].items() if v},
        tags=data.get("tags", {}),
    )
