"""Every service's migration history builds its models' schema exactly, on both engines."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shopfleet.common.database import create_engine
from shopfleet.common.migrations import migrate
from shopfleet.common.settings import SERVICES
from tests.support import POSTGRES_URL, base_settings


def _diff(connection: Connection, service: str) -> list[object]:
    metadata = importlib.import_module(f"shopfleet.{service}.models").Base.metadata
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("service", SERVICES)
async def test_history_matches_models(service: str, backend: str, tmp_path: Path) -> None:
    prefix = f"m{uuid.uuid4().hex[:8]}_"
    settings = base_settings(service, backend, tmp_path, database_schema_prefix=prefix)
    try:
        await migrate(settings, service)
        await migrate(settings, service)  # a second run changes nothing and does not fail
        engine = create_engine(settings)
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff, service)
            version = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
        await engine.dispose()
        assert diff == [], f"models and migrations of {service} disagree: {diff}"
        assert version
    finally:
        if backend == "postgres":
            engine = create_async_engine(POSTGRES_URL)
            async with engine.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}{service}" CASCADE'))
            await engine.dispose()
