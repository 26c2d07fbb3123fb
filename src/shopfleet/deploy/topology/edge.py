"""The gateway's section of the topology (ports, limits, TLS, micro-cache) and the networks
whose addresses an instance trusts to say who the client is."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from shopfleet.deploy.topology.service import Strict


class Zone(Strict):
    rate: int = Field(ge=1, description="requests per second")
    burst: int = Field(ge=0)


class RateLimits(Strict):
    general: Zone
    auth: Zone
    api: Zone
    connections_per_client: int


class BenchEndpoints(Strict):
    """`/bench/ceiling` (nginx alone) and `/bench/floor` (a bare app): `shopfleet bench`."""

    floor_port: int = Field(default=3099, ge=1, le=65535)


class Gateway(Strict):
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


# The gateway reaches local instances over IPv4 loopback (its upstreams are 127.0.0.1).
LOCAL_PROXIES = ("127.0.0.1/32",)


class Networks(Strict):
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
