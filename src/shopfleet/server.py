"""Run one instance under uvicorn, draining gracefully on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("shopfleet.server")


class DrainingServer(uvicorn.Server):
    """On SIGTERM: report not-ready first, then let uvicorn stop accepting and finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.fastapi_app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            notify_process_manager()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        resources = getattr(self.fastapi_app.state, "resources", None)
        if resources is not None:
            resources.draining = True
        log.info("draining", extra={"signal": signal.Signals(sig).name})
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            # uvicorn re-raises captured signals after shutdown, so the process would die
            # "killed by SIGTERM"; a completed drain is a clean exit (status 0) for
            # supervisor, PM2 and Kubernetes alike.
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def notify_process_manager() -> None:
    """Tell PM2 (`wait_ready`) that the instance is serving: a "ready" on its IPC channel.

    PM2 starts every app with a Node.js IPC channel whose descriptor is in NODE_CHANNEL_FD;
    its wire format is one JSON document per line. Without it (any other manager) this
    does nothing.
    """
    channel = os.environ.get("NODE_CHANNEL_FD")
    if channel is None:
        return
    try:
        os.write(int(channel), b'"ready"\n')
    except (OSError, ValueError) as exc:
        log.warning("could not notify the process manager", extra={"error": repr(exc)})


def run(app: FastAPI, *, host: str, port: int, shutdown_timeout: float) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        # Longer than nginx's upstream keepalive_timeout, so nginx closes idle connections first.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=int(shutdown_timeout),
        backlog=2048,
    )
    DrainingServer(config, app).run()
