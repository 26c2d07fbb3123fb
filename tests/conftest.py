from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from xdist.scheduler import LoadScopeScheduling

from tests.support import REDIS_URL, Databases, MakePlatform, Platform, running_platform


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (visibly, "N deselected") the real-deployment tests unless asked for.

    They install PM2 and Podman and build images: scripts/ci-containers runs them with
    SHOPFLEET_CONTAINER_TESTS=1 as a CI step of their own.
    """
    if os.environ.get("SHOPFLEET_CONTAINER_TESTS") != "1":
        live = [item for item in items if item.get_closest_marker("deploy_live")]
        if live:
            config.hook.pytest_deselected(items=live)
            items[:] = [item for item in items if not item.get_closest_marker("deploy_live")]


FULL_LOCAL_RUNS = ("tests/e2e/", "tests/bench/test_bench_quick.py")


class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
    """pytest-xdist scheduling (scripts/test's -n 2): whole modules, full local runs together.

    A module stays on one worker, so its module-scoped platforms start once. The full local
    runs (tests/e2e, the bench smoke test: a gateway and 13+ instances each) form one unit:
    two at once would fight over the two cores and PostgreSQL's shared connection budget,
    while every other module fills the other worker meanwhile. (xdist's own loadgroup marks
    do not take under pytest 9, which no longer reads the node id xdist rewrites.)
    """

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return "full-local-runs" if path.startswith(FULL_LOCAL_RUNS) else path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("databases"))
    yield dbs
    await dbs.drop_postgres()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own, its keys deleted afterwards: cache
    generations have no expiry, so they would pile up in the shared Redis run after run."""
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = sync_redis.Redis.from_url(REDIS_URL)
    try:
        # `test:<id>*`: a test may derive a second namespace from its own (`<id>t:`).
        keys = list(client.scan_iter(match=prefix[:-1] + "*", count=1000))
        if keys:
            client.delete(*keys)
    except sync_redis.ConnectionError:
        pass  # Redis is down: nothing of ours to clean there
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_platform(databases: Databases, backend: str, tmp_path: Path) -> MakePlatform:
    """`async with make_platform("auth", "users") as p:` starts those services in-process."""

    def _make(*services: str, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Platform]:
        return running_platform(databases, backend, tmp_path, services, **overrides)

    return _make


PASSWORD = "correct-horse-1"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    name: str = "Test User",
) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/register",
        json={"email": email or unique_email(), "password": password, "name": name},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_admin(platform: Platform, *, email: str | None = None) -> dict[str, Any]:
    """An admin signed in through auth's service layer: the token pair login would answer.

    Tests about something else need an admin, not the HTTP round trips of registering
    and signing in (tests/auth covers those).
    """
    from shopfleet.auth import service as auth_service
    from shopfleet.auth.schemas import TokenPair, UserPublic
    from shopfleet.auth.service import AuthContext

    resources = platform.resources("auth")
    ctx = resources.state(AuthContext)
    email = email or unique_email("admin")
    async with resources.sessionmaker() as db:
        await auth_service.ensure_admin(
            db=db, passwords=ctx.passwords, email=email, password=PASSWORD, name="Test User"
        )
        issued = await auth_service.login(db=db, ctx=ctx, email=email, password=PASSWORD)
        await db.commit()
    pair = TokenPair(
        user=UserPublic.model_validate(issued.account),
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )
    return pair.model_dump(mode="json", by_alias=True)


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}
