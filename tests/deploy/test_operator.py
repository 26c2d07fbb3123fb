"""The local operator's failures read as one clear error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfleet.deploy.operator.local import wait_ready
from shopfleet.deploy.operator.runtime import OperateError, RunDir, RunState

REPO = Path(__file__).resolve().parents[2]


def test_supervisord_gone_while_instances_start_is_an_operate_error(tmp_path: Path) -> None:
    """supervisord died during `shopfleet up` (its socket is gone): the error names it
    and shows its log, which `up` prints in one message after stopping what is left."""
    run_dir = RunDir(tmp_path / "var")
    run_dir.make()
    (run_dir.log / "supervisord.log").write_text("CRIT could not bind the socket\n")
    state = RunState(topology=str(REPO / "shopfleet.toml"), profile="default", scale={})
    with pytest.raises(OperateError) as raised:
        wait_ready(run_dir, state, ["products-1"], timeout=5)
    message = str(raised.value)
    assert "supervisord stopped while products-1 was starting" in message
    assert "CRIT could not bind the socket" in message
