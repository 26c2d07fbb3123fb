"""`shopfleet seed`: counts, determinism and skipping filled parts, on both engines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from shopfleet.auth.models import Account
from shopfleet.auth.passwords import Passwords
from shopfleet.categories.models import Category
from shopfleet.common.cache import ResponseCache
from shopfleet.common.database import create_engine
from shopfleet.common.metrics import Metrics
from shopfleet.common.redis import RedisGuard, create_redis
from shopfleet.common.settings import Settings
from shopfleet.contracts import products as products_contract
from shopfleet.products.models import Product
from shopfleet.seed import DEMO_PASSWORD, seed_demo_data
from tests.support import POSTGRES_URL, REDIS_URL, base_settings

SERVICES = ("auth", "categories", "products")


# A fixture that names fresh database places: place(name)(service) gives its settings.
Places = Callable[[str], Callable[[str], Settings]]


@pytest.fixture
async def places(backend: str, tmp_path: Path) -> AsyncIterator[Places]:
    """Each call names a fresh set of databases (a directory, or schemas on PostgreSQL)."""
    prefixes: list[str] = []

    def place(name: str) -> Callable[[str], Settings]:
        prefix = f"s{uuid.uuid4().hex[:8]}_"
        prefixes.append(prefix)
        return lambda service: base_settings(
            service, backend, tmp_path / name, database_schema_prefix=prefix
        )

    yield place
    if backend == "postgres":
        engine = create_async_engine(POSTGRES_URL)
        async with engine.begin() as connection:
            for prefix in prefixes:
                for service in SERVICES:
                    await connection.execute(
                        text(f'DROP SCHEMA IF EXISTS "{prefix}{service}" CASCADE')
                    )
        await engine.dispose()


async def _rows(settings: Settings, model: Any) -> list[dict[str, Any]]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(model.__table__).order_by(model.id))
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()


async def _snapshot(settings_for: Callable[[str], Settings]) -> dict[str, list[dict[str, Any]]]:
    return {
        "categories": await _rows(settings_for("categories"), Category),
        "products": await _rows(settings_for("products"), Product),
        "accounts": await _rows(settings_for("auth"), Account),
    }


async def _seed(settings_for: Callable[[str], Settings], seed: int) -> Any:
    return await seed_demo_data(
        settings_for=settings_for,
        categories=3,
        products=50,
        users=5,
        seed=seed,
        echo=lambda _: None,
    )


async def test_seed_fills_counts_and_skips_filled_parts(places: Places) -> None:
    settings_for = places("a")
    report = await _seed(settings_for, 42)
    assert report.inserted == {"categories": 3, "products": 50, "users": 5}
    data = await _snapshot(settings_for)
    assert [len(data[t]) for t in ("categories", "products", "accounts")] == [3, 50, 5]
    categories = {c["id"]: c for c in data["categories"]}
    roots = [c for c in data["categories"] if c["parent_id"] is None]
    assert len(roots) == 1 and all(
        c["parent_id"] in categories for c in data["categories"] if c not in roots
    )
    leaves = {c["id"] for c in data["categories"]} - {c["parent_id"] for c in data["categories"]}
    products = data["products"]
    assert {p["category_id"] for p in products} <= leaves
    assert len({p["sku"] for p in products}) == 50
    assert all(p["price_cents"] > 0 and p["stock"] >= 0 and p["name"] for p in products)
    assert len({p["name"].split()[-1] for p in products}) > 3  # realistic, varied names
    accounts = data["accounts"]
    assert {a["role"] for a in accounts} == {"customer"} and len(
        {a["email"] for a in accounts}
    ) == 5
    assert len({a["password_hash"] for a in accounts}) == 1  # hashed once
    passwords = Passwords(settings_for("auth"))
    assert await passwords.verify(accounts[0]["password_hash"], DEMO_PASSWORD)

    again = await _seed(settings_for, 42)
    assert again.inserted == {}
    assert again.skipped == {"categories": 3, "products": 50, "users": 5}
    assert await _snapshot(settings_for) == data


async def test_same_seed_same_data_other_seed_other_data(places: Places) -> None:
    first, second, other = places("first"), places("second"), places("other")
    await _seed(first, 7)
    await _seed(second, 7)
    await _seed(other, 8)
    a, b, c = await _snapshot(first), await _snapshot(second), await _snapshot(other)
    for account in a["accounts"] + b["accounts"]:
        account.pop("password_hash")  # argon2 salts differ by design
    assert a == b
    assert {p["sku"]: p["name"] for p in a["products"]} != {
        p["sku"]: p["name"] for p in c["products"]
    }


def test_seed_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shopfleet.cli import app

    env = {
        "SHOPFLEET_DATA_DIR": str(tmp_path),
        "SHOPFLEET_DATABASE_URL": "",
        "SHOPFLEET_ARGON2_TIME_COST": "1",
        "SHOPFLEET_ARGON2_MEMORY_COST": "1024",
        "SHOPFLEET_ARGON2_PARALLELISM": "1",
    }
    runner = CliRunner()
    args = ["seed", "--categories", "4", "--products", "30", "--users", "2", "--seed", "3"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "products: 30 inserted" in result.output and DEMO_PASSWORD in result.output
    again = runner.invoke(app, args, env=env)
    assert "products: skipped, 30 already there" in again.output
    empty = runner.invoke(
        app,
        ["seed", "--categories", "0", "--products", "5"],
        env={**env, "SHOPFLEET_DATA_DIR": str(tmp_path / "empty")},
    )
    assert empty.exit_code == 2 and "need categories" in empty.output


async def test_seed_tells_running_instances_their_lists_and_totals_changed(
    places: Places, redis_prefix: str
) -> None:
    """Bulk inserts bypass the services: a running instance's cached pages and totals
    (shared in Redis) must not outlive them, or a list shows new rows with an old total."""
    place = places("cached")
    prefix = redis_prefix

    def settings_for(service: str) -> Settings:
        return place(service).model_copy(
            update={"redis_url": REDIS_URL, "redis_key_prefix": prefix}
        )

    redis = create_redis(settings_for("products"))
    assert redis is not None
    metrics = Metrics()
    cache = ResponseCache(RedisGuard(redis, metrics), metrics, key_prefix=prefix)
    scopes = (products_contract.LIST_SCOPE, products_contract.TOTALS_SCOPE)
    try:
        before = [(await cache.read(scope, "k"))[0] for scope in scopes]
        await _seed(settings_for, 1)
        after = [(await cache.read(scope, "k"))[0] for scope in scopes]
        assert all(old != new for old, new in zip(before, after, strict=True)), (before, after)
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def test_seed_beside_a_local_run_tells_that_runs_redis(tmp_path: Path, redis_prefix: str) -> None:
    """`shopfleet up` runs a private Redis the environment does not name: `shopfleet seed`
    beside it finds it in the run's state, or the instances keep their old totals."""
    import redis as sync_redis
    from typer.testing import CliRunner

    from shopfleet.cli import app
    from shopfleet.deploy.operator.runtime import RunDir, RunState

    var = tmp_path / "var"
    run_dir = RunDir(var)
    run_dir.make()
    RunState(topology="shopfleet.toml", profile="local", scale={}, redis_url=REDIS_URL).save(
        run_dir
    )
    prefix = redis_prefix
    env = {
        "SHOPFLEET_DATA_DIR": str(var),
        "SHOPFLEET_DATABASE_URL": "",
        "SHOPFLEET_REDIS_URL": None,
        "SHOPFLEET_REDIS_KEY_PREFIX": prefix,
        "SHOPFLEET_ARGON2_TIME_COST": "1",
        "SHOPFLEET_ARGON2_MEMORY_COST": "1024",
        "SHOPFLEET_ARGON2_PARALLELISM": "1",
    }
    client = sync_redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}gen:{products_contract.TOTALS_SCOPE}"
    try:
        args = ["seed", "--categories", "2", "--products", "5", "--users", "0"]
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        assert client.get(key) == b"1"
    finally:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
