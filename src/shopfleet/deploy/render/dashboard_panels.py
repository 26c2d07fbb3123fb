"""Panels as data: a title, a unit and PromQL queries; and the panels of the backing
services (Redis, PostgreSQL, the nginx gateway) over the standard exporters' metrics."""

from __future__ import annotations

from dataclasses import dataclass

JOB = 'job="shopfleet"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]


def query(expr: str, legend: str) -> Query:
    return Query(expr, legend)


def zero_when_absent(expr: str, baseline: str) -> str:
    """`expr`, or zero for every series of `baseline` where `expr` has none yet."""
    return f"({expr}) or ({baseline}) * 0"


def latency(selector: str, by: str, window: str = "1m") -> tuple[Query, ...]:
    return tuple(
        query(
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate(http_request_duration_seconds_bucket{{{selector}}}[{window}])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def redis_panels() -> list[PanelSpec]:
    hits = "rate(redis_keyspace_hits_total[5m])"
    misses = "rate(redis_keyspace_misses_total[5m])"
    return [
        PanelSpec(
            "Commands per second",
            "ops",
            (query("rate(redis_commands_processed_total[1m])", "commands"),),
        ),
        PanelSpec("Hit ratio", "percentunit", (query(f"{hits} / ({hits} + {misses})", "hits"),)),
        PanelSpec(
            "Memory",
            "bytes",
            (
                query("redis_memory_used_bytes", "used"),
                query("redis_memory_max_bytes", "maxmemory"),
            ),
        ),
        PanelSpec(
            "Evicted keys per second",
            "short",
            (query("rate(redis_evicted_keys_total[5m])", "evicted"),),
        ),
        PanelSpec("Connected clients", "short", (query("redis_connected_clients", "clients"),)),
        PanelSpec("Keys", "short", (query("sum(redis_db_keys)", "keys"),)),
    ]


def postgres_panels() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Connections by state",
            "short",
            (query("sum by (state) (pg_stat_activity_count)", "{{state}}"),),
        ),
        PanelSpec(
            "Connections of max_connections",
            "short",
            (
                query("sum(pg_stat_database_numbackends)", "open"),
                query("max(pg_settings_max_connections)", "max_connections"),
            ),
        ),
        PanelSpec(
            "Transactions per second",
            "ops",
            (
                query("sum(rate(pg_stat_database_xact_commit[1m]))", "commits"),
                query("sum(rate(pg_stat_database_xact_rollback[1m]))", "rollbacks"),
            ),
        ),
        PanelSpec(
            "Longest running transaction",
            "s",
            (query("max(pg_stat_activity_max_tx_duration)", "longest"),),
        ),
        PanelSpec(
            "Buffer cache hit ratio",
            "percentunit",
            (
                query(
                    "sum(rate(pg_stat_database_blks_hit[5m])) / (sum(rate(pg_stat_database_blks_hit"
                    "[5m])) + sum(rate(pg_stat_database_blks_read[5m])))",
                    "hit",
                ),
            ),
        ),
        PanelSpec(
            "Deadlocks per second",
            "short",
            (query("sum(rate(pg_stat_database_deadlocks[5m]))", "deadlocks"),),
        ),
        PanelSpec("Database size", "bytes", (query("sum(pg_database_size_bytes)", "size"),)),
    ]


def gateway_panels() -> list[PanelSpec]:
    return [
        PanelSpec("Gateway up", "short", (query("nginx_up", "nginx"),)),
        PanelSpec(
            "Requests per second",
            "reqps",
            (query("rate(nginx_http_requests_total[1m])", "requests"),),
        ),
        PanelSpec(
            "Client connections",
            "short",
            tuple(
                query(f"nginx_connections_{state}", state)
                for state in ("active", "reading", "writing", "waiting")
            ),
        ),
        PanelSpec(
            "Upstream distribution (requests per instance)",
            "reqps",
            (
                query(
                    f"sum by (service, instance) (rate(http_requests_total{{{JOB}}}[1m]))",
                    "{{instance}}",
                ),
            ),
        ),
    ]
