"""Prometheus configuration and alert rules: promtool checks them, and unit-tests each alert."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shopfleet.deploy.render import alerts, monitoring
from shopfleet.deploy.topology import load_topology
from tests.support import REPO_ROOT

# Debian's prometheus package has it; scripts/setup installs it.
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

TOPOLOGY = load_topology(REPO_ROOT / "shopfleet.toml")
RULES = alerts.alert_rules(TOPOLOGY)
ALERTS = {
    rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule
}
SHOP = 'job="shopfleet",service="products",instance="products-1"'


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _expected(alert: str, labels: dict[str, str]) -> dict[str, Any]:
    """The alert with its labels and its annotations' templates filled in as Prometheus would."""
    rule = ALERTS[alert]

    def fill(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)

    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": {key: fill(value) for key, value in rule["annotations"].items()},
    }


# (alert, input series, minutes to evaluate at, the labels of each alert expected then)
CASES: list[tuple[str, dict[str, str], int, list[dict[str, str]]]] = [
    (
        "InstanceDown",
        {f"up{{{SHOP}}}": "1 1 0x10"},
        8,
        [{"job": "shopfleet", "service": "products", "instance": "products-1"}],
    ),
    ("InstanceDown", {f"up{{{SHOP}}}": "1x10"}, 8, []),
    (
        "ExporterDown",
        {'up{job="redis",instance="127.0.0.1:9121"}': "0x10"},
        5,
        [{"job": "redis", "instance": "127.0.0.1:9121"}],
    ),
    # products' CPU limit is 0.5 cores: 0.45 cores is 90 %, 0.2 cores is 40 %.
    (
        "InstanceCPUHigh",
        {f"process_cpu_seconds_total{{{SHOP}}}": "0+27x20"},
        12,
        [{"job": "shopfleet", "service": "products", "instance": "products-1"}],
    ),
    ("InstanceCPUHigh", {f"process_cpu_seconds_total{{{SHOP}}}": "0+12x20"}, 12, []),
    ("InstanceCPUHigh", {f"process_cpu_seconds_total{{{SHOP}}}": "0+27x3 0+12x17"}, 12, []),
    # The ceiling is min(500 MB process ceiling, 512Mi limit) = 500 MiB.
    (
        "InstanceMemoryNearCeiling",
        {f"process_resident_memory_bytes{{{SHOP}}}": "503316480x20"},
        10,
        [{"job": "shopfleet", "service": "products", "instance": "products-1"}],
    ),
    (
        "InstanceMemoryNearCeiling",
        {f"process_resident_memory_bytes{{{SHOP}}}": "209715200x20"},
        10,
        [],
    ),
    (
        "InstanceMemoryGrowing",
        {f"process_resident_memory_bytes{{{SHOP}}}": "104857600+5242880x80"},
        70,
        [{"job": "shopfleet", "service": "products", "instance": "products-1"}],
    ),
    ("InstanceMemoryGrowing", {f"process_resident_memory_bytes{{{SHOP}}}": "314572800x80"}, 70, []),
    (
        "ServiceErrorRateHigh",
        {
            f'http_requests_total{{{SHOP},status="200"}}': "0+600x20",
            f'http_requests_total{{{SHOP},status="503"}}': "0+60x20",
        },
        12,
        [{"service": "products"}],
    ),
    (
        "ServiceErrorRateHigh",
        {
            f'http_requests_total{{{SHOP},status="200"}}': "0+600x20",
            f'http_requests_total{{{SHOP},status="500"}}': "0+6x20",
        },
        12,
        [],
    ),
    (
        "ServiceLatencyP99High",
        {
            f'http_request_duration_seconds_bucket{{{SHOP},le="0.5"}}': "0+300x20",
            f'http_request_duration_seconds_bucket{{{SHOP},le="1.0"}}': "0+600x20",
            f'http_request_duration_seconds_bucket{{{SHOP},le="+Inf"}}': "0+600x20",
        },
        16,
        [{"service": "products"}],
    ),
    (
        "ServiceLatencyP99High",
        {
            f'http_request_duration_seconds_bucket{{{SHOP},le="0.05"}}': "0+600x20",
            f'http_request_duration_seconds_bucket{{{SHOP},le="+Inf"}}': "0+600x20",
        },
        16,
        [],
    ),
    (
        "CacheHitRateLow",
        {
            f'cache_requests_total{{{SHOP},prefix="products:detail",result="hit"}}': "0+60x40",
            f'cache_requests_total{{{SHOP},prefix="products:detail",result="miss"}}': "0+240x40",
        },
        30,
        [{"service": "products", "prefix": "products:detail"}],
    ),
    (
        "CacheHitRateLow",
        {
            f'cache_requests_total{{{SHOP},prefix="products:detail",result="hit"}}': "0+540x40",
            f'cache_requests_total{{{SHOP},prefix="products:detail",result="miss"}}': "0+60x40",
        },
        30,
        [],
    ),
    # Two lookups a minute: too few to judge a hit rate by.
    (
        "CacheHitRateLow",
        {f'cache_requests_total{{{SHOP},prefix="products:detail",result="miss"}}': "0+2x40"},
        30,
        [],
    ),
    (
        "RedisEvictingKeys",
        {'redis_evicted_keys_total{job="redis",instance="r"}': "0+50x20"},
        15,
        [{"job": "redis", "instance": "r"}],
    ),
    ("RedisEvictingKeys", {'redis_evicted_keys_total{job="redis",instance="r"}': "7x20"}, 15, []),
    (
        "DatabasePoolSaturated",
        {f"db_pool_connections_in_use{{{SHOP}}}": "10x10", f"db_pool_size{{{SHOP}}}": "10x10"},
        8,
        [{"job": "shopfleet", "service": "products", "instance": "products-1"}],
    ),
    (
        "DatabasePoolSaturated",
        {f"db_pool_connections_in_use{{{SHOP}}}": "3x10", f"db_pool_size{{{SHOP}}}": "10x10"},
        8,
        [],
    ),
    (
        "DatabasePoolWaiting",
        {
            f'db_pool_checkout_seconds_bucket{{{SHOP},le="0.1"}}': "0+30x20",
            f'db_pool_checkout_seconds_bucket{{{SHOP},le="0.5"}}': "0+600x20",
            f'db_pool_checkout_seconds_bucket{{{SHOP},le="+Inf"}}': "0+600x20",
        },
        12,
        [{"service": "products"}],
    ),
    (
        "DatabasePoolWaiting",
        {
            f'db_pool_checkout_seconds_bucket{{{SHOP},le="0.001"}}': "0+600x20",
            f'db_pool_checkout_seconds_bucket{{{SHOP},le="+Inf"}}': "0+600x20",
        },
        12,
        [],
    ),
    (
        "LoadUneven",
        {
            f'http_requests_total{{{SHOP},status="200"}}': "0+1200x30",
            'http_requests_total{job="shopfleet",service="products",instance="products-2",status="200"}': "0+120x30",
        },
        25,
        [{"service": "products"}],
    ),
    (
        "LoadUneven",
        {
            f'http_requests_total{{{SHOP},status="200"}}': "0+1200x30",
            'http_requests_total{job="shopfleet",service="products",instance="products-2",status="200"}': "0+1100x30",
        },
        25,
        [],
    ),
    (
        "CircuitBreakerOpen",
        {
            'circuit_breaker_state{job="shopfleet",service="orders",instance="orders-1",target="products"}': "0 2x10"
        },
        5,
        [{"service": "orders", "target": "products"}],
    ),
    (
        "CircuitBreakerOpen",
        {
            'circuit_breaker_state{job="shopfleet",service="orders",instance="orders-1",target="products"}': "0 1 0x10"
        },
        5,
        [],
    ),
    (
        "ServiceAtMaxReplicas",
        {
            'shopfleet_autoscaler_current_replicas{job="autoscaler",service="products"}': "10x30",
            'shopfleet_autoscaler_max_replicas{job="autoscaler",service="products"}': "10x30",
        },
        20,
        [{"service": "products"}],
    ),
    (
        "ServiceAtMaxReplicas",
        {
            'shopfleet_autoscaler_current_replicas{job="autoscaler",service="products"}': "10x5 7x25",
            'shopfleet_autoscaler_max_replicas{job="autoscaler",service="products"}': "10x30",
        },
        20,
        [],
    ),
    (
        "OrderStockRejectionsSpiking",
        {
            'orders_created_total{job="shopfleet",instance="orders-1"}': "0+60x20",
            'orders_rejected_stock_total{job="shopfleet",instance="orders-1"}': "0+60x20",
        },
        12,
        [{}],
    ),
    (
        "OrderStockRejectionsSpiking",
        {
            'orders_created_total{job="shopfleet",instance="orders-1"}': "0+600x20",
            'orders_rejected_stock_total{job="shopfleet",instance="orders-1"}': "0+12x20",
        },
        12,
        [],
    ),
]


