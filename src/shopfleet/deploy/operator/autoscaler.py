"""`shopfleet up --autoscale`: the HPA algorithm applied to the local instances.

Every period the controller reads each instance's CPU seconds and resident memory from its
`/metrics` and its readiness, turns them into utilization of the service's resource
requests (as the metrics server does for pods), asks `hpa.decide` for the replicas, caps
scale-ups so the instances' requests never exceed the machine's cores and memory, and
scales through `operate.scale`, the path `shopfleet scale` takes (no request dropped).
Each decision is logged with its inputs, kept in `var/run/autoscaler.json` for `status`
and `top`, and exported as metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from shopfleet.deploy.operator import operate
from shopfleet.deploy.operator.autoscaler_inputs import (
    Reading,
    behavior_from_hpa,
    budget_cap,
    machine_cap,
    read_instance,
    targets_from_hpa,
)
from shopfleet.deploy.operator.hpa import (
    Decision,
    HpaState,
    MetricProposal,
    PodSample,
    decide,
    metric_replicas,
    record_scale,
)
from shopfleet.deploy.operator.runtime import OperateError, RunDir, RunState
from shopfleet.deploy.render.kubernetes_autoscaling import autoscaler_spec
from shopfleet.deploy.render.quantities import cpu_cores, memory_bytes
from shopfleet.deploy.topology import Service, Topology, instance_name

log = logging.getLogger("shopfleet.autoscaler")
STATUS_FILE = "autoscaler.json"


@dataclass
class ServiceStatus:
    service: str
    current: int
    desired: int
    minimum: int
    maximum: int
    cpu_utilization: float | None
    memory_utilization: float | None
    limited_by: str
    decided_at: float


@dataclass
class Controller:
    run_dir: RunDir
    states: dict[str, HpaState] = field(default_factory=dict)
    previous: dict[str, Reading] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    status: dict[str, ServiceStatus] = field(default_factory=dict)

    def samples(
        self, topology: Topology, service: Service, count: int, readiness_delay: float
    ) -> dict[str, list[PodSample]]:
        """Per resource, one sample per instance: usage in the request's unit."""
        cpu: list[PodSample] = []
        memory: list[PodSample] = []
        now = time.monotonic()
        for index in range(1, count + 1):
            name = instance_name(service.name, index)
            ready, reading = read_instance(service.instance_port(index))
            self.started.setdefault(name, now)
            # Like the HPA's initial readiness delay: a new instance's CPU is its start-up.
            ready = ready and now - self.started[name] >= readiness_delay
            before = self.previous.get(name)
            cpu_usage = None
            if reading is not None:
                if before is not None and reading.at > before.at:
                    cpu_usage = (reading.cpu_seconds - before.cpu_seconds) / (
                        reading.at - before.at
                    )
                self.previous[name] = reading
            else:
                self.previous.pop(name, None)
            cpu.append(PodSample(cpu_usage, cpu_cores(service.resources.cpu_request), ready))
            memory.append(
                PodSample(
                    reading.rss_bytes if reading else None,
                    memory_bytes(service.resources.memory_request),
                    ready,
                )
            )
        return {"cpu": cpu, "memory": memory}

    def reconcile(self, echo: Any = log.info) -> list[Decision]:
        state = RunState.load(self.run_dir)
        topology = state.topology_now()
        settings = topology.autoscaling
        decisions = []
        for service in topology.ordered_services():
            spec = autoscaler_spec(topology, service)
            behavior = behavior_from_hpa(spec)
            targets = targets_from_hpa(spec)
            current = state.scale[service.name]
            if current == 0:
                continue  # scaled to zero by hand: the HPA is off, as in Kubernetes
            samples = self.samples(topology, service, current, settings.readiness_delay_seconds)
            proposals = []
            for metric, target in targets.items():
                replicas, utilization = metric_replicas(current, samples[metric], target)
                proposals.append(MetricProposal(metric, utilization, target, replicas))
            now = time.monotonic()
            hpa_state = self.states.setdefault(service.name, HpaState())
            decision = decide(
                current=current,
                proposals=proposals,
                minimum=service.hpa.min,
                maximum=service.hpa.max,
                behavior=behavior,
                state=hpa_state,
                now=now,
            )
            desired, capped = machine_cap(topology, state.scale, service, decision.desired)
            desired, over_budget = budget_cap(topology, state.scale, service, desired)
            limited_by = decision.limited_by
            if capped or over_budget:
                limited_by = "MachineCapacity" if capped else "ConnectionBudget"
            by_metric = {p.metric: p for p in proposals}
            self.status[service.name] = ServiceStatus(
                service=service.name,
                current=current,
                desired=desired,
                minimum=service.hpa.min,
                maximum=service.hpa.max,
                cpu_utilization=by_metric["cpu"].utilization if "cpu" in by_metric else None,
                memory_utilization=(
                    by_metric["memory"].utilization if "memory" in by_metric else None
                ),
                limited_by=limited_by,
                decided_at=time.time(),
            )
            log.info(
                "autoscaling decision",
                extra={
                    "service": service.name,
                    "current": current,
                    "desired": desired,
                    "metric_desired": decision.metric_desired,
                    "stabilized": decision.stabilized,
                    "limited_by": limited_by,
                    "metrics": [
                        {
                            "metric": p.metric,
                            "utilization": None
                            if p.utilization is None
                            else round(p.utilization, 1),
                            "target": p.target,
                            "replicas": p.replicas,
                        }
                        for p in proposals
                    ],
                },
            )
            decisions.append(decision)
            if desired != current:
                try:
                    operate.scale(
                        run_dir=self.run_dir, service=service.name, count=desired, echo=echo
                    )
                except OperateError as exc:  # another scale or reload: try next period
                    log.warning(
                        "scale deferred", extra={"service": service.name, "error": str(exc)}
                    )
                    continue
                record_scale(hpa_state, behavior, before=current, after=desired, now=now)
                state = RunState.load(self.run_dir)
        self._write_status()
        return decisions

    def _write_status(self) -> None:
        path = self.run_dir.run / STATUS_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({name: asdict(s) for name, s in self.status.items()}, indent=2))
        tmp.replace(path)


