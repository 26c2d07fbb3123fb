"""JSON log lines on stdout, one per event, with the request id when there is one."""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JSONFormatter(logging.Formatter):
    """Format a record as one JSON object; `extra=` fields become keys."""

    def __init__(self, *, service: str, instance: str) -> None:
        super().__init__()
        self.service = service
        self.instance = instance
        self._middles: dict[tuple[str, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()

    def entry(self, created: float, level: str, logger: str, message: str) -> dict[str, Any]:
        """The keys every line starts with."""
        return {
            "ts": timestamp(created),
            "level": level.lower(),
            "logger": logger,
            "msg": message,
            "service": self.service,
            "instance": self.instance,
        }

    def info_line(self, created: float, logger: str, message: str, fields: dict[str, Any]) -> str:
        """`format`'s line for an INFO record with `fields` as extras, built from parts.

        Only the time and the fields change from line to line: the keys between them are
        serialised once per logger and message.
        """
        middle = self._middles.get((logger, message))
        if middle is None:
            constant = self.entry(0.0, "INFO", logger, message)
            del constant["ts"]
            middle = self._middles[logger, message] = orjson.dumps(constant).decode()[1:-1]
        rest = orjson.dumps(fields, default=str).decode()
        tail = "}" if rest == "{}" else "," + rest[1:]
        return '{"ts":"' + timestamp(created) + '",' + middle + tail


_second = -1
_second_text = ""


def timestamp(created: float) -> str:
    """`created` as ISO 8601 in UTC to the millisecond, as `datetime.isoformat` writes it.

    Lines come many per second: the date and time of day are formatted once a second.
    """
    global _second, _second_text
    # As datetime does: round the fraction to the microsecond, then truncate to the milli.
    fraction, whole = math.modf(created)
    micro = round(fraction * 1e6)
    second = int(whole)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    if second != _second:
        _second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = second
    return f"{_second_text}.{micro // 1000:03d}+00:00"


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write lines in batches, like nginx's `access_log ... buffer=64k flush=1s`.

    A line waits at most `interval` seconds (a daemon thread flushes) or until `capacity`
    characters are pending; a WARNING or worse goes out at once, after the lines before
    it. One write per batch instead of one per request: the instance and whatever reads
    its stdout (supervisord, a container runtime) spend far less per line.
    """

    def __init__(self, stream: TextIO, *, interval: float = 1.0, capacity: int = 64 * 1024):
        super().__init__(stream)
        self.interval = interval
        self.capacity = capacity
        self.pending: list[str] = []
        self.pending_size = 0
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._add(line, urgent=record.levelno >= logging.WARNING)

    def _add(self, line: str, *, urgent: bool) -> None:
        """Queue a formatted line; the caller holds the handler's lock."""
        self.pending.append(line)
        self.pending_size += len(line)
        if urgent or self.pending_size >= self.capacity:
            self._write_pending()

    def add_info_line(self, line: str) -> None:
        """Queue an INFO line formatted elsewhere (AccessLog's direct path)."""
        with self.lock:  # type: ignore[union-attr]
            self._add(line + self.terminator, urgent=False)

    def _write_pending(self) -> None:
        """Write what is pending; the caller holds the handler's lock."""
        if not self.pending:
            return
        data = "".join(self.pending)
        self.pending.clear()
        self.pending_size = 0
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stdout is gone (closed pipe, shutdown): nowhere left to say so

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _flush_periodically(self) -> None:
        while not self._stopping.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()


class AccessLog:
    """Writes each request's access line, the one log line every request makes.

    When lines only go to stdout through the batching handler (how every instance runs),
    the JSON line is built and queued directly: the same keys and order as a record's,
    without a LogRecord (its frame, thread and process lookups) or the handler chain,
    about a third of what the line costs through `logging`. When anything else listens
    (a test's capture, another handler, a filter), lines go through `logging`, so
    everyone still sees each one.
    """

    def __init__(self, logger: logging.Logger, source: str) -> None:
        self.logger = logger
        self.source = source  # the path a record names as where the line was logged

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        handler = self._direct_handler()
        if handler is None:
            logger = self.logger
            logger.handle(
                logger.makeRecord(
                    logger.name, logging.INFO, self.source, 0, "request", (), None, extra=fields
                )
            )
            return
        formatter = handler.formatter
        assert isinstance(formatter, JSONFormatter)
        handler.add_info_line(formatter.info_line(time.time(), self.logger.name, "request", fields))

    def _direct_handler(self) -> BatchingStreamHandler | None:
        """The batching handler, when it is the only place this logger's lines go."""
        root = logging.getLogger()
        if self.logger.filters:
            return None
        # Records propagate up to the root through every parent's handlers.
        current: logging.Logger | None = self.logger
        while current is not None and current is not root:
            if current.handlers or not current.propagate:
                return None
            current = current.parent
        if len(root.handlers) != 1 or root.filters:
            return None
        handler = root.handlers[0]
        if (
            type(handler) is not BatchingStreamHandler
            or handler.filters
            or handler.level > logging.INFO
            or not isinstance(handler.formatter, JSONFormatter)
        ):
            return None
        return handler


def configure_logging(*, service: str, instance: str, level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON (idempotent)."""
    for previous in logging.getLogger().handlers:
        if isinstance(previous, BatchingStreamHandler):
            previous.close()
    handler = BatchingStreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter(service=service, instance=instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's own access log repeats ours; httpx's line per call repeats the callee's.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
