"""The render registry: deterministic output, committed files equal a fresh render."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from shopfleet.deploy.render import registry as render
from shopfleet.deploy.render.supervisor import committed_layout, render_supervisor
from shopfleet.deploy.topology import load_topology
from tests.support import REPO_ROOT

TOPOLOGY = REPO_ROOT / "shopfleet.toml"


def shopfleet(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopfleet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_rendering_is_deterministic() -> None:
    first = render.render_all(load_topology(TOPOLOGY))
    second = render.render_all(load_topology(TOPOLOGY))
    assert first == second
    assert "deploy/local/nginx.conf" in first and "deploy/local/supervisord.conf" in first


def test_committed_files_equal_a_fresh_render() -> None:
    files = render.render_all(load_topology(TOPOLOGY))
    assert render.check(files, REPO_ROOT) == [], "run `shopfleet render` and commit"


def test_committed_renders_hold_no_machine_paths() -> None:
    for path, content in render.render_all(load_topology(TOPOLOGY)).items():
        assert str(REPO_ROOT) not in content, path
        assert "/home/" not in content, path


def test_render_check_lists_differing_files_and_render_writes_them(tmp_path: Path) -> None:
    topology = ["--topology", str(TOPOLOGY), "--root", str(tmp_path)]
    missing = shopfleet("render", "--check", *topology)
    assert missing.returncode == 1
    assert "differs: deploy/local/nginx.conf" in missing.stdout
    written = shopfleet("render", *topology)
    assert written.returncode == 0, written.stderr
    assert shopfleet("render", "--check", *topology).returncode == 0
    (tmp_path / "deploy/local/nginx.conf").write_text("edited by hand\n")
    edited = shopfleet("render", "--check", *topology)
    assert edited.returncode == 1
    assert edited.stdout.splitlines() == ["differs: deploy/local/nginx.conf"]


def test_render_check_passes_on_the_repository() -> None:
    result = shopfleet("render", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_renderers_claiming_one_path_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "RENDERERS", [*render.RENDERERS, render.RENDERERS[0]])
    with pytest.raises(ValueError, match="two renderers"):
        render.render_all(load_topology(TOPOLOGY))


def test_supervisor_runs_every_instance_with_a_drain_longer_stop_wait() -> None:
    topology = load_topology(TOPOLOGY)
    parser = configparser.RawConfigParser()
    parser.read_string(render_supervisor(topology, committed_layout(topology)))
    programs = [s.split(":", 1)[1] for s in parser.sections() if s.startswith("program:")]
    expected = [
        f"{service.name}-{index}"
        for service in topology.ordered_services()
        for index in range(1, service.instances + 1)
    ]
    assert programs == ["redis", *expected, "nginx"]
    assert len(expected) == 13
    products_2 = parser["program:products-2"]
    assert products_2["command"].endswith(
        "serve products --host 127.0.0.1 --port 3011 --instance 2"
    )
    assert products_2["stopsignal"] == "TERM"
    assert int(products_2["stopwaitsecs"]) == topology.process.shutdown_timeout + 5
    assert products_2["autorestart"] == "true"
    assert 'SHOPFLEET_INSTANCE="products-2"' in products_2["environment"]
    assert 'SHOPFLEET_INTERNAL_URL="http://127.0.0.1:8081"' in products_2["environment"]
    assert 'SHOPFLEET_RATE_LIMIT_REQUESTS="100"' in products_2["environment"]
    assert products_2["stdout_logfile"] == "%(here)s/../../var/log/products-2.log"
    assert "--save ''" in parser["program:redis"]["command"]
    memmon = parser["eventlistener:memmon"]
    assert memmon["command"].endswith(f"memmon -a {topology.process.memory_ceiling_mb}MB")
    assert memmon["events"] == "TICK_60"
    assert parser["unix_http_server"]["file"] == "%(here)s/../../var/run/supervisor.sock"


def test_supervisor_reads_the_committed_config_relative_to_its_folder(tmp_path: Path) -> None:
    from supervisor.options import ServerOptions

    # A checkout elsewhere, as a fresh clone has it: only the config, and var/ made by
    # whoever starts it (supervisord refuses a log path whose folder is missing).
    config = tmp_path / "deploy/local/supervisord.conf"
    config.parent.mkdir(parents=True)
    config.write_text((REPO_ROOT / "deploy/local/supervisord.conf").read_text())
    for folder in ("var/log", "var/run"):
        (tmp_path / folder).mkdir(parents=True)
    options = ServerOptions()
    options.realize(args=["-c", str(config)])
    programs = {
        process.name: process
        for group in options.process_group_configs
        for process in group.process_configs
    }
    root = tmp_path / "deploy/local/../.."
    assert programs["auth-1"].directory == str(root)
    assert programs["auth-1"].environment["SHOPFLEET_DATA_DIR"] == f"{root}/var"
    assert programs["nginx"].command.startswith("/usr/sbin/nginx -p ")
    assert options.server_configs[0]["file"] == str(tmp_path / "var/run/supervisor.sock")
