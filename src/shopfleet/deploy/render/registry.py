"""The render registry: every deployment file is a pure function of the topology."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shopfleet.deploy.render import (
    compose,
    compose_monitoring,
    dashboards,
    kubernetes,
    kubernetes_monitoring,
    monitoring,
    pm2,
    supervisor,
)
from shopfleet.deploy.render.gateway import files as gateway_files
from shopfleet.deploy.topology import Topology

Renderer = Callable[[Topology], dict[str, str]]
"""Maps a topology to files: repository-relative path -> content."""


RENDERERS: list[Renderer] = [
    gateway_files.render_committed,
    supervisor.render_committed,
    pm2.render_pm2,
    compose.render_compose,
    kubernetes.render_kubernetes,
    monitoring.render_monitoring,
    dashboards.render_dashboards,
    compose_monitoring.render_compose_monitoring,
    kubernetes_monitoring.render_kubernetes_monitoring,
]


def render_all(topology: Topology) -> dict[str, str]:
    """Run every renderer; two renderers claiming one path is a bug."""
    files: dict[str, str] = {}
    for renderer in RENDERERS:
        for path, content in renderer(topology).items():
            if path in files:
                raise ValueError(f"two renderers produce {path}")
            files[path] = content
    return dict(sorted(files.items()))


def write(files: dict[str, str], root: Path) -> list[str]:
    """Write the files under `root`; return the paths whose content changed."""
    changed = []
    for path, content in files.items():
        target = root / path
        if target.exists() and target.read_text() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        changed.append(path)
    return changed


def check(files: dict[str, str], root: Path) -> list[str]:
    """Return the paths whose committed content differs from `files` (or is missing)."""
    return [
        path
        for path, content in files.items()
        if not (root / path).is_file() or (root / path).read_text() != content
    ]