def read_status(run_dir: RunDir) -> dict[str, dict[str, Any]]:
    """The controller's last decision per service, or nothing when it is not running."""
    path = run_dir.run / STATUS_FILE
    if not path.exists():
        return {}
    try:
        data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


class AutoscalerMetrics:
    def __init__(self, port: int) -> None:
        registry = CollectorRegistry()
        labels = ["service"]
        self.current = Gauge(
            "shopfleet_autoscaler_current_replicas", "Instances running", labels, registry=registry
        )
        self.desired = Gauge(
            "shopfleet_autoscaler_desired_replicas",
            "Instances the HPA algorithm decided",
            labels,
            registry=registry,
        )
        self.maximum = Gauge(
            "shopfleet_autoscaler_max_replicas", "The service's hpa.max", labels, registry=registry
        )
        self.minimum = Gauge(
            "shopfleet_autoscaler_min_replicas", "The service's hpa.min", labels, registry=registry
        )
        self.decided = Gauge(
            "shopfleet_autoscaler_last_decision_timestamp_seconds",
            "When the controller last decided",
            labels,
            registry=registry,
        )
        start_http_server(port, addr="127.0.0.1", registry=registry)

    def update(self, status: Mapping[str, ServiceStatus]) -> None:
        for name, s in status.items():
            self.current.labels(name).set(s.current)
            self.desired.labels(name).set(s.desired)
            self.maximum.labels(name).set(s.maximum)
            self.minimum.labels(name).set(s.minimum)
            self.decided.labels(name).set(s.decided_at)


def run(run_dir: RunDir) -> None:
    """The controller loop (a supervised program of `up --autoscale`)."""
    topology = RunState.load(run_dir).topology_now()
    settings = topology.autoscaling
    metrics = AutoscalerMetrics(settings.metrics_port)
    controller = Controller(run_dir)
    log.info("autoscaler started", extra={"period_seconds": settings.period_seconds})
    while True:
        started = time.monotonic()
        try:
            controller.reconcile()
            metrics.update(controller.status)
        except (OperateError, OSError, httpx.HTTPError) as exc:
            log.warning("reconcile failed", extra={"error": repr(exc)})
        time.sleep(max(0.0, settings.period_seconds - (time.monotonic() - started)))


def format_decisions(status: Mapping[str, Mapping[str, Any]]) -> str:
    """The controller's last decision per service, for `shopfleet status`."""

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    lines = [
        f"{'AUTOSCALER':<12} {'CURRENT':>7} {'DESIRED':>7} {'MIN':>4} {'MAX':>4} "
        f"{'CPU':>6} {'MEMORY':>7}  LIMITED BY"
    ]
    for name, s in status.items():
        lines.append(
            f"{name:<12} {s['current']:>7} {s['desired']:>7} {s['minimum']:>4} {s['maximum']:>4} "
            f"{percent(s['cpu_utilization']):>6} {percent(s['memory_utilization']):>7}  "
            f"{s['limited_by']}"
        )
    return "\n".join(lines)
