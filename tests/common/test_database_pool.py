"""The PostgreSQL pool: a connection the server closed is never handed to a request."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shopfleet.common.database import create_engine
from shopfleet.common.pool import IdleClosingPool
from shopfleet.common.settings import Settings
from tests.support import POSTGRES_URL, eventually


async def test_a_connection_closed_by_the_server_is_replaced_on_checkout() -> None:
    settings = Settings(
        service="products",
        database_url=POSTGRES_URL,
        database_schema_prefix=f"pool{uuid.uuid4().hex[:6]}_",
        database_pool_size=1,
    )
    engine = create_engine(settings)
    admin = create_async_engine(POSTGRES_URL)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
        # The pooled connection is idle; the server ends it (as a restart would).
        async with admin.connect() as connection:
            await connection.execute(text(f"SELECT pg_terminate_backend({first})"))
        # The pooled connection's driver reads the server's goodbye in the background.
        await eventually(driver.is_closed)
        async with engine.connect() as connection:
            second = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
        pool = engine.pool
        assert isinstance(pool, IdleClosingPool)
        assert pool.checkedout() == 0
    finally:
        await engine.dispose()
        await admin.dispose()
