"""Start Debian's exporters with connection strings taken from the environment.

The Redis and PostgreSQL URLs may hold passwords, so they never go into the rendered
supervisor file: supervisor runs `python -m shopfleet.deploy.exporters redis|postgres`,
which reads `SHOPFLEET_*` like the instances do and execs the exporter.
"""

from __future__ import annotations

import os
import sys

EXPORTERS = {
    "redis": "/usr/bin/prometheus-redis-exporter",
    "postgres": "/usr/bin/prometheus-postgres-exporter",
}


def exporter_environment(kind: str, environ: dict[str, str]) -> dict[str, str]:
    """The exporter's own variables (REDIS_ADDR, DATA_SOURCE_NAME) from SHOPFLEET_*."""
    env = dict(environ)
    if kind == "redis":
        env["REDIS_ADDR"] = environ["SHOPFLEET_REDIS_URL"]
    elif kind == "postgres":
        url = environ["SHOPFLEET_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        env["DATA_SOURCE_NAME"] = url + ("&" if "?" in url else "?") + "sslmode=disable"
    else:
        raise ValueError(f"unknown exporter {kind!r}")
    return env


def main() -> None:
    kind, *args = sys.argv[1:]
    binary = EXPORTERS[kind]
    os.execve(binary, [binary, *args], exporter_environment(kind, dict(os.environ)))  # noqa: S606


if __name__ == "__main__":
    main()
