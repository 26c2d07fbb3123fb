"""Kubernetes resource quantities ("250m", "512Mi") as numbers, and the memory ceiling
that restarts an instance."""

from __future__ import annotations

from shopfleet.deploy.topology import Service, Topology


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("250m", "1") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "1Gi") in bytes."""
    for power, suffix in enumerate(("Ki", "Mi", "Gi"), start=1):
        if quantity.endswith(suffix):
            return int(quantity[:-2]) * (1 << (10 * power))
    raise ValueError(f"use Ki, Mi or Gi for memory quantities, not {quantity!r}")


def memory_ceiling(topology: Topology, service: Service) -> int:
    """Where an instance is restarted: the process ceiling or the container limit, lower."""
    return min(
        topology.process.memory_ceiling_mb * 2**20, memory_bytes(service.resources.memory_limit)
    )
