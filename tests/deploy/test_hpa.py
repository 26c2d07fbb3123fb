"""The HPA algorithm against Kubernetes' documented behaviour, as table tests."""

from __future__ import annotations

import pytest
import yaml

from shopfleet.deploy.operator.autoscaler_inputs import behavior_from_hpa, targets_from_hpa
from shopfleet.deploy.operator.hpa import (
    Behavior,
    HpaState,
    MetricProposal,
    PodSample,
    Policy,
    Rules,
    ScaleEvent,
    decide,
    metric_replicas,
    record_scale,
)
from shopfleet.deploy.render.kubernetes_autoscaling import autoscaler_spec
from shopfleet.deploy.topology import load_topology
from tests.support import REPO_ROOT

# The seed policy: up at once by 100 % or 4 pods per 30 s (Max); down after 300 s by
# 50 % or 2 pods per 60 s (Min).
SEED = Behavior(
    scale_up=Rules(0, (Policy("Percent", 100, 30), Policy("Pods", 4, 30)), "Max"),
    scale_down=Rules(300, (Policy("Percent", 50, 60), Policy("Pods", 2, 60)), "Min"),
)
# The seed's policies without the scale-down window, to see the rate limits alone.
NO_WINDOW = Behavior(SEED.scale_up, Rules(0, SEED.scale_down.policies, "Min"))
# Kubernetes' documented default scale-down (and the docs' example policy pair).
DOCS_DOWN = Behavior(
    scale_up=Rules(0, (Policy("Percent", 100, 15), Policy("Pods", 4, 15)), "Max"),
    scale_down=Rules(0, (Policy("Pods", 4, 60), Policy("Percent", 10, 60)), "Max"),
)


def pods(*usages: float | None, request: float = 1.0, unready: int = 0) -> list[PodSample]:
    """Instances using `usages` x request (None: no metric yet), plus unready ones."""
    ready = [PodSample(None if u is None else u * request, request) for u in usages]
    return ready + [PodSample(0.5 * request, request, ready=False)] * unready


@pytest.mark.parametrize(
    ("name", "samples", "target", "expected"),
    [
        # "if the current metric value is 200m, and the desired value is 100m, the number
        # of replicas will be doubled"; 50m of 100m halves them.
        ("doubles at twice the target", pods(2.0, 2.0), 100, 4),
        ("halves at half the target", pods(0.5, 0.5, 0.5, 0.5), 100, 2),
        ("ceil of the ratio", pods(0.8, 0.8, 0.8), 70, 4),
        # Within the 10 % tolerance nothing changes, just outside it does.
        ("inside tolerance up", pods(0.76, 0.76), 70, 2),
        ("inside tolerance down", pods(0.64, 0.64), 70, 2),
        ("outside tolerance", pods(0.78, 0.78), 70, 3),
        # Scaling up, not-ready pods count as using nothing: (2+2+0)/3 = 133 % -> 4.
        ("unready counted as zero when scaling up", pods(2.0, 2.0, unready=1), 100, 4),
        # ... and if that turns the direction around, nothing changes.
        ("unready flips the direction", pods(1.5, unready=2), 100, 3),
        # Scaling down, unready pods are left out of the calculation: 2 x 50 % -> 1, and
        # the third, not-ready instance still counts toward nothing.
        ("unready ignored when scaling down", pods(0.5, 0.5, unready=1), 100, 1),
        # Missing metrics: assumed at 100 % of request when scaling down ...
        ("missing as full when scaling down", pods(0.5, 0.5, None), 100, 2),
        # ... and at 0 % when scaling up: (1.5+1.5+0)/3 = 100 %: within tolerance.
        ("missing as zero when scaling up", pods(1.5, 1.5, None), 100, 3),
        ("missing, still up", pods(3.0, 3.0, None), 100, 6),
    ],
)
def test_metric_replicas(name: str, samples: list[PodSample], target: float, expected: int) -> None:
    replicas, _ = metric_replicas(len(samples), samples, target)
    assert replicas == expected, name


def test_no_measured_instance_means_no_proposal() -> None:
    assert metric_replicas(2, pods(None, None), 70) == (None, None)


def proposal(replicas: int | None, metric: str = "cpu") -> MetricProposal:
    return MetricProposal(metric, None, 70, replicas)


