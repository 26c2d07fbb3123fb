"""The operator commands: migrate and create-admin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import start_service, test_env


def _cli(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopfleet", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_create_admin_is_idempotent_and_promotes(tmp_path: Path) -> None:
    env = test_env("auth", "sqlite", tmp_path)
    assert _cli(["migrate", "auth"], env, tmp_path).returncode == 0
    again = _cli(["migrate", "auth"], env, tmp_path)
    assert again.returncode == 0 and "migrated auth" in again.stdout
    first = _cli(
        ["create-admin", "--email", "Boss@Example.com", "--password-stdin"],
        env,
        tmp_path,
        "boss-password-1\n",
    )
    assert first.returncode == 0, first.stderr
    assert "created admin boss@example.com" in first.stdout
    second = _cli(
        ["create-admin", "--email", "boss@example.com", "--password-stdin"],
        env,
        tmp_path,
        "ignored-pass-1\n",
    )
    assert second.returncode == 0 and "promoted admin" in second.stdout
    bad = _cli(
        ["create-admin", "--email", "x@example.com", "--password-stdin"], env, tmp_path, "short\n"
    )
    assert bad.returncode != 0
    assert "short" not in bad.stdout + bad.stderr.replace(
        "string_too_short", ""
    )  # never echo the secret
    proc = start_service("auth", env=env, log_dir=tmp_path)
    try:
        login = httpx.post(
            f"{proc.url}/v1/auth/login",
            json={"email": "boss@example.com", "password": "boss-password-1"},
        )
        assert login.status_code == 200
        assert login.json()["user"]["role"] == "admin"
        # A customer who registers and is then promoted becomes an admin at next login.
        httpx.post(
            f"{proc.url}/v1/auth/register",
            json={"email": "c@example.com", "password": "cust-password-1", "name": "C"},
        )
        assert (
            _cli(
                ["create-admin", "--email", "c@example.com", "--password-stdin"],
                env,
                tmp_path,
                "whatever-1\n",
            ).returncode
            == 0
        )
        relogin = httpx.post(
            f"{proc.url}/v1/auth/login",
            json={"email": "c@example.com", "password": "cust-password-1"},
        )
        assert relogin.json()["user"]["role"] == "admin"
    finally:
        proc.terminate()


def test_secrets_are_generated_private_and_not_logged(tmp_path: Path) -> None:
    env = test_env("auth", "sqlite", tmp_path)
    del env["SHOPFLEET_JWT_PRIVATE_KEY"]
    del env["SHOPFLEET_INTERNAL_TOKEN"]
    env["SHOPFLEET_ENVIRONMENT"] = "development"
    _cli(["migrate", "auth"], env, tmp_path)
    proc = start_service("auth", env=env, log_dir=tmp_path)
    try:
        key = tmp_path / "secrets" / "auth-signing-key.pem"
        token = tmp_path / "secrets" / "internal-token"
        assert key.exists() and token.exists()
        assert key.stat().st_mode & 0o777 == 0o600
        assert token.stat().st_mode & 0o777 == 0o600
        assert token.read_text().strip() not in proc.log()
        assert "PRIVATE KEY" not in proc.log()
    finally:
        proc.terminate()


def test_up_and_render_without_a_usable_topology_say_so_in_one_line(tmp_path: Path) -> None:
    env = test_env("auth", "sqlite", tmp_path)
    repo_topology = str(Path(__file__).resolve().parent.parent / "shopfleet.toml")
    var = str(tmp_path / "var")
    cases = {
        "no topology file": ["up", "--detach", "--var", var],
        "unknown profile": [
            *("up", "--detach", "--profile", "nope"),
            *("--topology", repo_topology, "--var", var),
        ],
        "render, no topology file": ["render", "--check"],
    }
    for case, args in cases.items():
        result = _cli(args, env, tmp_path)  # tmp_path: outside the repository
        assert result.returncode == 1, (case, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, case
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.stderr)
    assert "known: default, bench" in _cli(cases["unknown profile"], env, tmp_path).stderr
    assert not (tmp_path / "var").exists()  # nothing was started or written
