"""The Compose files and gateway configs: valid against the Compose specification, wired
as the design asks (health-gated start, one-shot migrations, shared secrets), and accepted
by `nginx -t`. Running them for real is tests/containers/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shopfleet.deploy.render import compose, pm2
from shopfleet.deploy.render.gateway.build import COMPOSE_STATE, PASSIVE_HEALTH
from shopfleet.deploy.render.gateway.files import COMPOSE_CONF
from shopfleet.deploy.topology import load_topology
from tests.support import REPO_ROOT

TOPOLOGY = load_topology(REPO_ROOT / "shopfleet.toml")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def load(path: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / path).read_text())
    return document


def check_compose_schema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_compose_files_validate_against_the_compose_specification(tmp_path: Path) -> None:
    files = [REPO_ROOT / compose.COMPOSE_PATH, REPO_ROOT / compose.SCALE_PATH]
    result = check_compose_schema(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = load(compose.COMPOSE_PATH)
    broken["services"]["auth"]["healthcheck"]["intervall"] = "10s"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_compose_schema(tmp_path / "broken.yml").returncode == 1


def test_scale_file_carries_the_topology_and_the_update_policy() -> None:
    services = load(compose.SCALE_PATH)["services"]
    for service in TOPOLOGY.ordered_services():
        deploy = services[service.name]["deploy"]
        assert deploy["replicas"] == service.instances
        assert deploy["update_config"] == {
            "parallelism": 1,
            "delay": "10s",
            "order": "start-first",
            "failure_action": "rollback",
        }
        assert deploy["rollback_config"] == {"parallelism": 1, "delay": "5s"}
    assert services["auth"]["deploy"]["resources"] == {
        "limits": {"cpus": "0.5", "memory": "512M"},
        "reservations": {"cpus": "0.25", "memory": "256M"},
    }
    assert services["categories"]["deploy"]["resources"] == {
        "limits": {"cpus": "0.3", "memory": "384M"},
        "reservations": {"cpus": "0.15", "memory": "192M"},
    }


def test_services_start_after_healthy_stores_and_completed_migrations() -> None:
    services = load(compose.COMPOSE_PATH)["services"]
    assert services["migrate"]["command"] == ["migrate", "all"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for service in TOPOLOGY.ordered_services():
        spec = services[service.name]
        assert spec["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        assert "/health/ready" in " ".join(spec["healthcheck"]["test"])
        assert str(service.port) in " ".join(spec["healthcheck"]["test"])
        assert spec["command"][:2] == ["serve", service.name]
        assert spec["image"] == services["migrate"]["image"] == TOPOLOGY.project.image
        assert spec["environment"]["SHOPFLEET_INTERNAL_URL"] == "http://gateway:8081"
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]
    for name in ("postgres", "redis", "gateway"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_secrets_come_only_from_the_environment() -> None:
    services = load(compose.COMPOSE_PATH)["services"]
    required = re.compile(r"\$\{(\w+):\?[^}]*\}")
    tokens = {
        services[s.name]["environment"]["SHOPFLEET_INTERNAL_TOKEN"]
        for s in TOPOLOGY.ordered_services()
    }
    assert len(tokens) == 1 and required.fullmatch(tokens.pop())
    signing = services["auth"]["environment"]["SHOPFLEET_JWT_PRIVATE_KEY"]
    assert required.fullmatch(signing), "every auth replica gets the one key from .env"
    assert all(
        "SHOPFLEET_JWT_PRIVATE_KEY" not in services[name]["environment"]
        for name in ("users", "categories", "products", "orders")
    )
    text = (REPO_ROOT / compose.COMPOSE_PATH).read_text()
    assert "BEGIN PRIVATE KEY" not in text
    assert set(required.findall(text)) == {
        "POSTGRES_PASSWORD",
        "SHOPFLEET_INTERNAL_TOKEN",
        "SHOPFLEET_JWT_PRIVATE_KEY",
    }


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_compose_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    # The container's writable folder, with the resolver line its entrypoint writes.
    runtime = tmp_path / "gateway"
    runtime.mkdir()
    (runtime / "resolver.conf").write_text("resolver 127.0.0.11 valid=5s ipv6=off;\n")
    text = (REPO_ROOT / COMPOSE_CONF).read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace(COMPOSE_STATE, str(runtime)))
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr
    # Every target is a variable, so nginx re-resolves names and finds scaled replicas.
    passes = re.findall(r"proxy_pass (\S+);", text)
    assert passes and all(target.startswith("http://$upstream") for target in passes)
    assert not re.search(r"^\s*upstream ", text, re.MULTILINE)


def test_compose_gateway_config_fails_nginx_t_without_its_resolver(tmp_path: Path) -> None:
    text = (REPO_ROOT / COMPOSE_CONF).read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace(COMPOSE_STATE, str(tmp_path / "missing")))
    assert nginx_test(conf, tmp_path).returncode != 0


def test_pm2_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    prefix = tmp_path / "var" / "run" / "nginx"
    prefix.mkdir(parents=True)
    (tmp_path / "var" / "log").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text((REPO_ROOT / pm2.GATEWAY_CONF).read_text())
    result = nginx_test(conf, prefix)
    assert result.returncode == 0, result.stderr
    assert f"{PASSIVE_HEALTH};" in conf.read_text()


@pytest.mark.parametrize("path", [compose.COMPOSE_PATH, compose.SCALE_PATH])
def test_compose_files_list_every_service(path: str) -> None:
    assert set(TOPOLOGY.services) <= set(load(path)["services"])


def test_instances_trust_only_the_rendered_compose_network() -> None:
    document = load(compose.COMPOSE_PATH)
    subnet = TOPOLOGY.networks.compose_subnet
    assert document["networks"]["default"]["ipam"]["config"] == [{"subnet": subnet}]
    for name in TOPOLOGY.services:
        environment = document["services"][name]["environment"]
        assert json.loads(environment["SHOPFLEET_TRUSTED_PROXIES"]) == [subnet]


def test_local_instances_trust_only_the_loopback_gateway() -> None:
    conf = (REPO_ROOT / "deploy/local/supervisord.conf").read_text()
    programs = re.findall(r"^\[program:(\w+)-\d+\]$", conf, re.MULTILINE)
    trusted = re.findall(r"SHOPFLEET_TRUSTED_PROXIES='(.*?)'", conf)
    assert len(trusted) == len(programs) == 13
    assert set(trusted) == {'["127.0.0.1/32"]'}
