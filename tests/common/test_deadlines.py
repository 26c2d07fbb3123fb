"""common/deadlines.py: one timer cancels the requests past their deadline, and only them."""

from __future__ import annotations

import asyncio

import pytest

from shopfleet.common.deadlines import Deadlines


async def _under(deadlines: Deadlines, seconds: float, work: float) -> bool:
    """Run `work` seconds of waiting under a deadline; True when it timed out."""
    task = deadlines.enter(seconds)
    try:
        try:
            await asyncio.sleep(work)
        finally:
            timed_out = deadlines.leave(task)
    except asyncio.CancelledError:
        if not timed_out:
            raise
        return True
    return False


async def test_only_the_late_requests_time_out() -> None:
    deadlines = Deadlines(tick=0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    late, quick, roomy = await asyncio.gather(
        _under(deadlines, 0.1, 5), _under(deadlines, 0.1, 0.01), _under(deadlines, 5, 0.2)
    )
    assert (late, quick, roomy) == (True, False, False)
    assert loop.time() - started < 1
    # The timed-out task was uncancelled: it goes on as if asyncio.timeout had fired.
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert await _under(deadlines, 0.05, 1) is True  # the timer starts again when needed


async def test_a_cancellation_from_elsewhere_stands() -> None:
    deadlines = Deadlines(tick=0.02)
    task = asyncio.create_task(_under(deadlines, 5, 5))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_elsewhere_and_late_at_once_is_still_cancelled() -> None:
    deadlines = Deadlines(tick=60)  # the check below is run by hand
    task = asyncio.create_task(_under(deadlines, 0.01, 5))
    await asyncio.sleep(0.05)
    deadlines._check()  # the deadline passes...
    task.cancel()  # ...just as the server shuts down, before the task runs again
    with pytest.raises(asyncio.CancelledError):
        await task


def test_each_event_loop_gets_its_own_timer() -> None:
    deadlines = Deadlines(tick=0.02)
    for _ in range(2):  # the second loop would wait forever on a timer of the first
        assert asyncio.run(asyncio.wait_for(_under(deadlines, 0.05, 5), 2)) is True
