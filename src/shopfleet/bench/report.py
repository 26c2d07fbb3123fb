"""Write a bench run's results: results.json, report.md and PNG charts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shopfleet.bench.wrk import Load


@dataclass
class Outcome:
    """One scenario's load figures and what was expected of its answers."""

    name: str
    description: str
    load: Load
    expected: tuple[int, ...] = (200,)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unexpected(self) -> int:
        return sum(n for s, n in self.load.statuses.items() if s not in self.expected)


@dataclass
class Target:
    description: str
    measured: str
    met: bool


@dataclass
class Run:
    meta: dict[str, Any]
    outcomes: list[Outcome]
    scaling: dict[str, dict[int, float]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    def by_name(self, name: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.name == name), None)

    def ratio(self, name: str, base: str) -> float | None:
        outcome, reference = self.by_name(name), self.by_name(base)
        if outcome is None or reference is None or not reference.load.rps:
            return None
        return outcome.load.rps / reference.load.rps


def _row(run: Run, outcome: Outcome) -> dict[str, Any]:
    load = outcome.load
    return {
        "scenario": outcome.name,
        "description": outcome.description,
        "rps": round(load.rps, 1),
        "p50_ms": round(load.p50_ms, 2),
        "p95_ms": round(load.p95_ms, 2),
        "p99_ms": round(load.p99_ms, 2),
        "max_ms": round(load.max_ms, 2),
        "requests": load.requests,
        "seconds": round(load.seconds, 2),
        "socket_errors": load.socket_errors,
        "socket_errors_by_kind": load.errors,
        "non_2xx": load.non_2xx,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "expected": list(outcome.expected),
        "unexpected": outcome.unexpected,
        "x_ceiling": _round(run.ratio(outcome.name, "ceiling")),
        "x_floor": _round(run.ratio(outcome.name, "floor")),
        "header_counts": load.tags,
        "notes": outcome.notes,
        **outcome.extra,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write(run: Run, directory: Path) -> Path:
    """Write the report files into `directory`; return the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [_row(run, outcome) for outcome in run.outcomes]
    results = {
        "meta": run.meta,
        "scenarios": rows,
        "scaling": {k: {str(n): v for n, v in c.items()} for k, c in run.scaling.items()},
        "server": run.server,
        "targets": [asdict(t) for t in run.targets],
        "caveats": caveats(run),
    }
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    (directory / "results.json").write_text(text)
    charts = _charts(run, directory)
    report = directory / "report.md"
    report.write_text(_markdown(run, rows, charts))
    return report


def _markdown(run: Run, rows: list[dict[str, Any]], charts: list[str]) -> str:
    meta = run.meta
    lines = [
        f"# shopfleet bench: {meta.get('date', '')} ({meta.get('git_sha', '')})",
        "",
        f"Command: `{meta.get('command', '')}`. Machine: {meta.get('machine', '')}. "
        f"Catalog: {meta.get('products')} products, {meta.get('users')} customers. "
        f"Each scenario: {meta.get('seconds')} s after a {meta.get('warmup_seconds')} s "
        f"warm-up, {meta.get('connections')} connections (unless noted), wrk on loopback "
        "through the gateway. Ratios are to `ceiling` and `floor` measured in this same run.",
        "",
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | requests | socket errors | non-2xx "
        "| unexpected | x ceiling | x floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {row['rps']:.0f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {row['requests']} | {row['socket_errors']} "
            f"| {row['non_2xx']} | {row['unexpected']} | {_fmt(row['x_ceiling'])} "
            f"| {_fmt(row['x_floor'])} |"
        )
    lines += _targets(run) + _scaling(run) + _cpu(rows) + ["", "## Scenarios", ""]
    for row in rows:
        lines.append(f"- **{row['scenario']}**: {row['description']}. {_details(row)}")
    lines += _memory(run)
    lines += ["", *[f"![{c}]({c})" for c in charts], ""]
    return "\n".join(lines)


# Above this share of the machine taken by other processes, a baseline is disturbed.
DISTURBED_OTHERS_PERCENT = 10.0
# A wrk run this much longer than asked means the machine stalled under it.
STALLED_FACTOR = 1.2


def caveats(run: Run) -> list[str]:
    """What in this run's own figures says its ratios mislead: a disturbed baseline (the
    `ceiling` or `floor` that every ratio divides by) or a scenario the machine stalled."""
    found = []
    for base in ("ceiling", "floor"):
        outcome = run.by_name(base)
        others = outcome.extra.get("others_percent") if outcome is not None else None
        if others is not None and others > DISTURBED_OTHERS_PERCENT:
            found.append(
                f"during `{base}`, processes outside the platform took {others} % of the "
                f"machine: `{base}` is depressed, so every 'x {base}' ratio of this run is "
                "lifted; compare the CPU per request instead"
            )
    asked = run.meta.get("seconds")
    for outcome in run.outcomes:
        if asked and outcome.load.seconds > STALLED_FACTOR * asked + 1:
            found.append(
                f"`{outcome.name}` ran {outcome.load.seconds:.1f} s for {asked} s of load: "
                "the machine stalled under it (its figures, and the ones after it, are "
                "not comparable)"
            )
    return found


def _targets(run: Run) -> list[str]:
    if not run.targets:
        return []
    lines = ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for target in run.targets:
        met = "yes" if target.met else "**no**"
        lines.append(f"| {target.description} | {target.measured} | {met} |")
    warnings = caveats(run)
    if warnings:
        lines += ["", "**Read with care:**", "", *(f"- {warning}." for warning in warnings)]
    return lines


def _scaling(run: Run) -> list[str]:
    if not run.scaling:
        return []
    counts = sorted({n for curve in run.scaling.values() for n in curve})
    lines = [
        "",
        "## Scale-out (products instances; requests/s)",
        "",
        "| scenario | " + " | ".join(f"{n} instance(s)" for n in counts) + " | 2 vs 1 |",
        "|---|" + "---:|" * (len(counts) + 1),
    ]
    for name, curve in run.scaling.items():
        figures = " | ".join(f"{curve[n]:.0f}" if n in curve else "" for n in counts)
        gain = f"{curve[2] / curve[1]:.2f}x" if curve.get(1) and 2 in curve else ""
        lines.append(f"| {name} | {figures} | {gain} |")
    return lines


def _cpu(rows: list[dict[str, Any]]) -> list[str]:
    """CPU ms per request by process group: what throughput costs, whatever else ran."""
    measured = [row for row in rows if row.get("cpu_ms_per_request")]
    if not measured:
        return []
    groups = sorted({g for row in measured for g in row["cpu_ms_per_request"]})
    lines = [
        "",
        "## CPU per request (ms, all cores; postgres and redis: every backend on the machine)",
        "",
        "| scenario | " + " | ".join(groups) + " | machine busy % | others % |",
        "|---|" + "---:|" * (len(groups) + 2),
    ]
    for row in measured:
        cpu = row["cpu_ms_per_request"]
        cells = " | ".join(f"{cpu[g]:.3f}" if g in cpu else "" for g in groups)
        lines.append(
            f"| {row['scenario']} | {cells} | {row.get('machine_busy_percent')} "
            f"| {row.get('others_percent')} |"
        )
    return lines


def _details(row: dict[str, Any]) -> str:
    parts = [f"Answers {row['statuses']} (expected {row['expected']})"]
    if row["socket_errors"]:
        parts.append(f"socket errors {row['socket_errors_by_kind']}")
    if row["header_counts"]:
        parts.append(f"response header counts {row['header_counts']}")
    server = row.get("server") or {}
    for prefix, figures in server.get("cache", {}).items():
        parts.append(
            f"cache {prefix}: {figures['hit']} hits, {figures['miss']} misses "
            f"(hit ratio {figures['hit_ratio']})"
        )
    if server.get("requests_by_instance"):
        parts.append(f"requests per instance {server['requests_by_instance']}")
    if "stock" in row:
        stock = row["stock"]
        parts.append(
            f"stock check: {stock['products']} products, taken {stock['stock_taken']}, "
            f"confirmed {stock['confirmed_quantity']}, reserved {stock['reserved_quantity']}, "
            f"orders {stock['orders_by_status']}, oversold: {'YES' if stock['oversold'] else 'no'}"
        )
    if "loadavg" in row:
        parts.append(f"1-min load average before/after {row['loadavg']}")
    parts += row["notes"]
    return "; ".join(parts) + "."


def _memory(run: Run) -> list[str]:
    memory: dict[str, float] = run.server.get("memory_mb", {})
    if not memory:
        return []
    lines = ["", "## Memory after the run (RSS)", "", "| instance | MB |", "|---|---:|"]
    lines += [f"| {name} | {mb:.1f} |" for name, mb in memory.items()]
    return lines


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _charts(run: Run, directory: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [o.name for o in run.outcomes]
    written = []
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(names, [o.load.rps for o in run.outcomes], color="#3b7dd8")
    ax.set_ylabel("requests/s")
    ax.set_yscale("log")
    ax.set_title("Throughput per scenario (log scale)")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    fig.tight_layout()
    fig.savefig(directory / "throughput.png", dpi=80)
    plt.close(fig)
    written.append("throughput.png")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    positions = range(len(names))
    for offset, (label, values) in enumerate(
        (
            ("p50", [o.load.p50_ms for o in run.outcomes]),
            ("p95", [o.load.p95_ms for o in run.outcomes]),
            ("p99", [o.load.p99_ms for o in run.outcomes]),
        )
    ):
        ax.bar([p + (offset - 1) * width for p in positions], values, width, label=label)
    ax.set_xticks(list(positions), names, rotation=35, ha="right")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title("Latency percentiles per scenario (log scale)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / "latency.png", dpi=80)
    plt.close(fig)
    written.append("latency.png")

    if run.scaling:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, curve in run.scaling.items():
            counts = sorted(curve)
            ax.plot(counts, [curve[n] for n in counts], marker="o", label=name)
        ax.set_xlabel("products instances")
        ax.set_ylabel("requests/s")
        ax.set_xticks(sorted(next(iter(run.scaling.values()))))
        ax.set_title("Scale-out")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "scaling.png", dpi=80)
        plt.close(fig)
        written.append("scaling.png")
    return written
