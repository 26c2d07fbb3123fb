"""What the autoscaler controller decides from: the HPA rules and targets of the rendered
manifests, each instance's readiness, CPU and memory, and the caps a scale-up meets (the
machine's cores and memory, the database connection budget)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from shopfleet.deploy.operator.hpa import Behavior, Policy, Rules
from shopfleet.deploy.operator.runtime import with_scale
from shopfleet.deploy.render import budget
from shopfleet.deploy.render.quantities import cpu_cores, memory_bytes
from shopfleet.deploy.topology import Service, Topology


def _rules(spec: Mapping[str, Any]) -> Rules:
    return Rules(
        stabilization_seconds=int(spec.get("stabilizationWindowSeconds", 0)),
        policies=tuple(
            Policy(p["type"], int(p["value"]), int(p["periodSeconds"])) for p in spec["policies"]
        ),
        select_policy=spec.get("selectPolicy", "Max"),
    )


def behavior_from_hpa(spec: Mapping[str, Any]) -> Behavior:
    """The behaviour of a rendered HorizontalPodAutoscaler's spec: one source of numbers."""
    behavior = spec["behavior"]
    return Behavior(scale_up=_rules(behavior["scaleUp"]), scale_down=_rules(behavior["scaleDown"]))


def targets_from_hpa(spec: Mapping[str, Any]) -> dict[str, float]:
    """Resource name -> target utilization percent."""
    return {
        m["resource"]["name"]: float(m["resource"]["target"]["averageUtilization"])
        for m in spec["metrics"]
        if m["type"] == "Resource"
    }


@dataclass
class Reading:
    cpu_seconds: float
    rss_bytes: float
    at: float


def read_instance(port: int) -> tuple[bool, Reading | None]:
    """Readiness, and the process's CPU seconds and RSS from its /metrics."""
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return False, None
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
                values[sample.name] = sample.value
    if len(values) < 2:
        return ready, None
    return ready, Reading(
        values["process_cpu_seconds_total"],
        values["process_resident_memory_bytes"],
        time.monotonic(),
    )


def machine_cap(
    topology: Topology, scale: Mapping[str, int], service: Service, desired: int
) -> tuple[int, bool]:
    """Limit a scale-up so all instances' requests fit the machine's cores and memory."""
    current = scale.get(service.name, 0)
    if desired <= current:
        return desired, False
    cores = float(os.cpu_count() or 1)
    memory = float(psutil.virtual_memory().total)
    used_cpu = sum(
        cpu_cores(s.resources.cpu_request) * scale.get(s.name, 0)
        for s in topology.ordered_services()
    )
    used_memory = sum(
        memory_bytes(s.resources.memory_request) * scale.get(s.name, 0)
        for s in topology.ordered_services()
    )
    room_cpu = (cores - used_cpu) / cpu_cores(service.resources.cpu_request)
    room_memory = (memory - used_memory) / memory_bytes(service.resources.memory_request)
    allowed = current + max(0, int(min(room_cpu, room_memory)))
    return (allowed, True) if desired > allowed else (desired, False)


def budget_cap(
    topology: Topology, scale: Mapping[str, int], service: Service, desired: int
) -> tuple[int, bool]:
    """Limit a scale-up to what the database connection budget holds (as `scale` checks)."""
    current = scale.get(service.name, 0)
    allowed = desired
    while allowed > current:
        try:
            budget.check_local(with_scale(topology, {**scale, service.name: allowed}))
        except budget.BudgetError:
            allowed -= 1
            continue
        break
    return allowed, allowed < desired
