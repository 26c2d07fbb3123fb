"""PriceCounts: a category's totals in a price range from its prices held in memory."""

from __future__ import annotations

import asyncio

from shopfleet.products.totals import PriceCounts


class _Catalog:
    """A category's prices as the database would answer them, counting the loads."""

    def __init__(self, prices: list[int]) -> None:
        self.prices = prices
        self.loads = 0

    async def load(self, limit: int) -> list[int]:
        self.loads += 1
        await asyncio.sleep(0.01)  # a round trip, so concurrent askers overlap
        return sorted(self.prices)[:limit]


async def test_counts_a_range_with_either_bound_inclusive() -> None:
    counts, catalog = PriceCounts(), _Catalog([500, 1000, 1000, 1500, 2000, 99])
    asked = [
        (None, None),
        (1000, 1000),
        (1000, None),
        (None, 999),
        (1001, 1499),
        (2001, None),
        (0, 99),
    ]
    found = [await counts.count("c", "1", low, high, catalog.load) for low, high in asked]
    assert found == [(n, 6) for n in (6, 2, 4, 2, 0, 0, 1)]
    assert catalog.loads == 1 and counts.rows == 6


async def test_a_new_generation_loads_again_and_concurrent_askers_share_a_load() -> None:
    counts, catalog = PriceCounts(), _Catalog([100, 200])
    first = await asyncio.gather(
        *(counts.count("c", "1", None, None, catalog.load) for _ in range(20))
    )
    assert first == [(2, 2)] * 20 and catalog.loads == 1
    catalog.prices.append(150)  # a write, then its generation's bump
    assert await counts.count("c", "1", 100, 200, catalog.load) == (2, 2)  # the old generation
    assert await counts.count("c", "2", 100, 200, catalog.load) == (3, 3)
    assert catalog.loads == 2 and counts.rows == 3


async def test_a_category_too_large_to_hold_is_left_to_the_database() -> None:
    counts, catalog = PriceCounts(per_category=3), _Catalog([1, 2, 3, 4])
    assert await counts.count("big", "1", None, None, catalog.load) is None
    assert await counts.count("big", "1", 2, 3, catalog.load) is None
    assert catalog.loads == 1 and counts.rows == 0  # asked once per generation


async def test_the_least_recently_used_categories_go_beyond_max_rows() -> None:
    counts = PriceCounts(max_rows=5, per_category=3)
    catalogs = {name: _Catalog([1, 2, 3]) for name in "abc"}
    for name in "ab":
        assert await counts.count(name, "1", None, None, catalogs[name].load) == (3, 3)
    assert counts.rows == 3  # b pushed a out
    assert await counts.count("b", "1", None, None, catalogs["b"].load) == (3, 3)
    assert await counts.count("a", "1", None, None, catalogs["a"].load) == (3, 3)
    assert [c.loads for c in catalogs.values()] == [2, 1, 0] and counts.rows == 3


async def test_a_failed_load_reaches_every_asker_and_is_not_kept() -> None:
    counts = PriceCounts()
    calls = 0

    async def failing(limit: int) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("database gone")

    results = await asyncio.gather(
        *(counts.count("c", "1", None, None, failing) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results) and calls == 1
    assert await counts.count("c", "1", None, None, _Catalog([7]).load) == (1, 1)


async def test_made_up_categories_are_bounded_in_number() -> None:
    """Any id a client invents is an empty category: it holds no prices, but only
    max_categories of them are kept, the least recently used going first."""
    counts = PriceCounts(max_categories=3)
    for name in "abcde":
        assert await counts.count(name, "1", None, None, _Catalog([]).load) == (0, 0)
    again = _Catalog([])
    assert await counts.count("a", "1", None, None, again.load) == (0, 0)
    assert again.loads == 1  # "a" was pushed out by "d" and "e"
    held = _Catalog([])
    assert await counts.count("e", "1", None, None, held.load) == (0, 0)
    assert held.loads == 0
