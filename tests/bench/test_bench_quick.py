"""`shopfleet bench --quick` from the command line: a smoke test, no performance thresholds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shopfleet.bench.scenarios import MAIN, SCALE_COUNTS, SCALED
from tests.support import POSTGRES_URL, REDIS_URL, REPO_ROOT

pytestmark = pytest.mark.e2e
READS = ("ceiling", "floor", "product-anon", "product-cached", "product-db", "list-page1",
         "list-filtered", "list-deep")  # fmt: skip


def test_quick_bench_writes_a_report_with_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "shopfleet", "bench", "--quick", "--out", str(out),
         "--database-url", POSTGRES_URL, "--redis-url", REDIS_URL],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    for name in ("report.md", "results.json", "throughput.png", "latency.png", "scaling.png"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    rows = {row["scenario"]: row for row in results["scenarios"]}
    expected = [s.name for s in MAIN] + [f"{s.name}@{n}" for n in SCALE_COUNTS for s in SCALED]
    assert sorted(rows) == sorted(expected)
    for name, row in rows.items():
        assert row["requests"] > 0, name
    for name in READS:
        assert rows[name]["socket_errors"] == 0, (name, rows[name]["socket_errors_by_kind"])
    assert not rows["order-stockout"]["stock"]["oversold"]
    assert rows["order-stockout"]["statuses"].get("409", 0) > 0, "the scarce stock ran out"
    assert {t["description"] for t in results["targets"]}, "targets were evaluated"
    assert "| ceiling |" in (out / "report.md").read_text()