@pytest.mark.parametrize(
    ("name", "current", "wanted", "bounds", "behavior", "events", "expected", "reason"),
    [
        # Up: 100 % or 4 pods per 30 s, the larger (Max).
        ("small service: 4 pods beat 100 %", 2, [10], (2, 20), SEED, [], 6, "ScaleUpLimit"),
        ("large service adds 100 %", 10, [30], (2, 40), SEED, [], 20, "ScaleUpLimit"),
        ("pods policy wins when larger", 3, [20], (2, 40), SEED, [], 7, "ScaleUpLimit"),
        ("within the limit", 4, [6], (2, 40), SEED, [], 6, "DesiredWithinRange"),
        ("capped at max", 8, [30], (2, 10), SEED, [], 10, "TooManyReplicas"),
        # Earlier additions in the period use up the budget: 6 = 3 + 3 added 10 s ago.
        ("budget used", 6, [20], (2, 40), SEED, [ScaleEvent(-10, 3)], 7, "ScaleUpLimit"),
        # Down: 50 % or 2 pods per 60 s, the smaller change (Min).
        (
            "down by two",
            10,
            [1],
            (1, 20),
            NO_WINDOW,
            [],
            8,
            "ScaleDownLimit",
        ),
        (
            "down to min",
            3,
            [1],
            (2, 20),
            NO_WINDOW,
            [],
            2,
            "TooFewReplicas",
        ),
        # Kubernetes' docs: Pods 4 and Percent 10 per 60 s with Max: percent once over 40.
        ("docs: 80 pods lose 10 %", 80, [1], (1, 100), DOCS_DOWN, [], 72, "ScaleDownLimit"),
        ("docs: 20 pods lose 4", 20, [1], (1, 100), DOCS_DOWN, [], 16, "ScaleDownLimit"),
        (
            "docs: budget used",
            16,
            [1],
            (1, 100),
            DOCS_DOWN,
            [ScaleEvent(-30, -4)],
            16,
            "ScaleDownLimit",
        ),
        # The largest metric wins.
        ("largest metric", 4, [5, 7], (2, 40), SEED, [], 7, "DesiredWithinRange"),
        ("a missing metric is ignored", 4, [None, 6], (2, 40), SEED, [], 6, "DesiredWithinRange"),
        ("no metric at all: no change", 4, [None, None], (2, 40), SEED, [], 4, "MetricsMissing"),
        # Out of bounds first.
        ("above max", 12, [12], (2, 10), SEED, [], 10, "TooManyReplicas"),
        ("below min", 1, [1], (3, 10), SEED, [], 3, "TooFewReplicas"),
    ],
)
def test_decide(
    name: str,
    current: int,
    wanted: list[int | None],
    bounds: tuple[int, int],
    behavior: Behavior,
    events: list[ScaleEvent],
    expected: int,
    reason: str,
) -> None:
    state = HpaState(events=list(events))
    decision = decide(
        current=current,
        proposals=[proposal(w) for w in wanted],
        minimum=bounds[0],
        maximum=bounds[1],
        behavior=behavior,
        state=state,
        now=0.0,
    )
    assert (decision.desired, decision.limited_by) == (expected, reason), name


def test_scale_down_waits_for_the_window_and_keeps_the_highest_recommendation() -> None:
    state = HpaState()
    at = {"min": 3, "max": 10}

    def step(now: float, current: int, wanted: int) -> int:
        decision = decide(
            current=current,
            proposals=[proposal(wanted)],
            minimum=at["min"],
            maximum=at["max"],
            behavior=SEED,
            state=state,
            now=now,
        )
        record_scale(state, SEED, before=current, after=decision.desired, now=now)
        return decision.desired

    assert step(0, 3, 8) == 7  # up at once: 4 pods (more than 100 %) per 30 s
    assert step(30, 7, 8) == 8
    # Load falls: recommendations 4, then 3, within 300 s of the 8: nothing moves.
    assert step(60, 8, 4) == 8
    assert step(200, 8, 3) == 8
    # 8 was last recommended at 30 s; past 330 s the window's highest is 4 (at 60 s).
    assert step(331, 8, 3) == 6  # and at most 2 pods per 60 s (Min of 50 % and 2)
    assert step(361, 6, 3) == 6  # the period's budget is spent
    assert step(392, 6, 3) == 4
    assert step(452, 4, 3) == 3  # never below min
    assert step(600, 3, 1) == 3


def test_scale_up_is_immediate_but_rate_limited_per_period() -> None:
    state = HpaState()
    current = 3
    for now in (0, 10, 20):
        decision = decide(
            current=current,
            proposals=[proposal(40)],
            minimum=3,
            maximum=40,
            behavior=SEED,
            state=state,
            now=now,
        )
        record_scale(state, SEED, before=current, after=decision.desired, now=now)
        current = decision.desired
    # 3 -> 7 (4 pods beat 100 %), then nothing more within the same 30 s.
    assert current == 7
    decision = decide(
        current=current,
        proposals=[proposal(40)],
        minimum=3,
        maximum=40,
        behavior=SEED,
        state=state,
        now=31,
    )
    assert decision.desired == 14  # 7 + 100 %


def test_the_controller_uses_the_numbers_rendered_into_the_kubernetes_hpas() -> None:
    """Same topology, same policy: the committed HPA manifests and the local controller."""
    topology = load_topology(REPO_ROOT / "shopfleet.toml")
    for service in topology.ordered_services():
        documents = yaml.safe_load_all(
            (REPO_ROOT / f"deploy/kubernetes/base/{service.name}-deployment.yaml").read_text()
        )
        (hpa,) = [d for d in documents if d and d["kind"] == "HorizontalPodAutoscaler"]
        assert hpa["spec"] == autoscaler_spec(topology, service)
        assert behavior_from_hpa(hpa["spec"]) == SEED
        assert targets_from_hpa(hpa["spec"]) == {"cpu": 70.0, "memory": 80.0}
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
            service.hpa.min,
            service.hpa.max,
        )
    # And so the documented examples decide the same from either source.
    spec = autoscaler_spec(topology, topology.services["products"])
    for current, wanted, expected in ((3, 20, 7), (10, 30, 10), (8, 1, 8)):
        decision = decide(
            current=current,
            proposals=[proposal(wanted)],
            minimum=spec["minReplicas"],
            maximum=spec["maxReplicas"],
            behavior=behavior_from_hpa(spec),
            state=HpaState(),
            now=0.0,
        )
        assert decision.desired == expected


def test_the_local_controller_never_scales_past_the_connection_budget() -> None:
    from shopfleet.deploy.operator.autoscaler_inputs import budget_cap

    topology = load_topology(REPO_ROOT / "shopfleet.toml")
    products = topology.services["products"]
    scale = {s.name: s.instances for s in topology.ordered_services()}  # 13 x 6 = 78 of 90
    # Two more instances fit (90), a third would not.
    assert budget_cap(topology, scale, products, 5) == (5, False)
    assert budget_cap(topology, scale, products, 8) == (5, True)
    assert budget_cap(topology, scale, products, 2) == (2, False)  # scaling down: untouched
