"""`shopfleet up --autoscale`: load scales products up within the policy, with no failed
request; when the load stops it scales down only after the window, never below min."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from shopfleet.deploy.operator.runtime import RunDir, RunState
from tests.e2e.load import steady_reads
from tests.e2e.localrun import LocalRun, alive, base_env, write_topology
from tests.support import free_port

pytestmark = pytest.mark.e2e
WINDOW = 12  # scale-down stabilization, seconds
PERIOD = 5  # the rate policies' period, seconds


def replicas(run: LocalRun) -> int:
    return RunState.load(RunDir(run.var)).scale["products"]


async def test_load_scales_products_up_then_down_after_the_window(tmp_path: Path) -> None:
    topology = write_topology(
        tmp_path,
        instances={"auth": 1, "products": 1},
        services={"products": {"hpa": {"min": 1, "max": 3}}, "auth": {"hpa": {"min": 1, "max": 1}}},
        autoscaling={
            "cpu_target": 20,
            "memory_target": 400,  # memory stays far below: CPU alone decides
            "scale_up": {
                "stabilization_seconds": 0,
                "percent": 100,
                "pods": 1,
                "period_seconds": PERIOD,
            },
            "scale_down": {
                "stabilization_seconds": WINDOW,
                "percent": 50,
                "pods": 1,
                "period_seconds": PERIOD,
            },
            "period_seconds": 1,
            "readiness_delay_seconds": 2,
            "metrics_port": free_port(),
        },
    )
    run = LocalRun(tmp_path, topology, base_env(tmp_path / "var"), profile="bench")
    timeline: list[tuple[float, int]] = []
    pids: list[int] = []
    try:
        run.cli("up", "-d", "--autoscale", "--profile", "bench", "--topology", str(topology))
        pids = run.pids()
        async with httpx.AsyncClient(base_url=run.gateway, timeout=30) as client:
            registered = await client.post(
                "/v1/auth/register",
                json={"email": "load@example.com", "password": "correct-horse-1", "name": "L"},
            )
            assert registered.status_code == 201, registered.text
        # A token bypasses the gateway's micro-cache: every request reaches an instance.
        headers = {"Authorization": f"Bearer {registered.json()['accessToken']}"}
        started = time.monotonic()

        async def watch(until: float) -> None:
            while time.monotonic() < until:
                timeline.append((time.monotonic() - started, replicas(run)))
                if timeline[-1][1] == 3:
                    return
                await asyncio.sleep(0.5)

        async with steady_reads(f"{run.gateway}/v1/products", headers=headers, timeout=120) as load:
            await watch(time.monotonic() + 60)
            assert replicas(run) == 3, timeline
            # The third joins the gateway once ready; then all three serve under load.
            deadline = time.monotonic() + 30
            while "products-3" not in load.instances and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        load_ended = time.monotonic() - started
        print(f"\nload: {load}")
        assert load.failures == 0, str(load)
        assert set(load.instances) >= {"products-1", "products-2", "products-3"}, load.instances

        # Quiet now: nothing before the window has passed, then down to min, one per period.
        deadline = time.monotonic() + WINDOW + 4 * PERIOD + 30
        while replicas(run) > 1 and time.monotonic() < deadline:
            timeline.append((time.monotonic() - started, replicas(run)))
            await asyncio.sleep(0.5)
        timeline.append((time.monotonic() - started, replicas(run)))
        print(f"replicas over time: {timeline}")
        first_down = next(t for t, n in timeline if t > load_ended and n < 3)
        assert first_down - load_ended >= WINDOW - 2, timeline
        assert replicas(run) == 1 and min(n for _, n in timeline) >= 1, timeline
        # Up by at most 100 % (or 1 pod) per period: 1 -> 2, then 2 -> 3 at least a period later.
        reached = {n: next(t for t, m in timeline if m >= n) for n in (2, 3)}
        assert reached[3] - reached[2] >= PERIOD - 1.5, timeline

        status = run.cli("status").stdout
        assert "AUTOSCALER" in status and "products" in status, status
    finally:
        pids = pids or run.pids()
        run.down()
    assert alive(pids) == []
    # Every decision is logged with its inputs (read once the controller has stopped).
    decisions = [
        record
        for line in (run.var / "log" / "autoscaler.log").read_text().splitlines()
        if (record := json.loads(line)).get("msg") == "autoscaling decision"
        and record["service"] == "products"
    ]
    assert any(d["limited_by"] == "ScaleDownStabilized" for d in decisions), decisions
    up = next(d for d in decisions if d["desired"] > d["current"])
    cpu = next(m for m in up["metrics"] if m["metric"] == "cpu")
    assert cpu["utilization"] > 20 and cpu["replicas"] > 1, up
