"""The whole topology file (`shopfleet.toml`): its sections, profiles and loading."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from shopfleet.common.settings import SERVICES
from shopfleet.deploy.topology.edge import Gateway, Networks
from shopfleet.deploy.topology.platform import (
    Autoscaling,
    Database,
    Local,
    Monitoring,
    Process,
    Project,
    Redis,
)
from shopfleet.deploy.topology.service import Service, Strict

DEFAULT_PATH = Path("shopfleet.toml")


class Topology(Strict):
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
