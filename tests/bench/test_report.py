"""The report and the targets, from figures made up here (no load, no processes)."""

from __future__ import annotations

import json
from pathlib import Path

from shopfleet.bench.platform import (
    SINGLE_PORTS,
    ephemeral_port_start,
    free_base_port,
    free_port,
    port_free,
)
from shopfleet.bench.report import Outcome, Run, write
from shopfleet.bench.serverside import difference, parse_metrics
from shopfleet.bench.targets import evaluate
from shopfleet.bench.wrk import Load
from shopfleet.common.settings import SERVICES


def load(rps: float, *, p50: float = 1.0, p99: float = 2.0, statuses: dict[int, int] | None = None,
         errors: int = 0) -> Load:  # fmt: skip
    requests = int(rps * 10)
    return Load(requests, 10.0, p50, 1.5, p99, 3.0, errors, statuses or {200: requests})


def run(**overrides: float) -> Run:
    rps = {"ceiling": 10_000, "floor": 2_000, "product-anon": 7_000, "product-cached": 1_700,
           "product-db": 900, "list-page1": 600, "list-filtered": 450, "list-deep": 400,
           "login": 10, "order-create": 150} | overrides  # fmt: skip
    outcomes = [Outcome(name, name, load(value)) for name, value in rps.items()]
    deep = next(o for o in outcomes if o.name == "list-deep")
    deep.load.p50_ms = 1.2  # vs list-page1's 1.0
    orders = next(o for o in outcomes if o.name == "order-create")
    orders.expected = (201,)
    orders.load.statuses = {201: orders.load.requests}
    orders.extra["stock"] = {
        "products": 3, "stock_taken": 9, "confirmed_quantity": 9, "reserved_quantity": 9,
        "orders_by_status": {"confirmed": 5}, "oversold": False,
    }  # fmt: skip
    return Run(
        meta={"date": "2026-01-01 00:00 UTC", "git_sha": "abc1234"},
        outcomes=outcomes,
        scaling={"product-cached": {1: 1000.0, 2: 1500.0, 3: 1700.0}},
        server={"memory_mb": {"products-1": 120.0, "auth-1": 101.0}},
    )


def met(targets_run: Run) -> dict[str, bool]:
    return {t.description: t.met for t in evaluate(targets_run)}


def test_targets_are_computed_from_the_figures() -> None:
    assert all(met(run()).values()), met(run())
    missed = met(
        run(**{"product-anon": 5_000, "product-db": 700, "list-page1": 300, "order-create": 90})
    )
    assert not missed["product-anon >= 0.6x ceiling (requests/s)"]
    assert not missed["product-db >= 0.4x floor (requests/s)"]
    assert not missed["list-page1 >= 0.25x floor (requests/s)"]
    assert missed["list-filtered >= 0.2x floor (requests/s)"]
    assert not missed["order-create >= 0.05x floor (orders/s)"]
    assert missed["product-cached >= 0.8x floor (requests/s)"]


def test_errors_unexpected_answers_oversell_and_memory_fail_their_targets() -> None:
    figures = run()
    figures.outcomes[0].load.socket_errors = 3
    figures.outcomes[1].load.statuses[502] = 1
    figures.by_name("order-create").extra["stock"]["oversold"] = True  # type: ignore[union-attr]
    figures.server["memory_mb"]["products-2"] = 151.0
    failed = {t.description for t in evaluate(figures) if not t.met}
    assert failed == {
        "every scenario: zero socket errors",
        "every scenario: zero unexpected statuses",
        "zero oversell (stock >= 0; stock taken == confirmed == reserved)",
        "every instance's RSS after the run < 150 MB",
    }


def test_the_report_holds_every_scenario_its_ratios_and_charts(tmp_path: Path) -> None:
    figures = run()
    figures.targets = evaluate(figures)
    report = write(figures, tmp_path)
    text = report.read_text()
    assert "| product-anon | 7000 |" in text and "| 0.70 |" in text
    assert "## Targets" in text and "## Scale-out" in text
    results = json.loads((tmp_path / "results.json").read_text())
    anon = next(row for row in results["scenarios"] if row["scenario"] == "product-anon")
    assert anon["x_ceiling"] == 0.7 and anon["x_floor"] == 3.5
    for chart in ("throughput.png", "latency.png", "scaling.png"):
        assert (tmp_path / chart).read_bytes().startswith(b"\x89PNG")


def test_the_report_says_when_a_baseline_was_disturbed_or_the_machine_stalled(
    tmp_path: Path,
) -> None:
    clean = run()
    clean.meta["seconds"] = 10
    clean.targets = evaluate(clean)
    write(clean, tmp_path / "clean")
    assert "Read with care" not in (tmp_path / "clean" / "report.md").read_text()
    assert json.loads((tmp_path / "clean" / "results.json").read_text())["caveats"] == []

    disturbed = run()
    disturbed.meta["seconds"] = 10
    floor = next(o for o in disturbed.outcomes if o.name == "floor")
    floor.extra["others_percent"] = 20.5
    ceiling = next(o for o in disturbed.outcomes if o.name == "ceiling")
    ceiling.extra["others_percent"] = 9.9  # under the line: not a caveat
    stalled = next(o for o in disturbed.outcomes if o.name == "list-page1")
    stalled.load.seconds = 19.9
    disturbed.targets = evaluate(disturbed)
    text = write(disturbed, tmp_path / "disturbed").read_text()
    caveats = json.loads((tmp_path / "disturbed" / "results.json").read_text())["caveats"]
    assert len(caveats) == 2
    assert "`floor`" in caveats[0] and "20.5 %" in caveats[0]
    assert "`list-page1` ran 19.9 s for 10 s" in caveats[1]
    assert "**Read with care:**" in text and "20.5 %" in text


METRICS = """# TYPE http_requests_total counter
http_requests_total{method="GET",route="/v1/products/{product_id}",status="200"} 90.0
http_requests_total{method="GET",route="/metrics",status="200"} 7.0
# TYPE cache_requests_total counter
cache_requests_total{prefix="products:detail",result="hit"} 80.0
cache_requests_total{prefix="products:detail",result="miss"} 20.0
"""


def test_server_figures_are_the_difference_of_two_scrapes() -> None:
    before = {"products-1": parse_metrics(METRICS.replace("90.0", "40.0").replace("80.0", "0.0"))}
    after = {"products-1": parse_metrics(METRICS)}
    found = difference(before, after)
    assert found["requests_by_instance"] == {"products-1": 50}  # scrapes are not counted
    assert found["cache"]["products:detail"] == {"hit": 80, "miss": 0, "hit_ratio": 1.0}


def test_instance_ports_are_chosen_below_the_ephemeral_range() -> None:
    # An outgoing connection may take any ephemeral port before an instance binds it.
    start = ephemeral_port_start()
    for _ in range(20):
        base = free_base_port(6)
        assert base >= 20000 and base + len(SERVICES) + 10 * 6 <= start


def test_single_ports_are_below_the_instance_blocks_free_and_never_handed_out_twice() -> None:
    ports = [free_port(range(15000, 15040)) for _ in range(30)]
    assert len(set(ports)) == 30 and all(15000 <= port < 15040 for port in ports)
    assert all(port_free(port) for port in ports)
    everyday = free_port()
    assert SINGLE_PORTS.start <= everyday < SINGLE_PORTS.stop < ephemeral_port_start()
