"""What an instance's /metrics tells an operator: statements, Redis, limiter, process."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shopfleet.common.dbmetrics import statement_kind
from tests.support import REDIS_URL


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls)


async def test_metrics_cover_statements_redis_limiter_and_process(
    make_platform: Any, redis_prefix: str
) -> None:
    redis = {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    # Every statement counts as slow: the counter and the log line are exercised.
    overrides = {"products": {**redis, "slow_query_seconds": 0.0}}
    async with make_platform("products", **overrides) as platform:
        for _ in range(3):
            response = await platform.client.get(f"/v1/products/{uuid.uuid4()}")
            assert response.status_code == 404
        async with platform.instance_client("products") as client:
            found = samples((await client.get("/metrics")).text)

    assert value(found, "db_query_duration_seconds_count", kind="SELECT") >= 3
    assert value(found, "db_slow_queries_total", kind="SELECT") >= 3
    # The limiter reads the cache entry in its own round trip (one per request).
    operation = "rate_limit_cache_read"
    assert value(found, "redis_command_duration_seconds_count", operation=operation) >= 3
    # Three requests, and the cache warmer's own at start.
    assert value(found, "rate_limit_decisions_total", group="products", decision="allowed") >= 3
    assert value(found, "process_cpu_seconds_total") > 0
    assert value(found, "process_resident_memory_bytes") > 10 * 2**20
    if platform.backend == "postgres":  # SQLite has no connection pool to wait on
        assert value(found, "db_pool_checkout_seconds_count") >= 3
        assert ("db_pool_checkouts_waiting", frozenset()) in found


def test_statement_kinds() -> None:
    assert statement_kind("  select 1") == "SELECT"
    assert statement_kind("INSERT INTO x VALUES (1)") == "INSERT"
    assert statement_kind("WITH a AS (SELECT 1) SELECT * FROM a") == "WITH"
    assert statement_kind("BEGIN") == "other"
    assert statement_kind("SAVEPOINT sa_1") == "other"


def test_request_metrics_render_as_prometheus_client_would() -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    from shopfleet.common.metrics import LATENCY_BUCKETS, Metrics

    ours = Metrics()
    reference = CollectorRegistry()
    labels = ["method", "route", "status"]
    requests = Counter("http_requests_total", "HTTP requests", labels, registry=reference)
    latency = Histogram(
        "http_request_duration_seconds",
        "HTTP request latency",
        labels,
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    in_flight = Gauge("http_requests_in_flight", "", ["method"], registry=reference)
    answers = [("GET", "/v1/a", "200", 0.0004), ("GET", "/v1/a", "200", 0.001)]
    answers += [("POST", "/v1/b", "201", 0.25), ("GET", "/v1/a", "503", 30.0)]
    for method, route, status, seconds in answers:
        ours.http.started(method)
        ours.http.finished(method, route, status, seconds)
        requests.labels(method, route, status).inc()
        latency.labels(method, route, status).observe(seconds)
        in_flight.labels(method).set(0)
    ours.http.started("GET")  # one still running
    in_flight.labels("GET").inc()

    def rendered(registry: CollectorRegistry) -> dict[Any, float]:
        found = samples(generate_latest(registry).decode())
        return {key: v for key, v in found.items() if key[0].startswith("http_")}

    expected = rendered(reference)
    assert rendered(ours.registry) == {k: v for k, v in expected.items() if "_created" not in k[0]}
    assert value(expected, "http_request_duration_seconds_bucket", le="0.001") == 2
