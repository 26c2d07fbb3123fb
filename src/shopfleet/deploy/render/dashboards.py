"""Grafana dashboards as code (grafana-foundation-sdk), committed as JSON, and Grafana's
provisioning files that load them."""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from shopfleet.deploy.render.dashboard_panels import (
    PanelSpec,
    gateway_panels,
    postgres_panels,
    redis_panels,
)
from shopfleet.deploy.render.dashboard_services import overview_panels, service_panels
from shopfleet.deploy.topology import Topology

DIRECTORY = "deploy/monitoring/dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")


def build_dashboard(uid: str, title: str, panels: list[PanelSpec]) -> str:
    builder = (
        gd.Dashboard(title)
        .uid(f"shopfleet-{uid}")
        .tags(["shopfleet"])
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("browser")
    )
    for panel in panels:
        chart = timeseries.Panel().title(panel.title).unit(panel.unit).datasource(DATASOURCE)
        chart = chart.height(8).span(12)
        for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
            chart = chart.with_target(
                prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
            )
        builder = builder.with_panel(chart)
    return json.dumps(builder.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def dashboards(topology: Topology) -> dict[str, tuple[str, list[PanelSpec]]]:
    """uid -> (title, panels) for every dashboard."""
    boards: dict[str, tuple[str, list[PanelSpec]]] = {
        "overview": ("shopfleet overview", overview_panels())
    }
    for service in topology.ordered_services():
        boards[service.name] = (f"shopfleet {service.name}", service_panels(service.name))
    boards["redis"] = ("shopfleet Redis", redis_panels())
    boards["postgres"] = ("shopfleet PostgreSQL", postgres_panels())
    boards["gateway"] = ("shopfleet gateway (nginx)", gateway_panels())
    return boards


PROVISIONING_DATASOURCE = """\
# Grafana provisioning: the Prometheus that scrapes shopfleet, under the uid the dashboards use.
apiVersion: 1
datasources:
  - name: Prometheus
    uid: prometheus
    type: prometheus
    access: proxy
    url: http://prometheus:9090
    isDefault: true
"""

PROVISIONING_DASHBOARDS = """\
# Grafana provisioning: load every dashboard JSON in this folder.
apiVersion: 1
providers:
  - name: shopfleet
    folder: shopfleet
    type: file
    options:
      path: /var/lib/grafana/dashboards/shopfleet
"""


def render_dashboards(topology: Topology) -> dict[str, str]:
    files = {
        f"{DIRECTORY}/{uid}.json": build_dashboard(uid, title, panels)
        for uid, (title, panels) in dashboards(topology).items()
    }
    files["deploy/monitoring/grafana/datasources.yml"] = PROVISIONING_DATASOURCE
    files["deploy/monitoring/grafana/dashboards.yml"] = PROVISIONING_DASHBOARDS
    return files
