"""Server-side figures: each instance's /metrics around a scenario, and memory after a run."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

# Requests the harness itself makes (scrapes, readiness) are not the scenario's.
_OPERATIONAL_ROUTES = frozenset({"/metrics", "/health", "/health/live", "/health/ready"})


@dataclass
class Counters:
    """One instance's cumulative counters at one moment."""

    requests: float = 0.0
    cache: dict[tuple[str, str], float] = field(default_factory=dict)  # (prefix, result)


def parse_metrics(text: str) -> Counters:
    counters = Counters()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total":
                if sample.labels.get("route") not in _OPERATIONAL_ROUTES:
                    counters.requests += sample.value
            elif sample.name == "cache_requests_total":
                key = (sample.labels["prefix"], sample.labels["result"])
                counters.cache[key] = counters.cache.get(key, 0.0) + sample.value
    return counters


async def scrape(ports: dict[str, int]) -> dict[str, Counters]:
    """Every instance's counters, read from its own port (not through the gateway)."""
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(port: int) -> Counters:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            response.raise_for_status()
            return parse_metrics(response.text)

        found = await asyncio.gather(*(one(port) for port in ports.values()))
    return dict(zip(ports, found, strict=True))


def difference(before: dict[str, Counters], after: dict[str, Counters]) -> dict[str, Any]:
    """What a scenario did on the server: requests per instance, cache lookups and hit ratio."""
    requests: dict[str, int] = {}
    cache: Counter[tuple[str, str]] = Counter()
    for name, now in after.items():
        then = before.get(name, Counters())
        done = int(now.requests - then.requests)
        if done:
            requests[name] = done
        for key, value in now.cache.items():
            cache[key] += int(value - then.cache.get(key, 0))
    by_prefix: dict[str, dict[str, Any]] = {}
    for (prefix, result), count in sorted(cache.items()):
        if count:
            by_prefix.setdefault(prefix, {"hit": 0, "miss": 0})[result] = count
    for figures in by_prefix.values():
        lookups = figures["hit"] + figures["miss"]
        figures["hit_ratio"] = round(figures["hit"] / lookups, 4) if lookups else None
    return {"requests_by_instance": requests, "cache": by_prefix}


def instance_memory(rows: list[Any]) -> dict[str, float]:
    """RSS in MB of each service instance (rows from `shopfleet status`)."""
    skip = {"nginx", "redis", "memmon"}
    return {row.name: round(row.rss_mb, 1) for row in rows if row.name not in skip and row.pid}
