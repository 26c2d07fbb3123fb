"""What PgBouncer's transaction pooling costs asyncpg: the app's engine, side by side.

Kubernetes runs the services behind PgBouncer 1.18 (Debian 12) in transaction mode when
the HPA maximums exceed the connection budget. PgBouncer 1.18 cannot keep a named
prepared statement across transactions, so the pods run with asyncpg's statement cache
off (`SHOPFLEET_DATABASE_PGBOUNCER=true`). This measures, in one run, request-shaped
transactions (BEGIN; SELECT by primary key x N; COMMIT) through:

  direct-cached   PostgreSQL directly, statement caches on (local, PM2, Compose)
  direct-nocache  PostgreSQL directly, caches off: the cost of no prepared statements
  pgbouncer       PgBouncer transaction mode, caches off: what Kubernetes runs
  pgbouncer-cached  PgBouncer with the caches on: shows why they must be off

    .venv/bin/python bench/pgbouncer_prepared.py [--transactions 1500] [--rounds 7]

Needs /usr/sbin/pgbouncer (apt-get install pgbouncer) and the test PostgreSQL
(127.0.0.1:5432, database test, trust; SHOPFLEET_TEST_POSTGRES_URL to change it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shopfleet.common.database import create_engine
from shopfleet.common.settings import Settings

POSTGRES_URL = os.environ.get(
    "SHOPFLEET_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
)
ROWS = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_pgbouncer(
    directory: Path, schema: str, pool_size: int
) -> tuple[subprocess.Popen[bytes], int]:
    url = make_url(POSTGRES_URL)
    port = _free_port()
    (directory / "userlist.txt").write_text(f'"{url.username}" ""\n')
    # The same shape as the rendered deploy/kubernetes/base/pgbouncer.yaml.
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"bench = host={url.host} port={url.port} dbname={url.database} "
        f"pool_size={pool_size} max_db_connections={pool_size} "
        f"connect_query='SET search_path TO {schema}'\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory}/userlist.txt\n"
        "pool_mode = transaction\nmax_client_conn = 1000\ndefault_pool_size = 1\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    command = ["/usr/sbin/pgbouncer", "-q", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        shutil.chown(directory, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("pgbouncer did not start")


def _engines(schema_prefix: str, pgbouncer_port: int, pool_size: int) -> dict[str, AsyncEngine]:
    common: dict[str, Any] = {
        "service": "products",
        "database_schema_prefix": schema_prefix,
        "database_pool_size": pool_size,
        "database_pool_timeout": 30.0,
    }
    via_pgbouncer = make_url(POSTGRES_URL).set(port=pgbouncer_port, database="bench")
    pooled_url = via_pgbouncer.render_as_string(hide_password=False)
    engines = {
        "direct-cached": create_engine(Settings(database_url=POSTGRES_URL, **common)),
        # PgBouncer's connect arguments (as the app sets them), with the search_path set
        # directly instead of by PgBouncer's connect_query.
        "direct-nocache": create_async_engine(
            POSTGRES_URL,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={
                "statement_cache_size": 0,
                "prepared_statement_cache_size": 0,
                "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4().hex}__",
                "server_settings": {"search_path": f"{schema_prefix}products"},
            },
        ),
        "pgbouncer": create_engine(
            Settings(database_url=pooled_url, database_pgbouncer=True, **common)
        ),
        "pgbouncer-cached": create_async_engine(pooled_url, pool_size=pool_size, max_overflow=0),
    }
    return engines


async def _transactions(
    engine: AsyncEngine, *, count: int, concurrency: int, selects: int
) -> tuple[float, int, str]:
    """Run `count` transactions of `selects` primary-key reads; (seconds, failures, error)."""
    failures = 0
    error = ""
    remaining = count
    rng = random.Random(1)  # ids to read, not secrets

    async def worker() -> None:
        nonlocal remaining, failures, error
        while remaining > 0:
            remaining -= 1
            try:
                async with engine.begin() as connection:
                    for _ in range(selects):
                        await connection.execute(
                            text("SELECT id, name, price FROM items WHERE id = :id"),
                            {"id": rng.randint(1, ROWS)},
                        )
            except Exception as exc:
                failures += 1
                error = error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, failures, error


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    prefix = f"pgb{uuid.uuid4().hex[:6]}_"
    schema = f"{prefix}products"
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.execute(
            text(f'CREATE TABLE "{schema}".items (id int PRIMARY KEY, name text, price numeric)')
        )
        await connection.execute(
            text(
                f'INSERT INTO "{schema}".items '  # noqa: S608 (our own schema name)
                "SELECT i, 'item ' || i, i * 1.5 FROM generate_series(1, :rows) AS i"
            ),
            {"rows": ROWS},
        )
    directory = Path(tempfile.mkdtemp(prefix="shopfleet-pgbouncer-"))
    process: subprocess.Popen[bytes] | None = None
    engines: dict[str, AsyncEngine] = {}
    results: dict[tuple[str, int, int], list[float]] = {}
    errors: dict[str, str] = {}
    shapes = ((1, 1), (args.concurrency, 1), (args.concurrency, 3))
    try:
        process, port = _start_pgbouncer(directory, schema, args.pool_size)
        engines = _engines(prefix, port, args.pool_size)
        for engine in engines.values():  # connect and warm every engine first
            await _transactions(engine, count=50, concurrency=1, selects=1)
        for _ in range(args.rounds):  # interleaved, so noise hits every variant alike
            for name, engine in engines.items():
                for concurrency, selects in shapes:
                    seconds, failures, error = await _transactions(
                        engine, count=args.transactions, concurrency=concurrency, selects=selects
                    )
                    if failures:
                        errors[name] = f"{failures}/{args.transactions} failed: {error}"
                    results.setdefault((name, concurrency, selects), []).append(
                        args.transactions / seconds
                    )
    finally:
        for engine in engines.values():
            await engine.dispose()
        if process is not None:
            process.terminate()
            process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
    print(f"transactions/s: median (min-max) of {args.rounds} interleaved rounds of")
    print(
        f"{args.transactions} transactions; pool {args.pool_size}; clients x reads per transaction"
    )
    print(f"{'variant':18}" + "".join(f"{f'{c} x {r}':>20}" for c, r in shapes))
    for name in engines:
        cells = []
        for c, r in shapes:
            values = sorted(results[(name, c, r)])
            median = statistics.median(values)
            cells.append(f"{median:.0f} ({values[0]:.0f}-{values[-1]:.0f})")
        print(f"{name:18}" + "".join(f"{cell:>20}" for cell in cells))
    for name, error in errors.items():
        print(f"{name}: {error}")


if __name__ == "__main__":
    asyncio.run(main())