def test_rendered_prometheus_config_and_rules_pass_promtool_check() -> None:
    directory = REPO_ROOT / monitoring.DIRECTORY
    config = _promtool("check", "config", directory / "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _promtool("check", "rules", directory / "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_every_alert_has_a_firing_case_a_quiet_case_and_a_runbook() -> None:
    fired = {alert for alert, _, _, expected in CASES if expected}
    quiet = {alert for alert, _, _, expected in CASES if not expected}
    assert fired == set(ALERTS), set(ALERTS) - fired
    assert quiet >= set(ALERTS) - {"ExporterDown"}, set(ALERTS) - quiet
    runbook = (REPO_ROOT / "docs" / "operations.md").read_text().lower()
    for name, rule in ALERTS.items():
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert f"### {name.lower()}" in runbook, f"docs/operations.md has no section {name}"
        assert anchor == name.lower()


def test_alerts_fire_on_their_symptom_and_stay_quiet_otherwise(tmp_path: Path) -> None:
    rules_file = tmp_path / "alerts.yml"
    rules_file.write_text(yaml.safe_dump(RULES))
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": series, "values": values} for series, values in inputs.items()
            ],
            "alert_rule_test": [
                {
                    "eval_time": f"{minutes}m",
                    "alertname": alert,
                    "exp_alerts": [_expected(alert, labels) for labels in expected],
                }
            ],
        }
        for alert, inputs, minutes, expected in CASES
    ]
    test_file = tmp_path / "alerts.test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests}
        )
    )
    result = _promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_instance_targets_follow_the_scale() -> None:
    topology = TOPOLOGY.model_copy(
        update={
            "services": {
                **TOPOLOGY.services,
                "products": TOPOLOGY.services["products"].model_copy(update={"instances": 4}),
            }
        }
    )
    targets = monitoring.instance_targets(topology)
    products = [group for group in targets if group["labels"]["service"] == "products"]
    assert [group["targets"] for group in products] == [
        ["127.0.0.1:3001"],
        ["127.0.0.1:3011"],
        ["127.0.0.1:3021"],
        ["127.0.0.1:3031"],
    ]
    assert products[3]["labels"]["instance"] == "products-4"


def test_compose_monitoring_overlay_is_valid_and_finds_every_replica(tmp_path: Path) -> None:
    from shopfleet.deploy.render import compose_monitoring
    from tests.deploy.test_compose import check_compose_schema

    overlay = REPO_ROOT / compose_monitoring.PATH
    assert check_compose_schema(REPO_ROOT / "docker-compose.yml", overlay).returncode == 0
    services = yaml.safe_load(overlay.read_text())["services"]
    assert {"prometheus", "alertmanager", "grafana"} <= set(services)
    assert {f"{job}-exporter" for job in ("redis", "postgres", "nginx")} <= set(services)
    # Prometheus' config, with the rules where the container mounts them, passes promtool.
    config = yaml.safe_load((REPO_ROOT / compose_monitoring.PROMETHEUS_CONFIG).read_text())
    (instances,) = [c for c in config["scrape_configs"] if c["job_name"] == "shopfleet"]
    dns = instances["dns_sd_configs"]
    assert {(d["names"][0], d["port"]) for d in dns} == {
        (s.name, s.port) for s in TOPOLOGY.ordered_services()
    }
    config["rule_files"] = [str(REPO_ROOT / monitoring.RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = _promtool("check", "config", tmp_path / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
