"""Prometheus metrics of one instance (one registry per app, never multiprocess mode)."""

from __future__ import annotations

import functools
from collections.abc import Callable
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

# Database statements and Redis commands are mostly sub-millisecond.
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


MetricT = TypeVar("MetricT", bound=MetricWrapperBase)


def label_children(metric: MetricT) -> Callable[..., MetricT]:
    """`metric.labels` remembered per label values: on a hot path, labels() per call adds up."""
    return functools.cache(metric.labels)


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
        self.requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests in flight", ["method"], registry=r
        )
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
