"""Small local runs on the embedded defaults (SQLite files, a private redis-server)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shopfleet.deploy.operator import local
from shopfleet.deploy.operator.runtime import RunDir, RunState, render_runtime
from tests.e2e.localrun import LocalRun, alive, base_env, write_topology

pytestmark = pytest.mark.e2e


async def test_up_limits_logins_at_the_gateway_and_down_leaves_no_process(
    tmp_path: Path,
) -> None:
    assert shutil.which("redis-server"), "scripts/setup installs redis-server"
    topology = write_topology(tmp_path, instances={"auth": 2})
    run = LocalRun(tmp_path, topology, base_env(tmp_path / "var"))
    pids: list[int] = []
    try:
        started = run.up()
        assert f"shopfleet is up: {run.gateway}/v1/" in started.stdout
        pids = run.pids()
        status = run.cli("status").stdout
        assert "redis " in status and "auth-2 " in status

        async with httpx.AsyncClient(base_url=run.gateway, timeout=30) as client:
            body = {"email": "nobody@example.com", "password": "wrong-password"}
            answers = await asyncio.gather(
                *(client.post("/v1/auth/login", json=body) for _ in range(30))
            )
        limited = [r for r in answers if r.status_code == 429]
        assert limited, [r.status_code for r in answers]
        assert {r.status_code for r in answers} <= {401, 429}
        for response in limited:
            assert response.headers["retry-after"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 429
            assert "x-instance" not in response.headers  # the gateway answered

        logs = run.cli("logs", "auth", "-n", "5").stdout
        assert "auth-1 | " in logs and "auth-2 | " in logs
    finally:
        pids = pids or run.pids()
        run.down()
    assert pids and alive(pids) == []
    assert not (run.var / "run" / "supervisor.sock").exists()
    assert "nothing running" in run.cli("down").stdout


_WITH_SIGINT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'shopfleet'; runpy.run_module('shopfleet', run_name='__main__')"
)


def test_ctrl_c_stops_everything_when_stdout_was_a_pipe_that_went_away(
    tmp_path: Path,
) -> None:
    """`scripts/up | tee up.log`, then Ctrl-C: the terminal interrupts tee too, so the
    foreground `up` stops the platform with nowhere to write; nothing may be left."""
    topology = write_topology(tmp_path, instances={"auth": 1})
    run = LocalRun(tmp_path, topology, base_env(tmp_path / "var"))
    # As from a terminal: SIGINT at its default, whatever this test was started under (a
    # background job of a shell without job control inherits SIGINT ignored).
    command = [sys.executable, "-c", _WITH_SIGINT, "up", "--topology", str(topology)]
    process = subprocess.Popen(
        command,
        cwd=run.root,
        env=run.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids: list[int] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Press Ctrl-C" in line:
                break
        pids = run.pids()
        assert pids, run.logs_tail()
        process.stdout.close()  # the pipe's reader is gone, as tee is after Ctrl-C
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        if run.supervisor.alive():
            pids = pids or run.pids()
            run.down()
            raise AssertionError("Ctrl-C left the platform running")
    assert alive(pids) == []


def test_the_memory_ceiling_restarts_an_instance_that_grows_past_it(
    tmp_path: Path,
) -> None:
    # An idle instance holds ~100 MB, so a 60 MB ceiling is crossed at once; nginx, Redis
    # and the watchdog itself stay below it.
    topology = write_topology(
        tmp_path,
        instances={"auth": 1},
        process={"memory_ceiling_mb": 60, "memory_check_seconds": 5},
    )
    run_dir = RunDir(tmp_path / "var")
    state = RunState(topology=str(topology), profile="default", scale={"auth": 1})
    render_runtime(run_dir, state)
    local.migrate(run_dir, ["auth"])
    env = base_env(run_dir.var)
    run = LocalRun(tmp_path, topology, env)
    subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(run_dir.supervisor_conf)],
        env=env,
        check=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not run.supervisor.alive() or not run.pid_of("auth-1"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        first = run.pid_of("auth-1")
        deadline = time.monotonic() + 60
        while run.pid_of("auth-1") in (0, first):
            assert time.monotonic() < deadline, run.logs_tail()
            time.sleep(0.5)
        assert "Restarting auth-1:auth-1" in (run_dir.log / "memmon.log").read_text()
    finally:
        pids = run.pids()
        local.down(run_dir=run_dir, echo=print)
    assert alive(pids) == []
