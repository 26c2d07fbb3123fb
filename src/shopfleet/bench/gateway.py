"""The gateway's bench references, rendered only when the topology profile asks for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopfleet.bench.payload import payload_json

if TYPE_CHECKING:
    from shopfleet.deploy.topology import Gateway


def _block(head: str, lines: list[str]) -> list[str]:
    return [f"{head} {{", *(f"    {line}" for line in lines), "}"]


def bench_upstream(gateway: Gateway) -> list[str]:
    """The bare app behind `/bench/floor`, kept alive like every service's upstream."""
    if gateway.bench is None:
        return []
    lines = [
        f"server 127.0.0.1:{gateway.bench.floor_port};",
        f"keepalive {gateway.upstream_keepalive};",
        f"keepalive_timeout {gateway.upstream_keepalive_timeout}s;",
        "keepalive_requests 10000;",
    ]
    return [*_block("upstream bench_floor", lines), ""]


def bench_locations(gateway: Gateway) -> list[str]:
    """References measured in every bench run: nginx alone (ceiling), a bare app (floor)."""
    if gateway.bench is None:
        return []
    ceiling = ["default_type application/json;", f"return 200 '{payload_json()}';"]
    return [
        *_block("location = /bench/ceiling", ceiling),
        *_block("location = /bench/floor", ["proxy_pass http://bench_floor;"]),
    ]
