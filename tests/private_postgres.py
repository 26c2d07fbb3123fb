"""A private PostgreSQL server for one test module: its own port, its own limits.

For what the shared server must never be made to do: run out of connections. Uses
Debian's server binaries (/usr/lib/postgresql/<version>/bin); PostgreSQL refuses to run
as root, so as root the cluster belongs to the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port


def _bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return found[-1].parent


@dataclass(frozen=True)
class PrivateServer:
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """The same server for asyncpg itself (no SQLAlchemy driver prefix)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


@contextlib.contextmanager
def private_postgres(
    *, max_connections: int, superuser_reserved: int = 0
) -> Iterator[PrivateServer]:
    """Start a throwaway cluster (trust auth) and stop it after.

    `superuser_reserved` slots stay free for superusers (the test's own view of the server)
    when the other roles have used all the rest.
    """
    bin_dir = _bin_dir()
    owner = "postgres" if os.geteuid() == 0 else None
    user = owner or pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="shopfleet-pg-"))
    if owner:
        shutil.chown(root, owner, owner)
    data = root / "data"
    port = free_port()
    subprocess.run(
        _as_owner(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
            owner,
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        f"-c max_connections={max_connections} -c superuser_reserved_connections={superuser_reserved} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")]
    subprocess.run(
        _as_owner([*pg_ctl, "-o", options, "-w", "start"], owner), check=True, capture_output=True
    )
    try:
        yield PrivateServer(port=port, user=user)
    finally:
        subprocess.run(
            _as_owner([*pg_ctl, "-m", "immediate", "-w", "stop"], owner),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
