"""Run one instance under uvicorn, draining gracefully on SIGTERM."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("shopfleet.server")


class DrainingServer(uvicorn.Server):
    """On SIGTERM: report not-ready first, then let uvicorn stop accepting and finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.fastapi_app = app

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
