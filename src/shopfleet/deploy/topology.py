"""The topology file (`shopfleet.toml`): per-service scale, resources and limits."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shopfleet.common.settings import SERVICES

DEFAULT_PATH = Path("shopfleet.toml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


class Hpa(_Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)


class Cache(_Strict):
    list_ttl: int = 300
    detail_ttl: int = 900
    warm_recent: int = 20


class RateLimit(_Strict):
    requests: int = Field(ge=1)
    window: int = Field(ge=1, description="seconds")


class Service(_Strict):
    name: str = ""
    instances: int = Field(ge=0)
    port: int = Field(ge=1, le=65535)
    hpa: Hpa
    resources: Resources
    cache: Cache | None = None
    rate_limit: RateLimit | None = None
    # Per instance; unset means [database]'s (filled in when the topology loads).
    pool_size: int | None = Field(default=None, ge=1)
    pool_min: int | None = Field(default=None, ge=0)
    pool_idle_timeout: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _floor_within_pool(self) -> Service:
        if (self.pool_min or 0) > (self.pool_size or self.pool_min or 0):
            raise ValueError(f"{self.name}: pool_min {self.pool_min} > pool_size {self.pool_size}")
        return self

    @property
    def pool(self) -> int:
        """Database connections one instance may hold."""
        if self.pool_size is None:
            raise ValueError(f"{self.name}: pool size not resolved from [database]")
        return self.pool_size

    def instance_port(self, index: int) -> int:
        """Port of instance `index` (1-based): base + 10 * (index - 1)."""
        return self.port + 10 * (index - 1)

    def environment(self) -> dict[str, str]:
        """The SHOPFLEET_* variables that carry this service's tuning to its processes."""
        env = {"SHOPFLEET_SERVICE": self.name}
        if self.cache is not None:
            env["SHOPFLEET_CACHE_LIST_TTL"] = str(self.cache.list_ttl)
            env["SHOPFLEET_CACHE_DETAIL_TTL"] = str(self.cache.detail_ttl)
            env["SHOPFLEET_CACHE_WARM_RECENT"] = str(self.cache.warm_recent)
        if self.rate_limit is not None:
            env["SHOPFLEET_RATE_LIMIT_REQUESTS"] = str(self.rate_limit.requests)
            env["SHOPFLEET_RATE_LIMIT_WINDOW"] = str(self.rate_limit.window)
        if self.pool_size is not None:
            env["SHOPFLEET_DATABASE_POOL_SIZE"] = str(self.pool_size)
        if self.pool_min is not None:
            env["SHOPFLEET_DATABASE_POOL_MIN"] = str(self.pool_min)
        if self.pool_idle_timeout is not None:
            env["SHOPFLEET_DATABASE_IDLE_TIMEOUT"] = str(self.pool_idle_timeout)
        return env


class Zone(_Strict):
    rate: int = Field(ge=1, description="requests per second")
    burst: int = Field(ge=0)


class RateLimits(_Strict):
    general: Zone
    auth: Zone
    api: Zone
    connections_per_client: int


class BenchEndpoints(_Strict):
    """`/bench/ceiling` (nginx alone) and `/bench/floor` (a bare app): `shopfleet bench`."""

    floor_port: int = Field(default=3099, ge=1, le=65535)


class Gateway(_Strict):
    public_port: int = 8080
    https_port: int = 8443
    internal_host: str = "127.0.0.1"
    internal_port: int = 8081
    upstream_keepalive: int = 128
    upstream_keepalive_timeout: int = 60
    # The longest an anonymous reader may see an old answer (nginx renders one less).
    micro_cache_seconds: int = Field(default=5, ge=2)
    client_max_body_size: str = "1m"
    proxy_read_timeout: int = 35
    tls_certificate: str = ""
    tls_certificate_key: str = ""
    rate_limits: RateLimits
    bench: BenchEndpoints | None = None  # only in a load-test profile

    @property
    def tls(self) -> bool:
        return bool(self.tls_certificate and self.tls_certificate_key)


class ScalePolicy(_Strict):
    stabilization_seconds: int
    percent: int
    pods: int
    period_seconds: int


