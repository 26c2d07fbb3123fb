"""Alembic, one history per service, run programmatically on the service's own engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import JSON, MetaData, text
from sqlalchemy.engine import Connection

from shopfleet.common.database import create_engine
from shopfleet.common.settings import SERVICES, Settings

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str) -> Config:
    """Return the Alembic config of one service's migration history."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    config = Config()
    config.set_main_option("script_location", str(PACKAGE_ROOT / service / "migrations"))
    return config


async def migrate(settings: Settings, service: str, revision: str = "head") -> None:
    """Bring one service's database to `revision`; running it again changes nothing."""
    config = alembic_config(service)
    engine = create_engine(settings, service)
    schema = settings.database_schema_for(service)
    try:
        if schema:
            async with engine.begin() as connection:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        async with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["schema"] = schema
            await connection.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    # Autogenerate renders JSONType's PostgreSQL variant as a bare `postgresql.JSONB`
    # without importing it; name the shared type instead.
    if kind == "type" and isinstance(obj, JSON) and "postgresql" in obj._variant_mapping:
        autogen_context.imports.add("import shopfleet.common.database")
        return "shopfleet.common.database.JSONType"
    return False


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `shopfleet migrate`, not the alembic command")
    schema = context.config.attributes.get("schema")
    options: dict[str, Any] = {
        "connection": connection,
        "target_metadata": metadata,
        "render_item": _render_item,
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
    }
    if schema:
        options["version_table_schema"] = schema
    context.configure(**options)
    with context.begin_transaction():
        context.run_migrations()


async def make_revision(settings: Settings, service: str, message: str) -> None:
    """Autogenerate a new revision of a service's history against an up-to-date database."""
    await migrate(settings, service)
    config = alembic_config(service)
    engine = create_engine(settings, service)
    try:
        async with engine.begin() as connection:
            config.attributes["schema"] = settings.database_schema_for(service)
            await connection.run_sync(_revision, config, message)
    finally:
        await engine.dispose()


def _revision(connection: Connection, config: Config, message: str) -> None:
    config.attributes["connection"] = connection
    count = len(
        list(
            (PACKAGE_ROOT / config.get_main_option("script_location", "") / "versions").glob("*.py")
        )
    )
    command.revision(config, message=message, autogenerate=True, rev_id=f"{count + 1:04d}")
