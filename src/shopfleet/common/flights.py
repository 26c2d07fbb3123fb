"""Single flight: concurrent loads of one key in this process share one run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Flights(Generic[K, T]):
    """The loads running now, by key: a second asker of a key awaits the first's result
    (or its exception) instead of loading again. Nothing is kept once a load ends."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[T]]) -> T:
        while (running := self._running.get(key)) is not None:
            try:
                # shield: one asker cancelled (its client left) must not cancel the others.
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running.cancelled() or (task is not None and task.cancelling()):
                    raise  # this asker was cancelled itself
                # The asker that was loading was cancelled (its request timed out), not
                # this one: load again (or wait for whoever does now).
        flight: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = flight
        try:
            value = await load()
        except asyncio.CancelledError:
            flight.cancel()  # its waiters load again themselves (above)
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._running[key]
        flight.set_result(value)
        return value
