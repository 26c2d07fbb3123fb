"""NUL and other control characters in every string of every service's API, on PostgreSQL.

Each service runs as a real process on PostgreSQL (which cannot store NUL). Hypothesis
takes a case schemathesis generated from the service's OpenAPI schema, poisons one string
in it (a body field, a query or a path parameter) with a control character or an unpaired
surrogate, and sends it. No answer may be a 5xx; a NUL is always a 422 problem.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shopfleet.common.settings import SERVICES
from tests.support import (
    INTERNAL_TOKEN,
    POSTGRES_URL,
    ServiceProcess,
    five_services,
    test_env,
)

# What PostgreSQL or the protocol cannot hold, and C0 controls free text has no use for.
POISON = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\ud800", "\udfff"]
# A URL carries UTF-8 only: an unpaired surrogate cannot even be sent in a query or path.
URL_POISON = [p for p in POISON if not "\ud800" <= p <= "\udfff"]
Slot = tuple[str, tuple[Any, ...]]


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    root = tmp_path_factory.mktemp("control-characters")
    prefix = f"cc{uuid.uuid4().hex[:8]}_"

    def env_for(service: str, ports: dict[str, int]) -> dict[str, str]:
        return test_env(
            service,
            "postgres",
            root,
            SHOPFLEET_DATABASE_SCHEMA_PREFIX=prefix,
            SHOPFLEET_DATABASE_POOL_SIZE="3",
            SHOPFLEET_RATE_LIMIT_ENABLED="false",
        )

    try:
        with five_services(
            root, env_for, admin_email="cc@example.com", admin_password="control-chars-1"
        ) as running:
            yield running
    finally:
        asyncio.run(_drop_schemas(prefix))


async def _drop_schemas(prefix: str) -> None:
    engine = create_async_engine(POSTGRES_URL)
    async with engine.begin() as connection:
        for service in SERVICES:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}{service}" CASCADE'))
    await engine.dispose()


@pytest.fixture(scope="module")
def headers(processes: dict[str, ServiceProcess]) -> dict[str, str]:
    login = httpx.post(
        f"{processes['auth'].url}/v1/auth/login",
        json={"email": "cc@example.com", "password": "control-chars-1"},
    )
    assert login.status_code == 200, login.text
    return {
        "Authorization": f"Bearer {login.json()['accessToken']}",
        "X-Internal-Token": INTERNAL_TOKEN,
    }


def _string_leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, (*path, index))


def _slots(case: Any) -> list[Slot]:
    slots: list[Slot] = [("body", path) for path in _string_leaves(case.body)]
    for kind in ("query", "path_parameters"):
        for name, value in (getattr(case, kind) or {}).items():
            if isinstance(value, str):
                slots.append((kind, (name,)))
    return slots


def _poisoned(value: str, poison: str, at: int) -> str:
    at = min(at, len(value))
    return value[:at] + poison + value[at:]


def _set(container: Any, path: tuple[Any, ...], value: str) -> None:
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = value


def _get(container: Any, path: tuple[Any, ...]) -> str:
    for key in path:
        container = container[key]
    assert isinstance(container, str)
    return container


def masked(kind: str, response: httpx.Response) -> bool:
    """A body the endpoint never read: the resource its path names does not exist.

    Path ids are resolved by dependencies, which FastAPI runs before validating the body.
    """
    return kind == "body" and response.status_code == 404


def _send(case: Any, base_url: str, headers: dict[str, str]) -> httpx.Response:
    path = case.operation.path
    for name, value in (case.path_parameters or {}).items():
        path = path.replace(f"{{{name}}}", quote(str(value), safe=""))
    query = {k: v for k, v in (case.query or {}).items() if v is not None}
    content = None
    extra: dict[str, str] = {}
    if not isinstance(case.body, type(None)) and case.body.__class__.__name__ != "NotSet":
        # ensure_ascii: every control character and surrogate travels as a \\u escape.
        content = json.dumps(case.body).encode()
        extra["Content-Type"] = "application/json"
    return httpx.request(
        case.method.upper(),
        base_url + path,
        params=query,
        content=content,
        headers={**{k: str(v) for k, v in (case.headers or {}).items()}, **headers, **extra},
        timeout=10,
    )


@pytest.mark.e2e
@pytest.mark.parametrize("service", SERVICES)
def test_no_control_character_reaches_the_database(
    service: str, processes: dict[str, ServiceProcess], headers: dict[str, str]
) -> None:
    proc = processes[service]
    schema = schemathesis.openapi.from_url(f"{proc.url}/openapi.json")
    failures: list[str] = []
    poisoned_requests = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy(), data=st.data())
        @settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, data: st.DataObject) -> None:
            nonlocal poisoned_requests
            slots = _slots(case)
            if not slots:
                return
            kind, path = data.draw(st.sampled_from(slots))
            poison = data.draw(st.sampled_from(POISON if kind == "body" else URL_POISON))
            container = case.body if kind == "body" else getattr(case, kind)
            original = _get(container, path)
            _set(container, path, _poisoned(original, poison, data.draw(st.integers(0, 8))))
            response = _send(case, proc.url, headers)
            poisoned_requests += 1
            where = f"{case.method.upper()} {case.operation.path} {kind}{list(path)} {poison!r}"
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            elif poison == "\x00" and response.status_code != 422 and not masked(kind, response):
                failures.append(f"{where}: {response.status_code}, expected 422")

        run()
    assert not failures, "\n".join(sorted(set(failures)))
    assert poisoned_requests >= 10, poisoned_requests
    assert "Traceback" not in proc.log()
