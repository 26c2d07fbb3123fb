"""Helpers shared by the Compose and Kubernetes renderers: YAML output and unit conversion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from shopfleet.deploy.topology import Service, Topology

# Inside a container: its own /tmp, and every interface of its own network namespace.
CONTAINER_TMP = "/tmp"  # noqa: S108
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
# A cache and limiter store: nothing persisted. volatile-lru evicts only keys with a TTL,
# never the generation counters that invalidate cached lists.
REDIS_COMMAND = [
    *("redis-server", "--save", "", "--appendonly", "no"),
    *("--maxmemory", "384mb", "--maxmemory-policy", "volatile-lru"),
]


def serve_command(service: Service) -> list[str]:
    """One instance in a container. `--instance auto`: X-Instance carries the container's
    (or pod's) name, so replicas started alike differ."""
    port = str(service.port)
    return ["serve", service.name, "--host", ALL_INTERFACES, "--port", port, "--instance", "auto"]


class _Dumper(yaml.SafeDumper):
    """Plain block YAML: no anchors or aliases, lists indented under their key."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list_presenter(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    """Short lists of scalars on one line (commands, healthchecks), the rest as blocks."""
    scalars = all(isinstance(item, str | int | float) for item in value)
    flow = scalars and sum(len(str(item)) + 2 for item in value) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(list, _list_presenter)


def header(topology: Topology, *lines: str) -> str:
    """The comment every rendered YAML file starts with."""
    text = [
        f"# Rendered by `shopfleet render` from shopfleet.toml (profile {topology.profile}).",
        "# Do not edit: change the topology and render again.",
        *(f"# {line}" if line else "#" for line in lines),
    ]
    return "\n".join(text) + "\n"


def dump(document: dict[str, Any]) -> str:
    return str(yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000))


def dump_all(documents: Iterable[dict[str, Any]]) -> str:
    return "---\n" + "---\n".join(dump(document) for document in documents)


def cpus(quantity: str) -> str:
    """A Kubernetes CPU quantity ("500m", "1") as Compose's decimal cpus ("0.5", "1")."""
    value = int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    return f"{value:g}"


def megabytes(quantity: str) -> str:
    """A Kubernetes memory quantity ("512Mi", "1Gi") as a Compose size ("512M", "1G")."""
    for suffix in ("Ki", "Mi", "Gi"):
        if quantity.endswith(suffix):
            return quantity[:-2] + suffix[0]
    raise ValueError(f"use Ki, Mi or Gi for memory quantities, not {quantity!r}")
