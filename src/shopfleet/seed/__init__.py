"""`shopfleet seed`: demo data for categories, products and auth, fast and deterministic.

Each part is filled only while its table is empty (for users: while no demo customer
exists); a part that already holds data is skipped and reported, so running the
command twice changes nothing. Products go into the existing leaf categories when
the categories part was skipped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfleet.auth.models import Account
from shopfleet.auth.passwords import Passwords
from shopfleet.categories.models import Category
from shopfleet.common.cache import ResponseCache
from shopfleet.common.database import create_engine
from shopfleet.common.metrics import Metrics
from shopfleet.common.migrations import migrate
from shopfleet.common.redis import RedisGuard, create_redis
from shopfleet.common.settings import Settings
from shopfleet.contracts import categories as categories_contract
from shopfleet.contracts import products as products_contract
from shopfleet.products.models import Product
from shopfleet.seed.catalog import (
    CUSTOMER_DOMAIN,
    DEPARTMENTS,
    SeedCategory,
    category_rows,
    customer_rows,
    product_rows,
)

DEMO_PASSWORD = "shopfleet-demo-1"  # noqa: S105 (printed on purpose: demo accounts only)
CHUNK = 5_000
SERVICES = ("categories", "products", "auth")


@dataclass
class SeedReport:
    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    password: str = DEMO_PASSWORD


async def seed_demo_data(
    *,
    settings_for: Callable[[str], Settings],
    categories: int,
    products: int,
    users: int,
    seed: int,
    echo: Callable[[str], None] = print,
) -> SeedReport:
    """Migrate, then fill each service's tables with bulk inserts (same seed, same rows)."""
    report = SeedReport()
    for service in SERVICES:
        await migrate(settings_for(service), service)
    rng = random.Random(seed)
    leaves = await _seed_categories(settings_for("categories"), rng, categories, report)
    await _seed_products(
        settings_for("products"), random.Random(seed + 1), products, leaves, report
    )
    await _seed_users(settings_for("auth"), random.Random(seed + 2), users, report)
    await _invalidate_caches(settings_for("products"), report)
    for part in ("categories", "products", "users"):
        if part in report.skipped:
            echo(f"{part}: skipped, {report.skipped[part]} already there")
        elif part in report.inserted:
            echo(f"{part}: {report.inserted[part]} inserted in {report.seconds[part]:.2f} s")
    if report.inserted.get("users"):
        echo(f"demo customers sign in with the password {DEMO_PASSWORD!r}")
    return report


async def _invalidate_caches(settings: Settings, report: SeedReport) -> None:
    """Bulk inserts bypass the services: tell running instances' caches (shared in Redis)."""
    if not (report.inserted.get("categories") or report.inserted.get("products")):
        return
    redis = create_redis(settings)
    if redis is None:
        return  # in-process caches of running instances expire by TTL
    metrics = Metrics()
    cache = ResponseCache(RedisGuard(redis, metrics), metrics, key_prefix=settings.redis_key_prefix)
    try:
        await cache.invalidate(
            products_contract.LIST_SCOPE,
            products_contract.TOTALS_SCOPE,  # a running instance's cached totals, too
            categories_contract.LIST_SCOPE,
            categories_contract.DETAIL_SCOPE,
        )
    finally:
        await redis.aclose()


async def _seed_categories(
    settings: Settings, rng: random.Random, count: int, report: SeedReport
) -> list[SeedCategory]:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            existing = await _count(connection, Category.__table__)  # type: ignore[arg-type]
            if existing:
                report.skipped["categories"] = existing
                return await _existing_leaves(connection)
            started = time.perf_counter()
            rows, leaves = category_rows(rng, count) if count else ([], [])
            await _bulk_insert(connection, Category.__table__, rows)  # type: ignore[arg-type]
            report.inserted["categories"] = len(rows)
            report.seconds["categories"] = time.perf_counter() - started
            return leaves
    finally:
        await engine.dispose()


async def _existing_leaves(connection: AsyncConnection) -> list[SeedCategory]:
    parents = select(Category.parent_id).where(Category.parent_id.is_not(None))
    rows = await connection.execute(
        select(Category.id, Category.name)
        .where(Category.id.not_in(parents))
        .order_by(Category.slug)
    )
    known = {
        sub: (prices, nouns) for prices, subs in DEPARTMENTS.values() for sub, nouns in subs.items()
    }
    leaves = []
    for category_id, name in rows:
        prices, nouns = known.get(name.rstrip(" 0123456789"), ((5, 500), [name]))
        leaves.append(SeedCategory(category_id, name, tuple(nouns), prices))
    return leaves


async def _seed_products(
    settings: Settings,
    rng: random.Random,
    count: int,
    leaves: list[SeedCategory],
    report: SeedReport,
) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            existing = await _count(connection, Product.__table__)  # type: ignore[arg-type]
            if existing:
                report.skipped["products"] = existing
                return
            if count and not leaves:
                raise ValueError("products need categories: seed some with --categories")
            started = time.perf_counter()
            if connection.dialect.name == "sqlite":
                # Random ids scatter inserts over every index: keep the pages in memory.
                await connection.exec_driver_sql("PRAGMA cache_size = -262144")
            # Generated and inserted chunk by chunk, so memory stays flat for large catalogs.
            for start in range(0, count, CHUNK):
                rows = product_rows(rng, min(CHUNK, count - start), leaves, start=start)
                await _bulk_insert(connection, Product.__table__, rows)  # type: ignore[arg-type]
            report.inserted["products"] = count
        await _refresh_statistics(engine, "products")
        report.seconds["products"] = time.perf_counter() - started
    finally:
        await engine.dispose()


async def _seed_users(
    settings: Settings, rng: random.Random, count: int, report: SeedReport
) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            existing = await connection.scalar(
                select(func.count())
                .select_from(Account)
                .where(Account.email.like(f"%@{CUSTOMER_DOMAIN}"))
            )
            if existing:
                report.skipped["users"] = int(existing)
                return
            started = time.perf_counter()
            # argon2 is slow on purpose: hash once, every demo customer shares the hash.
            password_hash = await Passwords(settings).hash(DEMO_PASSWORD) if count else ""
            rows = customer_rows(rng, count, password_hash)
            await _bulk_insert(connection, Account.__table__, rows)  # type: ignore[arg-type]
            report.inserted["users"] = len(rows)
            report.seconds["users"] = time.perf_counter() - started
    finally:
        await engine.dispose()


async def _refresh_statistics(engine: AsyncEngine, table: str) -> None:
    """Give the planner fresh statistics (and PostgreSQL a visibility map for counts)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    else:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"ANALYZE {table}")


async def _count(connection: AsyncConnection, table: Table) -> int:
    return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def _bulk_insert(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Core INSERT with executemany, in chunks (batched multi-row VALUES on PostgreSQL)."""
    for start in range(0, len(rows), CHUNK):
        await connection.execute(insert(table), list(rows[start : start + CHUNK]))
