"""Before a bench run: the tools it drives and the servers it needs are there."""

from __future__ import annotations

import shutil
from pathlib import Path


def check_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if not _which(tool)]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: run scripts/setup (installs them)")


async def check_backends(database_url: str, redis_url: str) -> None:
    """Fail early and plainly when PostgreSQL or Redis cannot be reached."""
    from redis import asyncio as redis
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise RuntimeError(f"cannot use PostgreSQL at {database_url}: {exc}") from None
    finally:
        await engine.dispose()
    client = redis.Redis.from_url(redis_url)
    try:
        await client.ping()
    except Exception as exc:
        raise RuntimeError(f"cannot use Redis at {redis_url}: {exc}") from None
    finally:
        await client.aclose()


def _which(tool: str) -> str | None:
    return shutil.which(tool) or (
        f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None
    )
