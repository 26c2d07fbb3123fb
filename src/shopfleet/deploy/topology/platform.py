"""The platform sections of the topology: project, autoscaling policy, processes, Redis,
the database's connection budget, local runs and monitoring thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopfleet.deploy.topology.service import Resources, Strict


class ScalePolicy(Strict):
    stabilization_seconds: int
    percent: int
    pods: int
    period_seconds: int


class Autoscaling(Strict):
    cpu_target: int = 70
    memory_target: int = 80
    scale_up: ScalePolicy
    scale_down: ScalePolicy
    # One machine (`shopfleet up --autoscale`, or enabled here): the controller's loop.
    enabled: bool = False
    period_seconds: float = Field(default=15, gt=0)  # kube-controller-manager's sync period
    readiness_delay_seconds: float = Field(default=30, ge=0)  # a new instance's CPU is ignored
    metrics_port: int = 9095


class Process(Strict):
    memory_ceiling_mb: int = 500
    shutdown_timeout: int = 25
    # How often the local memory watchdog looks (supervisor TICK events: 5, 60 or 3600 s).
    memory_check_seconds: Literal[5, 60, 3600] = 60


class Project(Strict):
    name: str = "shopfleet"
    namespace: str = "ecommerce"
    image: str = "shopfleet:latest"
    currency: str = "USD"


class Redis(Strict):
    resources: Resources


class Database(Strict):
    """The PostgreSQL connection budget (docs/deployment.md, "Connection budget").

    Every instance's pool together (for Kubernetes: every HPA at its maximum) must fit in
    max_connections - reserved; `render` checks this value, `up` and `scale` the server's.
    """

    max_connections: int = Field(default=100, ge=1)  # the server's (rendered for Kubernetes)
    reserved: int = Field(default=10, ge=0)  # migrations, psql, exporters, superuser slots
    pool_size: int = Field(default=6, ge=1)  # per instance, unless a service sets its own
    pool_min: int = Field(default=2, ge=0)  # kept open by an idle instance
    idle_timeout: int = Field(default=30, ge=1)  # seconds before a surplus connection closes
    # Kubernetes: "auto" puts PgBouncer in front when the HPA maximums do not fit.
    pooler: Literal["auto", "pgbouncer", "none"] = "auto"
    pgbouncer_image: str = "shopfleet-pgbouncer:latest"

    @property
    def budget(self) -> int:
        """Connections the services may hold together."""
        return self.max_connections - self.reserved


class Local(Strict):
    """One-machine runs (`shopfleet up`)."""

    redis_port: int = 6390  # the private redis-server, when SHOPFLEET_REDIS_URL is unset


class Monitoring(Strict):
    """Prometheus, Alertmanager and exporters, and the alert thresholds."""

    scrape_interval: int = Field(default=5, ge=1, description="seconds")
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    redis_exporter_port: int = 9121
    postgres_exporter_port: int = 9187
    nginx_exporter_port: int = 9113
    cpu_ratio: float = 0.8  # of an instance's CPU limit, for 5 minutes
    memory_ratio: float = 0.9  # of the memory ceiling that restarts an instance
    error_ratio: float = 0.05  # of a service's responses being 5xx
    p99_seconds: float = 0.5
    cache_hit_ratio: float = 0.5
    pool_ratio: float = 0.9  # of an instance's database pool checked out
    pool_wait_seconds: float = 0.1  # p99 time to get a database connection
    uneven_ratio: float = 3.0  # busiest / idlest instance of one service
    stock_rejection_ratio: float = 0.25  # of orders rejected for short stock
