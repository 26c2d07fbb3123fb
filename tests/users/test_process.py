"""`shopfleet serve users` works as a real process, calling a real auth process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess, start_service, test_env


@pytest.mark.e2e
def test_serve_users_answers_me_with_a_token_from_auth(tmp_path: Path) -> None:
    auth_env = test_env("auth", "sqlite", tmp_path)
    for service in ("auth", "users"):
        subprocess.run(
            [sys.executable, "-m", "shopfleet", "migrate", service],
            env=auth_env,
            check=True,
            capture_output=True,
        )
    processes: list[ServiceProcess] = []
    try:
        auth = start_service("auth", env=auth_env, log_dir=tmp_path)
        processes.append(auth)
        # Without a gateway, the internal URL can point straight at the one auth instance.
        users_env = test_env("users", "sqlite", tmp_path, SHOPFLEET_INTERNAL_URL=auth.url)
        users = start_service("users", env=users_env, log_dir=tmp_path)
        processes.append(users)
        registered = httpx.post(
            f"{auth.url}/v1/auth/register",
            json={"email": "proc@example.com", "password": "long-enough-1", "name": "Proc"},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        tokens = registered.json()
        response = httpx.get(
            f"{users.url}/v1/users/me",
            headers={"Authorization": f"Bearer {tokens['accessToken']}"},
            timeout=10,
        )
        assert response.status_code == 200, f"{response.text}\n{users.log()}"
        assert response.json()["id"] == tokens["user"]["id"]
        assert response.json()["addresses"] == []
        assert response.headers["x-instance"] == "users-1"
    finally:
        for process in reversed(processes):
            process.terminate()
