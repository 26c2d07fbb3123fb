"""Log lines go out in batches: at most a second late, and at once for warnings."""

from __future__ import annotations

import io
import logging
import time

from shopfleet.common.logging import BatchingStreamHandler, JSONFormatter


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
