"""Log lines go out in batches: at most a second late, and at once for warnings."""

from __future__ import annotations

import io
import json
import logging
import time

from shopfleet.common.logging import AccessLog, BatchingStreamHandler, JSONFormatter


def logger_with(handler: logging.Handler) -> logging.Logger:
    handler.setFormatter(JSONFormatter(service="test", instance="test-1"))
    logger = logging.getLogger(f"shopfleet.test.batching.{id(handler)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_wait_for_the_batch_and_a_warning_sends_them_in_order() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=3600)
    log = logger_with(handler)
    try:
        log.info("first")
        log.info("second")
        assert stream.getvalue() == ""
        log.warning("trouble")
        lines = stream.getvalue().splitlines()
        assert [line.split('"msg":"')[1].split('"')[0] for line in lines] == [
            "first",
            "second",
            "trouble",
        ]
    finally:
        handler.close()


def test_a_quiet_logger_is_flushed_by_the_interval_and_on_close() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=0.05)
    log = logger_with(handler)
    log.info("eventually")
    deadline = time.monotonic() + 10
    while "eventually" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "eventually" in stream.getvalue()
    log.info("last words")
    handler.close()
    assert "last words" in stream.getvalue()


def test_a_full_buffer_is_written_without_waiting() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=3600, capacity=500)
    log = logger_with(handler)
    try:
        for index in range(10):
            log.info("line %d", index)
        assert stream.getvalue().count("\n") >= 3
    finally:
        handler.close()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_access_lines_are_the_same_written_directly_or_through_logging() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=3600)
    handler.setFormatter(JSONFormatter(service="test", instance="test-1"))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logger = logging.getLogger("shopfleet.test.access")
    access = AccessLog(logger, __file__)
    fields = {"request_id": "r-1", "method": "GET", "path": "/v1/x", "status": 200}
    capture = _Capture()
    captured = capture.records
    try:
        access.write(dict(fields))  # only the batching handler listens: the direct path
        assert captured == []
        root.addHandler(capture)  # someone else listens too: through logging
        access.write(dict(fields))
        assert [record.__dict__["request_id"] for record in captured] == ["r-1"]
        root.removeHandler(capture)
        parent = logging.getLogger("shopfleet.test")  # a parent's listener counts too
        parent.addHandler(capture)
        try:
            access.write(dict(fields))
        finally:
            parent.removeHandler(capture)
        assert len(captured) == 2
        handler.flush()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        handler.close()
    direct, through_logging, past_parent = (
        json.loads(line) for line in stream.getvalue().splitlines()
    )
    assert past_parent["request_id"] == "r-1"  # the parent's record also reached the root
    assert direct.pop("ts") and through_logging.pop("ts")
    assert list(direct.items()) == list(through_logging.items())
    assert direct["msg"] == "request" and direct["request_id"] == "r-1"
