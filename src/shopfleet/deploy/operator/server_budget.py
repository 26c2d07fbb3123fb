"""The connection budget against the real server: what `up` and `scale` check before
they start instances (the topology's own budget is checked by render/budget.py)."""

from __future__ import annotations

import asyncio
import os

from shopfleet.deploy.render.budget import BudgetError, check_local
from shopfleet.deploy.topology import Topology


async def server_max_connections(url: str) -> int:
    """Ask the server (`SHOW max_connections`) with one short-lived connection."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()


def check_server(topology: Topology, url: str) -> None:
    """Check the running instances against the server's real max_connections."""
    try:
        actual = asyncio.run(server_max_connections(url))
    except (OSError, TimeoutError, ValueError) as exc:
        raise BudgetError(f"cannot ask PostgreSQL for max_connections: {exc}") from None
    except Exception as exc:  # asyncpg's own errors (auth, too many clients): one line too
        raise BudgetError(
            f"cannot ask PostgreSQL for max_connections: {type(exc).__name__}: {exc}"
        ) from None
    check_local(topology, server_max_connections=actual)


def check_run(topology: Topology) -> None:
    """Before `up` or `scale`: the topology's budget, then the server's when PostgreSQL is used."""
    check_local(topology)
    url = os.environ.get("SHOPFLEET_DATABASE_URL", "")
    if url.startswith("postgresql"):
        check_server(topology, url)