class Autoscaling(_Strict):
    cpu_target: int = 70
    memory_target: int = 80
    scale_up: ScalePolicy
    scale_down: ScalePolicy
    # One machine (`shopfleet up --autoscale`, or enabled here): the controller's loop.
    enabled: bool = False
    period_seconds: float = Field(default=15, gt=0)  # kube-controller-manager's sync period
    readiness_delay_seconds: float = Field(default=30, ge=0)  # a new instance's CPU is ignored
    metrics_port: int = 9095


class Process(_Strict):
    memory_ceiling_mb: int = 500
    shutdown_timeout: int = 25
    # How often the local memory watchdog looks (supervisor TICK events: 5, 60 or 3600 s).
    memory_check_seconds: Literal[5, 60, 3600] = 60


class Project(_Strict):
    name: str = "shopfleet"
    namespace: str = "ecommerce"
    image: str = "shopfleet:latest"
    currency: str = "USD"


class Redis(_Strict):
    resources: Resources


class Database(_Strict):
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


class Local(_Strict):
    """One-machine runs (`shopfleet up`)."""

    redis_port: int = 6390  # the private redis-server, when SHOPFLEET_REDIS_URL is unset


# The gateway reaches local instances over IPv4 loopback (its upstreams are 127.0.0.1).
LOCAL_PROXIES = ("127.0.0.1/32",)


class Networks(_Strict):
    """Where the gateway reaches the instances from, per deployment: the only peers whose
    X-Forwarded-For an instance believes (`SHOPFLEET_TRUSTED_PROXIES`)."""

    # The Compose network, rendered with this subnet; change it if it overlaps another.
    compose_subnet: str = "172.30.64.0/24"
    # The cluster's pod network, where the ingress controller's pods live; it must match
    # the cluster (`kubectl cluster-info dump | grep -m1 cluster-cidr`).
    kubernetes_pod_cidr: str = "10.244.0.0/16"

    @field_validator("compose_subnet", "kubernetes_pod_cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        return str(ipaddress.ip_network(value, strict=True))


class Monitoring(_Strict):
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


class Topology(_Strict):
    profile: str = "default"
    project: Project
    gateway: Gateway
    autoscaling: Autoscaling
    process: Process
    services: dict[str, Service]
    redis: Redis
    database: Database = Database()
    local: Local = Local()
    networks: Networks = Networks()
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="before")
    @classmethod
    def _name_services(cls, data: Any) -> Any:
        services = data.get("services", {})
        for name, service in services.items():
            if name not in SERVICES:
                raise ValueError(f"unknown service {name!r}")
            service.setdefault("name", name)
            database = data.get("database", {})
            service.setdefault("pool_size", database.get("pool_size", Database().pool_size))
            service.setdefault("pool_min", database.get("pool_min", Database().pool_min))
            service.setdefault(
                "pool_idle_timeout", database.get("idle_timeout", Database().idle_timeout)
            )
        missing = set(SERVICES) - set(services)
        if missing:
            raise ValueError(f"services missing from the topology: {sorted(missing)}")
        return data

    def ordered_services(self) -> list[Service]:
        """Services in the canonical order (auth, users, categories, products, orders)."""
        return [self.services[name] for name in SERVICES]


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class TopologyError(ValueError):
    """The topology file is missing, unreadable or invalid; the message says which and why."""


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TopologyError(
            f"no topology file at {path.resolve()}: run shopfleet from the repository root, "
            "or name the file with --topology (or SHOPFLEET_TOPOLOGY)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"cannot read the topology file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"the topology file {path} is not valid TOML: {exc}") from None


def load_topology(path: Path = DEFAULT_PATH, profile: str = "default") -> Topology:
    """Read the topology file, apply a profile's overlay, and validate the result."""
    data = _read(path)
    profiles: dict[str, Any] = data.pop("profiles", {})
    if profile != "default":
        if profile not in profiles:
            known = ", ".join(["default", *profiles])
            raise TopologyError(f"unknown profile {profile!r} in {path}; known: {known}")
        data = _merge(data, profiles[profile])
    data["profile"] = profile
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()
        )
        raise TopologyError(f"the topology file {path} is not valid: {problems}") from None


def profiles(path: Path = DEFAULT_PATH) -> list[str]:
    return ["default", *_read(path).get("profiles", {})]
