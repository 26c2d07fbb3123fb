"""SIGTERM lets an in-flight request finish, then the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import start_service, test_env


def test_sigterm_finishes_in_flight_request(tmp_path: Path) -> None:
    env = test_env("auth", "sqlite", tmp_path)
    subprocess.run(
        [sys.executable, "-m", "shopfleet", "migrate", "auth"],
        env=env,
        check=True,
        capture_output=True,
    )
    proc = start_service("auth", env=env, log_dir=tmp_path)
    try:
        body = json.dumps(
            {"email": "slow@example.com", "password": "long-enough-1", "name": "Slow"}
        ).encode()
        sock = socket.create_connection(("127.0.0.1", proc.port), timeout=10)
        head = (
            f"POST /v1/auth/register HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        # The request is in flight: headers and half the body are sent, the rest is late.
        sock.sendall(head + body[:10])
        time.sleep(0.3)
        proc.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.process.poll() is None, "the process must wait for the in-flight request"
        sock.sendall(body[10:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 201"), response[:200]
        assert proc.process.wait(30) == 0
        assert "draining" in proc.log()
        # A new connection is refused once the instance is stopping.
        try:
            socket.create_connection(("127.0.0.1", proc.port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        assert refused
    finally:
        proc.terminate()
