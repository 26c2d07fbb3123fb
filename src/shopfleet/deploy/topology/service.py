"""A service's section of the topology: instances, ports, resources, HPA, cache, limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(Strict):
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


class Hpa(Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)


class Cache(Strict):
    list_ttl: int = 300
    detail_ttl: int = 900
    warm_recent: int = 20


class RateLimit(Strict):
    requests: int = Field(ge=1)
    window: int = Field(ge=1, description="seconds")


class Service(Strict):
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


def instance_name(service: str, index: int) -> str:
    """The name of an instance everywhere: supervisor program, X-Instance, logs."""
    return f"{service}-{index}"
