"""Settings for one service instance, read from `SHOPFLEET_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("auth", "users", "categories", "products", "orders")
ServiceName = Literal["auth", "users", "categories", "products", "orders"]


class Settings(BaseSettings):
    """Everything one instance needs; secrets and URLs come from the environment."""

    model_config = SettingsConfigDict(env_prefix="SHOPFLEET_", extra="ignore")

    # Required: every instance says which service it is (SHOPFLEET_SERVICE or the argument);
    # an unnamed Settings() silently becoming auth's was a trap.
    service: ServiceName
    instance: str = ""
    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")

    # Database: unset means one SQLite file per service under `data_dir/data/`.
    # A PostgreSQL URL is shared by every service; each keeps its tables in its own schema.
    database_url: str | None = None
    database_schema_prefix: str = ""
    # Pool sizes come from the topology's connection budget ([database] in shopfleet.toml):
    # every instance's pool together stays under PostgreSQL's max_connections.
    database_pool_size: int = Field(default=6, ge=1)
    # Connections an idle instance keeps open (opened at start); the rest close once idle
    # for database_idle_timeout seconds, so a burst's connections go back to the server.
    database_pool_min: int = Field(default=2, ge=0)
    database_idle_timeout: float = Field(default=30.0, gt=0)
    database_pool_timeout: float = 5.0
    # Behind PgBouncer in transaction mode (Kubernetes beyond the budget): no named
    # prepared statements survive a transaction, and no search_path at connect time.
    database_pgbouncer: bool = False
    database_echo: bool = False
    # Statements slower than this count in db_slow_queries_total and are logged.
    slow_query_seconds: float = 0.5

    redis_url: str | None = None
    redis_key_prefix: str = "shopfleet:"
    # A Redis round trip slower than this counts as Redis down: requests are served
    # uncached and unlimited (RedisGuard) rather than waiting on it.
    redis_timeout: float = Field(default=0.5, gt=0)

    # Service-to-service calls go through the gateway's internal listener.
    internal_url: str = "http://127.0.0.1:8081"
    # Per target service, a base URL that replaces internal_url (Kubernetes: Service DNS names).
    service_urls: dict[str, str] = Field(default_factory=dict)
    internal_token: SecretStr | None = None
    http_timeout: float = 3.0
    breaker_failure_ratio: float = 0.5
    breaker_min_calls: int = 5
    # Seed: open at 50 % errors, retry after 30 s. The 30 s is the cap of the probe pause,
    # which starts at breaker_probe_delay and doubles per failed probe (see http.py).
    breaker_reset_timeout: float = 30.0
    breaker_probe_delay: float = 1.0

    # Tokens.
    jwt_issuer: str = "shopfleet-auth"
    jwt_audience: str = "shopfleet"
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    jwt_public_key: str | None = None
    jwt_public_key_file: Path | None = None
    jwks_url: str | None = None
    # How long a starting instance waits for the JWKS before it starts not-ready (see app.py).
    jwks_startup_timeout: float = Field(default=10.0, ge=0)
    access_token_ttl: int = Field(default=900, ge=30)
    session_idle_timeout: int = Field(default=3600, ge=60)

    # Password hashing (argon2id); lower the costs only in tests.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 4

    # HTTP behaviour.
    request_timeout: float = 30.0
    max_body_size: int = 1024 * 1024
    gzip_minimum_size: int = 1024
    shutdown_timeout: float = 25.0
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    access_log: bool = True
    log_level: str = "INFO"

    currency: str = "USD"

    # Caching and rate limiting (rendered from the topology file per service).
    cache_enabled: bool = True
    cache_list_ttl: int = 300
    cache_detail_ttl: int = 900
    cache_warm_recent: int = 20
    rate_limit_enabled: bool = True
    rate_limit_requests: int = 100
    rate_limit_window: int = 900

    # Orders saga.
    sweeper_interval: float = 10.0
    sweeper_pending_age: float = 30.0

    @property
    def instance_name(self) -> str:
        return self.instance or f"{self.service}-1"

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url) and self.database_url.startswith("postgresql")  # type: ignore[union-attr]

    def database_url_for(self, service: str | None = None) -> str:
        """Return the SQLAlchemy URL of a service's database."""
        service = service or self.service
        if self.database_url:
            return self.database_url
        path = (self.data_dir / "data" / f"{service}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"

    def database_schema_for(self, service: str | None = None) -> str | None:
        """Return the PostgreSQL schema that holds a service's tables (None on SQLite)."""
        if not self.is_postgres:
            return None
        return f"{self.database_schema_prefix}{service or self.service}"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"
