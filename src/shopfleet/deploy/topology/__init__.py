"""The topology file (`shopfleet.toml`): per-service scale, resources and limits.

Renderers and the operator both read it; it imports neither.
"""

from shopfleet.deploy.topology.edge import (
    LOCAL_PROXIES,
    BenchEndpoints,
    Gateway,
    Networks,
    RateLimits,
    Zone,
)
from shopfleet.deploy.topology.platform import (
    Autoscaling,
    Database,
    Local,
    Monitoring,
    Process,
    Project,
    Redis,
    ScalePolicy,
)
from shopfleet.deploy.topology.root import (
    DEFAULT_PATH,
    Topology,
    TopologyError,
    load_topology,
    profiles,
)
from shopfleet.deploy.topology.service import (
    Cache,
    Hpa,
    RateLimit,
    Resources,
    Service,
    instance_name,
)

__all__ = [
    "DEFAULT_PATH",
    "LOCAL_PROXIES",
    "Autoscaling",
    "BenchEndpoints",
    "Cache",
    "Database",
    "Gateway",
    "Hpa",
    "Local",
    "Monitoring",
    "Networks",
    "Process",
    "Project",
    "RateLimit",
    "RateLimits",
    "Redis",
    "Resources",
    "ScalePolicy",
    "Service",
    "Topology",
    "TopologyError",
    "Zone",
    "instance_name",
    "load_topology",
    "profiles",
]
