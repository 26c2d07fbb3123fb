"""Body size limits on a real process: a chunked body over the limit is a 413, like any other."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import ServiceProcess, start_service, test_env

LIMIT = 2048


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("body-limits")
    env = test_env("auth", "sqlite", root, SHOPFLEET_MAX_BODY_SIZE=str(LIMIT))
    subprocess.run(
        [sys.executable, "-m", "shopfleet", "migrate", "auth"],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
    )
    proc = start_service("auth", env=env, log_dir=root)
    yield proc
    proc.terminate()


def _raw(port: int, head: str, chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request with a chunked body over a plain socket; return status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_bytes, body = answer.split(b"\r\n\r\n", 1)
        length = int(head_bytes.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        while len(body) < length:
            body += sock.recv(65536)
    return int(head_bytes.split(b" ", 2)[1]), body


HEAD = (
    "POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.e2e
def test_a_chunked_body_over_the_limit_is_a_413_problem(auth: ServiceProcess) -> None:
    status, body = _raw(auth.port, HEAD, [b"{" + b" " * 1000] * 4 + [b"}"])
    assert status == 413, body
    assert b"too large" in body


@pytest.mark.e2e
def test_a_chunked_body_within_the_limit_is_served(auth: ServiceProcess) -> None:
    payload = json.dumps({"email": "nobody@example.com", "password": "wrong-password"}).encode()
    status, body = _raw(auth.port, HEAD, [payload[:10], payload[10:]])
    assert status == 401, body  # read in full and answered by the endpoint
