"""The issue's targets, evaluated from one run's figures (never written down by hand)."""

from __future__ import annotations

from collections.abc import Iterator

from shopfleet.bench.report import Run, Target

MEMORY_LIMIT_MB = 150.0


def _ratio_target(run: Run, name: str, base: str, minimum: float) -> Iterator[Target]:
    ratio = run.ratio(name, base)
    description = f"{name} >= {minimum}x {base} (requests/s)"
    if ratio is None:
        yield Target(description, "not measured", False)
    else:
        yield Target(description, f"{ratio:.2f}x", ratio >= minimum)


def _latency_targets(run: Run) -> Iterator[Target]:
    deep, first = run.by_name("list-deep"), run.by_name("list-page1")
    description = "list-deep p50 <= 1.5x list-page1 p50 (caches bypassed)"
    if deep is None or first is None or not first.load.p50_ms:
        yield Target(description, "not measured", False)
    else:
        ratio = deep.load.p50_ms / first.load.p50_ms
        measured = f"{deep.load.p50_ms:.2f} / {first.load.p50_ms:.2f} ms = {ratio:.2f}x"
        yield Target(description, measured, ratio <= 1.5)


def _order_targets(run: Run) -> Iterator[Target]:
    orders, floor = run.by_name("order-create"), run.by_name("floor")
    if orders is None or floor is None or not floor.load.rps:
        yield Target("order-create measured", "not measured", False)
        return
    per_second = orders.load.count(201) / orders.load.seconds if orders.load.seconds else 0.0
    ratio = per_second / floor.load.rps
    yield Target(
        "order-create >= 0.05x floor (orders/s)",
        f"{per_second:.0f} orders/s = {ratio:.3f}x",
        ratio >= 0.05,
    )
    p50, p99 = orders.load.p50_ms, orders.load.p99_ms
    yield Target(
        "order-create p99 <= 10x p50",
        f"{p99:.1f} / {p50:.1f} ms = {p99 / p50 if p50 else 0:.1f}x",
        bool(p50) and p99 <= 10 * p50,
    )
    checked = [o for o in run.outcomes if "stock" in o.extra]
    oversold = [o.name for o in checked if o.extra["stock"]["oversold"]]
    yield Target(
        "zero oversell (stock >= 0; stock taken == confirmed == reserved)",
        f"checked {', '.join(o.name for o in checked) or 'nothing'}; "
        f"oversold in {', '.join(oversold) or 'none'}",
        bool(checked) and not oversold,
    )


def _scaling_target(run: Run) -> Iterator[Target]:
    curve = run.scaling.get("product-cached", {})
    description = "scale-out: product-cached with 2 instances >= 1.4x 1 instance"
    if not curve.get(1) or 2 not in curve:
        yield Target(description, "not measured", False)
    else:
        ratio = curve[2] / curve[1]
        yield Target(description, f"{curve[2]:.0f} / {curve[1]:.0f} = {ratio:.2f}x", ratio >= 1.4)


def _clean_answers(run: Run) -> Iterator[Target]:
    errors = {o.name: o.load.socket_errors for o in run.outcomes if o.load.socket_errors}
    yield Target(
        "every scenario: zero socket errors",
        ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none",
        not errors,
    )
    unexpected = {o.name: o.unexpected for o in run.outcomes if o.unexpected}
    yield Target(
        "every scenario: zero unexpected statuses",
        ", ".join(f"{k}: {v}" for k, v in unexpected.items()) or "none",
        not unexpected,
    )


def _memory_target(run: Run) -> Iterator[Target]:
    memory: dict[str, float] = run.server.get("memory_mb", {})
    description = f"every instance's RSS after the run < {MEMORY_LIMIT_MB:.0f} MB"
    if not memory:
        yield Target(description, "not measured", False)
        return
    largest = max(memory, key=lambda name: memory[name])
    yield Target(
        description,
        f"largest {largest} {memory[largest]:.0f} MB",
        memory[largest] < MEMORY_LIMIT_MB,
    )


def evaluate(run: Run) -> list[Target]:
    """Every target of the issue, met or not, from this run's figures."""
    return [
        *_ratio_target(run, "product-anon", "ceiling", 0.6),
        *_ratio_target(run, "product-cached", "floor", 0.8),
        *_ratio_target(run, "product-db", "floor", 0.4),
        *_ratio_target(run, "list-page1", "floor", 0.25),
        *_ratio_target(run, "list-filtered", "floor", 0.2),
        *_latency_targets(run),
        *_order_targets(run),
        *_scaling_target(run),
        *_clean_answers(run),
        *_memory_target(run),
    ]
