"""`shopfleet scale` refuses to grow past the connection budget, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.localrun import LocalRun, base_env, write_topology

pytestmark = pytest.mark.e2e


def test_scale_refuses_instances_the_database_cannot_hold(tmp_path: Path) -> None:
    # Budget 16 - 10 = 6 connections; pools of 2: three products instances fit, four do not.
    topology = write_topology(
        tmp_path,
        instances={"products": 1},
        database={"max_connections": 16, "reserved": 10, "pool_size": 2, "pool_min": 1},
    )
    run = LocalRun(tmp_path, topology, base_env(tmp_path / "var"))
    try:
        run.up()
        refused = run.cli("scale", "products=4", check=False)
        assert refused.returncode == 1
        (line,) = refused.stderr.splitlines()
        assert line.startswith("error: connection budget exceeded: 4 instances may open 8"), line
        assert "max_connections 16 - 10 reserved leaves 6" in line
        status = run.cli("status").stdout
        assert "products-1 " in status and "products-2 " not in status  # nothing started

        run.cli("scale", "products=2")
        assert "products-2 " in run.cli("status").stdout
    finally:
        run.down()
