"""Property-based runs over every service's OpenAPI schema: no 5xx, no answer the schema denies.

Each service runs as a real process on SQLite. Without a gateway, each one's internal URL
points at the one service it calls (users -> auth, categories <-> products, orders -> products).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from shopfleet.common.settings import SERVICES
from tests.support import ServiceProcess, free_port, start_service, test_env

CALLS = {"users": "auth", "categories": "products", "products": "categories", "orders": "products"}


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    root = tmp_path_factory.mktemp("schemathesis")
    ports = {service: free_port() for service in SERVICES}
    running: dict[str, ServiceProcess] = {}
    try:
        for service in SERVICES:
            env = test_env(service, "sqlite", root)
            if service in CALLS:
                env["SHOPFLEET_INTERNAL_URL"] = f"http://127.0.0.1:{ports[CALLS[service]]}"
            subprocess.run(
                [sys.executable, "-m", "shopfleet", "migrate", service],
                env=env,
                cwd=root,
                check=True,
                capture_output=True,
            )
            running[service] = start_service(
                service, env=env, log_dir=root, port=ports[service], wait=False
            )
        from tests.support import wait_ready

        for proc in running.values():
            wait_ready(proc)
        env = test_env("auth", "sqlite", root)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shopfleet",
                "create-admin",
                "--email",
                "st@example.com",
                "--password-stdin",
            ],
            env=env,
            cwd=root,
            input=b"schemathesis-1\n",
            check=True,
            capture_output=True,
        )
        yield running
    finally:
        for proc in running.values():
            proc.terminate()


@pytest.fixture(scope="module")
def admin_headers(processes: dict[str, ServiceProcess]) -> dict[str, str]:
    login = httpx.post(
        f"{processes['auth'].url}/v1/auth/login",
        json={"email": "st@example.com", "password": "schemathesis-1"},
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['accessToken']}"}


@pytest.mark.parametrize("service", SERVICES)
def test_api_conforms_to_its_schema(
    service: str, processes: dict[str, ServiceProcess], admin_headers: dict[str, str]
) -> None:
    # schemathesis' pytest plugin does not run under pytest 9, so each operation gets its
    # own hypothesis run here and every failure is collected before asserting.
    proc = processes[service]
    schema = schemathesis.openapi.from_url(f"{proc.url}/openapi.json")
    schema.config.update(base_url=proc.url)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(
                headers=admin_headers,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The run really exercised the service: it counted the calls itself.
    metrics = httpx.get(f"{proc.url}/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("http_requests_total{") and f'route="/v1/{service}' in line
    )
    assert operations > 0 and served >= operations * 5, (operations, served)
