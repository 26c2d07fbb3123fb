"""The `shopfleet` command line."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from shopfleet.bench.command import bench
from shopfleet.common.settings import SERVICES, Settings
from shopfleet.deploy.commands import add_operate_commands
from shopfleet.deploy.operator.runtime import local_run_redis

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Run and operate shopfleet.")


def _check_service(service: str) -> str:
    if service not in SERVICES:
        raise typer.BadParameter(f"one of {', '.join(SERVICES)}")
    return service


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="auth, users, categories, products or orders")],
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 0,
    instance: Annotated[
        str,
        typer.Option(
            help="Instance number, shown in X-Instance; 'auto' names it after the host "
            "(a container's or pod's name), so replicas started alike differ"
        ),
    ] = "1",
) -> None:
    """Run one instance of a service (one process)."""
    from shopfleet.common.logging import configure_logging
    from shopfleet.server import run
    from shopfleet.services import app_factory

    _check_service(service)
    settings = Settings(service=service, instance=_instance_name(service, instance))
    if port == 0:
        port = DEFAULT_PORTS[service]
    configure_logging(service=service, instance=settings.instance_name, level=settings.log_level)
    run(
        app_factory(service)(settings),
        host=host,
        port=port,
        shutdown_timeout=settings.shutdown_timeout,
    )


DEFAULT_PORTS = {"auth": 3000, "products": 3001, "categories": 3002, "users": 3003, "orders": 3004}


def _instance_name(service: str, instance: str) -> str:
    if instance != "auto":
        return f"{service}-{instance}"
    host = socket.gethostname()
    return host if host.startswith(f"{service}-") else f"{service}-{host}"


@app.command()
def migrate(
    service: Annotated[str, typer.Argument(help="A service name, or 'all'")] = "all",
) -> None:
    """Apply every pending migration (idempotent)."""
    from shopfleet.common.migrations import migrate as run_migrations

    services = SERVICES if service == "all" else (_check_service(service),)

    async def _run() -> None:
        for name in services:
            await run_migrations(Settings(service=name), name)
            typer.echo(f"migrated {name}")

    asyncio.run(_run())


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email")],
    name: Annotated[str, typer.Option(help="Display name")] = "Administrator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an admin account, or promote an existing one (idempotent)."""
    from shopfleet.auth.passwords import Passwords
    from shopfleet.auth.schemas import RegisterRequest
    from shopfleet.auth.service import ensure_admin
    from shopfleet.common.database import create_engine, create_sessionmaker

    if not password_stdin:
        raise typer.BadParameter("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    try:
        data = RegisterRequest(email=email, password=password, name=name)
    except ValidationError as exc:
        # Name the fields and rules only: the input may be the password.
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"invalid admin: {reasons}", err=True)
        raise typer.Exit(2) from None
    settings = Settings(service="auth")

    async def _run() -> None:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as db:
                account, created = await ensure_admin(
                    db=db,
                    passwords=Passwords(settings),
                    email=data.email,
                    password=data.password,
                    name=data.name,
                )
                await db.commit()
            typer.echo(
                f"{'created' if created else 'promoted'} admin {account.email} ({account.id})"
            )
        finally:
            await engine.dispose()

    asyncio.run(_run())


def _seed_settings(service: str) -> Settings:
    """A service's settings for `shopfleet seed`: the environment's, and beside a local
    run without SHOPFLEET_REDIS_URL, that run's own Redis, so its instances learn at once
    that the lists and totals they cached are stale."""
    settings = Settings(service=service)
    if settings.redis_url is None:
        redis_url = local_run_redis(settings.data_dir)
        if redis_url is not None:
            return Settings(service=service, redis_url=redis_url)
    return settings


@app.command()
def seed(
    categories: Annotated[int, typer.Option(min=0, help="Categories to create")] = 20,
    products: Annotated[int, typer.Option(min=0, help="Products to create")] = 1000,
    users: Annotated[int, typer.Option(min=0, help="Customer accounts to create")] = 10,
    seed_value: Annotated[int, typer.Option("--seed", help="Same seed, same data")] = 1,
) -> None:
    """Migrate, then fill categories, products and auth with demo data (skips filled parts)."""
    from shopfleet.seed import seed_demo_data

    try:
        asyncio.run(
            seed_demo_data(
                settings_for=_seed_settings,
                categories=categories,
                products=products,
                users=users,
                seed=seed_value,
                echo=typer.echo,
            )
        )
    except ValueError as exc:
        typer.echo(f"seed: {exc}", err=True)
        raise typer.Exit(2) from None


# render, up, down, status, logs, scale, reload: shopfleet.deploy.commands.
add_operate_commands(app)
app.command()(bench)  # body: shopfleet.bench.command


def main() -> None:
    app()
