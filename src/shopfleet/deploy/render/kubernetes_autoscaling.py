"""A service's HorizontalPodAutoscaler (autoscaling/v2 with the topology's behaviour) and
PodDisruptionBudget; the local autoscaler reads its numbers from the same spec."""

from __future__ import annotations

from typing import Any

from shopfleet.deploy.render.kubernetes_platform import metadata
from shopfleet.deploy.topology import ScalePolicy, Service, Topology


def _policies(policy: ScalePolicy, select: str) -> dict[str, Any]:
    period = policy.period_seconds
    return {
        "stabilizationWindowSeconds": policy.stabilization_seconds,
        "selectPolicy": select,
        "policies": [
            {"type": "Percent", "value": policy.percent, "periodSeconds": period},
            {"type": "Pods", "value": policy.pods, "periodSeconds": period},
        ],
    }


def _utilization(resource: str, target: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": resource,
            "target": {"type": "Utilization", "averageUtilization": target},
        },
    }


def horizontal_autoscaler(topology: Topology, service: Service) -> dict[str, Any]:
    scaling = topology.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(topology, service.name, "service"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
            "minReplicas": service.hpa.min,
            "maxReplicas": service.hpa.max,
            "metrics": [
                _utilization("cpu", scaling.cpu_target),
                _utilization("memory", scaling.memory_target),
            ],
            "behavior": {
                "scaleUp": _policies(scaling.scale_up, "Max"),
                "scaleDown": _policies(scaling.scale_down, "Min"),
            },
        },
    }


def autoscaler_spec(topology: Topology, service: Service) -> dict[str, Any]:
    """The HPA spec of a service; the local autoscaler reads its numbers from it too."""
    spec: dict[str, Any] = horizontal_autoscaler(topology, service)["spec"]
    return spec


def disruption_budget(topology: Topology, service: Service) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(topology, service.name, "service"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": service.name}},
        },
    }
