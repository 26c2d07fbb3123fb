"""The Kubernetes HorizontalPodAutoscaler algorithm (autoscaling/v2), as a pure function.

Follows the documented algorithm and the controller's code (replica_calculator.go and
horizontal.go of kube-controller-manager): per metric, desired = ceil(ready x current /
target) within a 10 % tolerance, with not-ready instances and missing metrics counted
the conservative way; the largest proposal over all metrics; the stabilization windows;
the scale-up and scale-down policies (pods or percent per period, selectPolicy Max or
Min); and the min/max bounds. `shopfleet up --autoscale` runs it on local instances, and
the same topology values are rendered into the Kubernetes HPAs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

TOLERANCE = 0.1


@dataclass(frozen=True)
class Policy:
    kind: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    """One direction's behaviour (`spec.behavior.scaleUp` or `scaleDown`)."""

    stabilization_seconds: int
    policies: tuple[Policy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"


@dataclass(frozen=True)
class Behavior:
    scale_up: Rules
    scale_down: Rules


@dataclass(frozen=True)
class PodSample:
    """One instance: its usage of a resource (in the request's unit), and its state."""

    usage: float | None  # None: no metric (not scraped yet)
    request: float
    ready: bool = True


@dataclass(frozen=True)
class MetricProposal:
    metric: str
    utilization: float | None  # percent of request, over the instances with metrics
    target: float
    replicas: int | None  # None: this metric could not be computed


@dataclass(frozen=True)
class ScaleEvent:
    time: float
    change: int  # replicas added (positive) or removed (negative)


@dataclass
class HpaState:
    """What the controller remembers between periods for one scale target."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[ScaleEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    current: int
    desired: int
    proposals: tuple[MetricProposal, ...]
    metric_desired: int  # the largest proposal before stabilization and policies
    stabilized: int
    limited_by: str  # which rule decided the final count (as the HPA's conditions say)


def metric_replicas(
    current: int, pods: Sequence[PodSample], target_percent: float, tolerance: float = TOLERANCE
) -> tuple[int | None, float | None]:
    """Replicas one resource metric asks for, and its utilization over measured pods.

    As GetResourceReplicas: pods not ready are left out (and, when scaling up, counted as
    using nothing); pods without metrics count as using their full request when scaling
    down and nothing when scaling up; a change of direction after that means no change.
    """
    measured = [p for p in pods if p.ready and p.usage is not None]
    if not measured:
        return None, None
    requests = sum(p.request for p in measured)
    if requests <= 0:
        return None, None
    utilization = 100 * sum(p.usage or 0.0 for p in measured) / requests
    ratio = utilization / target_percent
    unready = [p for p in pods if not p.ready]
    missing = [p for p in pods if p.ready and p.usage is None]
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, utilization
        return math.ceil(ratio * len(measured)), utilization
    usage = sum(p.usage or 0.0 for p in measured)
    counted = list(measured)
    if missing:
        if ratio < 1.0:
            usage += sum(p.request for p in missing)  # assume full use: scale down less
        counted += missing  # scaling up: they use nothing
    if scale_up_with_unready:
        counted += unready  # they use nothing
    new_ratio = 100 * usage / sum(p.request for p in counted) / target_percent
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, utilization
    replicas = math.ceil(new_ratio * len(counted))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, utilization
    return replicas, utilization


def _changed_in_period(events: Sequence[ScaleEvent], now: float, period: int, up: bool) -> int:
    return sum(abs(e.change) for e in events if e.time > now - period and (e.change > 0) == up)


def _rate_limit(
    current: int, rules: Rules, events: Sequence[ScaleEvent], now: float, *, up: bool
) -> int:
    """The most (up) or fewest (down) replicas the policies allow now.

    Each policy counts from the replicas at the start of its period (the changes made within
    it undone). Scaling up, selectPolicy Max takes the largest limit; scaling down, Max
    allows the biggest change, so the lowest limit. Min is the other way round.
    """
    if rules.select_policy == "Disabled":
        return current
    largest = (rules.select_policy == "Max") == up
    limit: int | None = None
    for policy in rules.policies:
        added = _changed_in_period(events, now, policy.period_seconds, up=True)
        deleted = _changed_in_period(events, now, policy.period_seconds, up=False)
        start = current - added + deleted
        if policy.kind == "Pods":
            proposed = start + policy.value if up else start - policy.value
        elif up:
            proposed = math.ceil(start * (1 + policy.value / 100))
        else:
            proposed = int(start * (1 - policy.value / 100))
        if limit is None:
            limit = proposed
        else:
            limit = max(limit, proposed) if largest else min(limit, proposed)
    return current if limit is None else limit


def scale_up_limit(current: int, rules: Rules, events: Sequence[ScaleEvent], now: float) -> int:
    return _rate_limit(current, rules, events, now, up=True)


def scale_down_limit(current: int, rules: Rules, events: Sequence[ScaleEvent], now: float) -> int:
    return _rate_limit(current, rules, events, now, up=False)


def _stabilize(state: HpaState, behavior: Behavior, current: int, desired: int, now: float) -> int:
    up = down = desired
    for at, recommendation in state.recommendations:
        if at > now - behavior.scale_up.stabilization_seconds:
            up = min(up, recommendation)
        if at > now - behavior.scale_down.stabilization_seconds:
            down = max(down, recommendation)
    longest = max(
        behavior.scale_up.stabilization_seconds, behavior.scale_down.stabilization_seconds
    )
    state.recommendations = [(at, r) for at, r in state.recommendations if at > now - longest]
    state.recommendations.append((now, desired))
    return min(max(current, up), down)


def _longest_period(behavior: Behavior) -> int:
    periods = [
        p.period_seconds for r in (behavior.scale_up, behavior.scale_down) for p in r.policies
    ]
    return max(periods, default=0)


def decide(
    *,
    current: int,
    proposals: Sequence[MetricProposal],
    minimum: int,
    maximum: int,
    behavior: Behavior,
    state: HpaState,
    now: float,
) -> Decision:
    """One reconcile of one scale target: the replicas it should have now, and why."""
    computed = [p.replicas for p in proposals if p.replicas is not None]
    if current > maximum:
        return Decision(current, maximum, tuple(proposals), maximum, maximum, "TooManyReplicas")
    if current < minimum:
        return Decision(current, minimum, tuple(proposals), minimum, minimum, "TooFewReplicas")
    if not computed:
        # No metric could be read: the HPA leaves the count alone.
        return Decision(current, current, tuple(proposals), current, current, "MetricsMissing")
    metric_desired = max(computed)
    if not state.recommendations:
        # As the controller does for a new HPA: the current count counts as recommended
        # now, so a restarted controller does not scale down before a full window.
        state.recommendations.append((now, current))
    stabilized = _stabilize(state, behavior, current, metric_desired, now)
    desired, limited_by = stabilized, "DesiredWithinRange"
    if stabilized != metric_desired:
        limited_by = "ScaleDownStabilized" if stabilized > metric_desired else "ScaleUpStabilized"
    if desired > current:
        limit = max(scale_up_limit(current, behavior.scale_up, state.events, now), current)
        if maximum > limit:
            if desired > limit:
                desired, limited_by = limit, "ScaleUpLimit"
        elif desired > maximum:
            desired, limited_by = maximum, "TooManyReplicas"
    elif desired < current:
        limit = min(scale_down_limit(current, behavior.scale_down, state.events, now), current)
        if minimum < limit:
            if desired < limit:
                desired, limited_by = limit, "ScaleDownLimit"
        elif desired < minimum:
            desired, limited_by = minimum, "TooFewReplicas"
    return Decision(current, desired, tuple(proposals), metric_desired, stabilized, limited_by)


def record_scale(
    state: HpaState, behavior: Behavior, *, before: int, after: int, now: float
) -> None:
    """Remember a change for the rate policies (events older than every period are dropped)."""
    longest = _longest_period(behavior)
    state.events = [e for e in state.events if e.time > now - longest]
    if after != before:
        state.events.append(ScaleEvent(now, after - before))
