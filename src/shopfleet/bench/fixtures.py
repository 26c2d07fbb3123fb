"""The data a bench run loads with: seeded catalog, tokens, ids, cursors, stocked products."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

from shopfleet.auth.models import Account
from shopfleet.bench.platform import BenchPlatform
from shopfleet.common.database import create_engine
from shopfleet.products.listing import encode_cursor
from shopfleet.products.models import Product
from shopfleet.seed import DEMO_PASSWORD
from shopfleet.seed.catalog import CUSTOMER_DOMAIN

ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password-1"  # noqa: S105 (a throwaway account in a private schema)
# The bounded concurrency of preparation calls (logins are argon2-bound: more only queue).
PREPARE_CONCURRENCY = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How big a run is: the catalog, the customers, and what the scenarios draw from."""

    products: int
    users: int
    categories: int = 50
    signed_in: int = 300  # customers logged in before the load (argon2: ~12/s on 2 cores)
    hot_products: int = 1000  # the popular part of the catalog (micro-cache, service cache)
    sampled_products: int = 20_000  # uniform sample of the whole catalog (product-db)
    ample_stock_products: int = 300
    ample_stock: int = 1_000_000
    scarce_products: int = 5
    scarce_stock: int = 40  # per product; each order takes one, so most orders are 409


@dataclass
class BenchData:
    admin_token: str
    customer_emails: list[str]
    customer_tokens: list[str]
    hot_ids: list[str]
    sampled_ids: list[str]
    category_ids: list[str]
    deep_cursors: list[str]
    catalog_size: int
    ample_ids: list[str] = field(default_factory=list)
    scarce_ids: list[str] = field(default_factory=list)
    stock_before: dict[str, int] = field(default_factory=dict)


async def bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the calls with at most `limit` at a time, results in order."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


def seed(platform: BenchPlatform, sizes: Sizes) -> str:
    """Seed the run's schemas and create its admin; return what seeding printed."""
    seeded = platform.cli(
        "seed", "--categories", str(sizes.categories), "--products", str(sizes.products),
        "--users", str(sizes.users), "--seed", "1",
    )  # fmt: skip
    platform.cli(
        "create-admin", "--email", ADMIN_EMAIL, "--password-stdin", stdin=ADMIN_PASSWORD + "\n"
    )
    return seeded.stdout


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    if response.status_code != 200:
        raise RuntimeError(f"login of {email} answered {response.status_code}: {response.text}")
    token: str = response.json()["accessToken"]
    return token


async def _catalog(platform: BenchPlatform, sizes: Sizes, rng: random.Random) -> dict[str, Any]:
    engine = create_engine(platform.settings("products"))
    try:
        async with engine.connect() as db:
            total = int(await db.scalar(select(func.count()).select_from(Product)) or 0)
            sample = int(min(sizes.sampled_products, total))
            picked = select(Product.id).order_by(func.random()).limit(sample)
            ids = [str(i) for i in await db.scalars(picked)]
            categories = await db.scalars(select(Product.category_id).distinct())
            newest_first = (Product.created_at.desc(), Product.id.desc())
            cursors = []
            # Deep in the default order (newest first): between 80 % and 99 % of the walk.
            for offset in sorted(rng.sample(range(total * 4 // 5, total - 21), k=20)):
                row = (
                    await db.execute(
                        select(Product.id, Product.created_at)
                        .order_by(*newest_first)
                        .offset(offset)
                        .limit(1)
                    )
                ).one()
                cursors.append(encode_cursor("-createdAt", row._mapping, total))
    finally:
        await engine.dispose()
    return {
        "total": total,
        "ids": ids,
        "categories": sorted(str(c) for c in categories),
        "cursors": cursors,
    }


async def _emails(platform: BenchPlatform, count: int) -> list[str]:
    engine = create_engine(platform.settings("auth"))
    try:
        async with engine.connect() as db:
            emails = await db.scalars(
                select(Account.email)
                .where(Account.email.like(f"%@{CUSTOMER_DOMAIN}"))
                .order_by(Account.email)
                .limit(count)
            )
            return list(emails)
    finally:
        await engine.dispose()


async def prepare(platform: BenchPlatform, sizes: Sizes, *, seed_value: int = 1) -> BenchData:
    """Sign in the admin and customers, pick ids and cursors, and warm the hot products."""
    rng = random.Random(seed_value)
    catalog = await _catalog(platform, sizes, rng)
    emails = await _emails(platform, sizes.signed_in)
    limits = httpx.Limits(max_connections=PREPARE_CONCURRENCY * 2)
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=60, limits=limits) as client:
        admin_token = await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        tokens = await bounded(
            [lambda e=e: login(client, e, DEMO_PASSWORD) for e in emails],  # type: ignore[misc]
            PREPARE_CONCURRENCY,
        )
        data = BenchData(
            admin_token=admin_token,
            customer_emails=emails,
            customer_tokens=tokens,
            hot_ids=catalog["ids"][: sizes.hot_products],
            sampled_ids=catalog["ids"],
            category_ids=catalog["categories"],
            deep_cursors=catalog["cursors"],
            catalog_size=catalog["total"],
        )
        await _warm_hot_products(client, data)
    return data


async def _warm_hot_products(client: httpx.AsyncClient, data: BenchData) -> None:
    """Fill the service cache with the popular products (a signed-in read stores the entry)."""
    headers = {"Authorization": f"Bearer {data.customer_tokens[0]}"}

    async def get(product_id: str) -> None:
        response = await client.get(f"/v1/products/{product_id}", headers=headers)
        response.raise_for_status()

    await bounded([lambda i=i: get(i) for i in data.hot_ids], PREPARE_CONCURRENCY)  # type: ignore[misc]


async def stock_products(platform: BenchPlatform, data: BenchData, sizes: Sizes) -> None:
    """Give the order scenarios their products: ample stock for some, scarce for a few.

    Set through the admin API, so the service invalidates its caches as for any write.
    """
    chosen = data.sampled_ids[-(sizes.ample_stock_products + sizes.scarce_products) :]
    data.ample_ids = chosen[: sizes.ample_stock_products]
    data.scarce_ids = chosen[sizes.ample_stock_products :]
    headers = {"Authorization": f"Bearer {data.admin_token}"}
    stock = {i: sizes.ample_stock for i in data.ample_ids}
    stock |= {i: sizes.scarce_stock for i in data.scarce_ids}
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=60) as client:

        async def patch(product_id: str, value: int) -> None:
            response = await client.patch(
                f"/v1/products/{product_id}", json={"stock": value}, headers=headers
            )
            response.raise_for_status()

        await bounded(
            [lambda p=p, v=v: patch(p, v) for p, v in stock.items()],  # type: ignore[misc]
            PREPARE_CONCURRENCY,
        )
    data.stock_before = stock
