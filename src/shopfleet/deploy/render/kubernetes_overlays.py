"""kustomize: the Kustomization documents and the dev and prod overlays over the base."""

from __future__ import annotations

from typing import Any

from shopfleet import __version__
from shopfleet.deploy.render.kubernetes_platform import ROOT
from shopfleet.deploy.render.manifests import dump, header
from shopfleet.deploy.topology import Topology

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"


def kustomization(**fields: Any) -> str:
    return dump({"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", **fields})


def overlays(topology: Topology) -> dict[str, str]:
    namespace = topology.project.namespace
    services = topology.ordered_services()
    no_autoscaling = [
        "$patch: delete\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
        f"metadata:\n  name: {service.name}\n  namespace: {namespace}\n"
        for service in services
    ]
    dev = kustomization(
        resources=["../../base"],
        replicas=[{"name": service.name, "count": 1} for service in services],
        patches=[{"patch": patch} for patch in no_autoscaling],
    )
    spread = [
        dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": service.name, "namespace": namespace},
                "spec": {
                    "template": {
                        "spec": {
                            "topologySpreadConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": key,
                                    "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {
                                        "matchLabels": {"app.kubernetes.io/name": service.name}
                                    },
                                }
                                for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
                            ]
                        }
                    }
                },
            }
        )
        for service in services
    ]
    prod = kustomization(
        resources=["../../base"],
        images=[{"name": topology.project.image.split(":")[0], "newTag": __version__}],
        patches=[{"patch": patch} for patch in spread],
    )
    return {
        f"{ROOT}/overlays/dev/kustomization.yaml": header(
            topology,
            "Development: one replica of every service, no autoscaling.",
            "  kubectl apply -k deploy/kubernetes/overlays/dev",
        )
        + dev,
        f"{ROOT}/overlays/prod/kustomization.yaml": header(
            topology,
            "Production: the base, a pinned image tag, pods spread over nodes and zones.",
            "  kubectl apply -k deploy/kubernetes/overlays/prod",
        )
        + prod,
    }
