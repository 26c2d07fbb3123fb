"""Property-based runs over every service's OpenAPI schema: no 5xx, no answer the schema denies.

Each service runs as a real process on SQLite. Without a gateway, each one's internal URL
points at the one service it calls (users -> auth, categories <-> products, orders -> products).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from shopfleet.common.settings import SERVICES
from tests.support import ServiceProcess, five_services, test_env


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    root = tmp_path_factory.mktemp("schemathesis")
    with five_services(
        root,
        lambda service, ports: test_env(service, "sqlite", root),
        admin_email="st@example.com",
        admin_password="schemathesis-1",
    ) as running:
        yield running


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
        assert isinstance(result, Ok), result
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
