"""CPU time per request, by process group: the figure a shared, noisy machine cannot blur.

Throughput moves with whatever else the machine runs; the CPU seconds each process spends
per request barely do. Counted around every scenario for the platform's processes (each
service's instances, nginx, the floor app), the load generator (wrk), and the PostgreSQL
and Redis servers (shared with other users of the machine, so an upper bound).
"""

from __future__ import annotations

import resource
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

SHARED_SERVERS = {"postgres": "postgres", "redis": "redis-server"}


@dataclass(frozen=True)
class CpuSample:
    groups: dict[str, float]  # CPU seconds (user + system) so far, per group
    wrk: float  # CPU seconds of finished child processes (wrk runs to completion)
    machine_busy: float  # CPU seconds every core spent not idle
    machine_all: float


def _seconds(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def with_children(pids: Iterable[int]) -> list[int]:
    """The processes and their children (nginx's workers)."""
    found: list[int] = []
    for pid in pids:
        found.append(pid)
        try:
            found += [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            continue
    return found


def shared_servers() -> dict[str, list[int]]:
    """PostgreSQL's and Redis' processes on this machine (every backend, whoever's)."""
    found: dict[str, list[int]] = {name: [] for name in SHARED_SERVERS}
    for process in psutil.process_iter(["name"]):
        for group, name in SHARED_SERVERS.items():
            if process.info["name"] == name:
                found[group].append(process.pid)
    return found


def sample(groups: dict[str, list[int]]) -> CpuSample:
    machine = psutil.cpu_times()
    idle = machine.idle + getattr(machine, "iowait", 0.0)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSample(
        groups={name: _seconds(pids) for name, pids in groups.items()},
        wrk=children.ru_utime + children.ru_stime,
        machine_busy=sum(machine) - idle,
        machine_all=sum(machine),
    )


def per_request(before: CpuSample, after: CpuSample, requests: int) -> dict[str, object]:
    """CPU milliseconds per request by group, and how busy the machine was (and by whom)."""
    if requests <= 0:
        return {}
    spent = {name: after.groups[name] - before.groups.get(name, 0.0) for name in after.groups}
    spent["wrk"] = after.wrk - before.wrk
    ours = sum(spent.values())
    elapsed = after.machine_all - before.machine_all
    busy = after.machine_busy - before.machine_busy
    return {
        "cpu_ms_per_request": {
            name: round(1000 * seconds / requests, 3)
            for name, seconds in sorted(spent.items())
            if seconds > 0
        },
        "machine_busy_percent": round(100 * busy / elapsed, 1) if elapsed else None,
        # Everything else running on the machine at the same time (other users' work).
        "others_percent": round(100 * max(0.0, busy - ours) / elapsed, 1) if elapsed else None,
    }
