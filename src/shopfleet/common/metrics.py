"""Prometheus metrics of one instance (one registry per app, never multiprocess mode)."""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# Database statements and Redis commands are mostly sub-millisecond.
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The `le` labels as prometheus_client writes them (Go's float format, as these are).
_LATENCY_LE = (*(repr(float(bound)) for bound in LATENCY_BUCKETS), "+Inf")

MetricT = TypeVar("MetricT", bound=MetricWrapperBase)


def label_children(metric: MetricT) -> Callable[..., MetricT]:
    """`metric.labels` remembered per label values: on a hot path, labels() per call adds up."""
    return functools.cache(metric.labels)


class HttpMetrics(Collector):
    """Requests by method, route and status, their latency, and those in flight.

    Every request changes these, so they are plain numbers, rendered as the usual
    families when scraped. prometheus_client's children take a lock and check their
    state on each of the five changes a request made (in flight up and down, the count,
    the histogram's sum and bucket): about 6 % of a cached read's CPU, by profile. An
    instance serves from one event-loop thread, so nothing here needs the lock.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.in_flight: dict[str, int] = {}
        # (method, route, status) -> [count, sum, one count per bucket, then +Inf]
        self.series: dict[tuple[str, str, str], list[float]] = {}
        registry.register(self)

    def started(self, method: str) -> None:
        self.in_flight[method] = self.in_flight.get(method, 0) + 1

    def finished(self, method: str, route: str, status: str, seconds: float) -> None:
        self.in_flight[method] -= 1
        series = self.series.get((method, route, status))
        if series is None:
            series = self.series[method, route, status] = [0.0] * (len(LATENCY_BUCKETS) + 3)
        series[0] += 1
        series[1] += seconds
        series[2 + bisect_left(LATENCY_BUCKETS, seconds)] += 1  # buckets count value <= le

    def collect(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily("http_requests", "HTTP requests", labels=labels)
        latency = HistogramMetricFamily(
            "http_request_duration_seconds", "HTTP request latency", labels=labels
        )
        for key, series in list(self.series.items()):
            requests.add_metric(list(key), series[0])
            cumulative, buckets = 0.0, []
            for bound, count in zip(_LATENCY_LE, series[2:], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric(list(key), buckets, series[1])
        in_flight = GaugeMetricFamily(
            "http_requests_in_flight", "HTTP requests in flight", labels=["method"]
        )
        for method, count in list(self.in_flight.items()):
            in_flight.add_metric([method], count)
        yield from (requests, latency, in_flight)


@dataclass
class Metrics:
    """The instance's metric families; services add their own to `registry`."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        # CPU seconds, resident memory, open files: what the CPU and memory alerts read.
        ProcessCollector(registry=r)
        self.http = HttpMetrics(r)
        self.cache = Counter(
            "cache_requests_total", "Cache lookups", ["prefix", "result"], registry=r
        )
        self.cache_invalidations = Counter(
            "cache_invalidations_total", "Cache invalidations", ["prefix"], registry=r
        )
        self.rate_limited = Counter(
            "rate_limit_rejections_total",
            "Requests rejected by the rate limiter",
            ["group"],
            registry=r,
        )
        self.redis_errors = Counter(
            "redis_errors_total", "Redis commands that failed", ["operation"], registry=r
        )
        self.breaker_state = Gauge(
            "circuit_breaker_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            ["target"],
            registry=r,
        )
        self.outbound = Counter(
            "outbound_requests_total",
            "Calls to other services",
            ["target", "outcome"],
            registry=r,
        )
        self.db_pool_in_use = Gauge(
            "db_pool_connections_in_use", "Database connections checked out", registry=r
        )
        self.db_pool_size = Gauge("db_pool_size", "Database pool size", registry=r)
        self.db_pool_idle = Gauge(
            "db_pool_connections_idle", "Database connections open and idle in the pool", registry=r
        )
        self.db_pool_waiting = Gauge(
            "db_pool_checkouts_waiting",
            "Requests getting a database connection right now (waiting or connecting)",
            registry=r,
        )
        self.db_pool_checkout = Histogram(
            "db_pool_checkout_seconds",
            "Time to get a connection from the pool (a wait for a free one, or a connect)",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.db_query_duration = Histogram(
            "db_query_duration_seconds",
            "Database statement time by kind (SELECT, INSERT, UPDATE, DELETE, other)",
            ["kind"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.db_slow_queries = Counter(
            "db_slow_queries_total",
            "Statements slower than the slow_query_seconds setting",
            ["kind"],
            registry=r,
        )
        self.redis_duration = Histogram(
            "redis_command_duration_seconds",
            "Redis round trips by operation",
            ["operation"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.direct_fallbacks = Counter(
            "direct_answer_fallbacks_total",
            "Direct answers that failed and were left to the FastAPI endpoint",
            ["route"],
            registry=r,
        )
        self.rate_limit_decisions = Counter(
            "rate_limit_decisions_total",
            "Rate limiter decisions (allowed, rejected, failed_open when Redis is down)",
            ["group", "decision"],
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
