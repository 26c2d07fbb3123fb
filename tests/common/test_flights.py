"""common/flights.py: concurrent loads of one key share one run, whatever happens to it."""

from __future__ import annotations

import asyncio

import pytest

from shopfleet.common.flights import Flights


class _Load:
    """A load that counts its runs and finishes when told to."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.runs += 1
        await self.release.wait()
        return f"value {self.runs}"


async def test_concurrent_askers_share_one_load() -> None:
    flights: Flights[str, str] = Flights()
    load = _Load()
    askers = [asyncio.create_task(flights.run("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*askers) == ["value 1"] * 5
    assert load.runs == 1
    assert await flights.run("k", load) == "value 2"  # nothing is kept once it ended


async def test_a_failed_load_fails_every_asker_of_it() -> None:
    flights: Flights[str, str] = Flights()

    async def broken() -> str:
        await asyncio.sleep(0.01)
        raise LookupError("gone")

    askers = [asyncio.create_task(flights.run("k", broken)) for _ in range(3)]
    results = await asyncio.gather(*askers, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError] * 3


async def test_a_cancelled_asker_leaves_the_load_to_the_others() -> None:
    flights: Flights[str, str] = Flights()
    load = _Load()
    first = asyncio.create_task(flights.run("k", load))
    second = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    second.cancel()  # its client went away
    await asyncio.sleep(0)
    load.release.set()
    assert await first == "value 1"
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_when_the_loading_asker_is_cancelled_a_waiter_loads_itself() -> None:
    """The owner's request timed out: the others were not cancelled and must not be."""
    flights: Flights[str, str] = Flights()
    load = _Load()
    owner = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    owner.cancel()
    await asyncio.sleep(0)
    load.release.set()
    assert await waiter == "value 2"
    assert owner.cancelled()
