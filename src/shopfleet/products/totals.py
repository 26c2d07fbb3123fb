"""Exact totals of a category's price ranges, counted from its prices held in memory.

The storefront browses a category, often within a price range, and every page states
its total. Counting it in PostgreSQL costs a range scan per distinct filter, and
shoppers' price ranges rarely repeat, so a cache of totals per filter mostly misses.
Instead each instance holds a category's prices, sorted, under the generation of the
totals (caching.TOTALS_SCOPE, bumped after every write that adds, removes, reprices or
moves a product): a total is then two binary searches, and it is exactly as fresh as
the cached totals are (a reader of the new generation never sees the old prices).

Memory is bounded: a category with more than `per_category` products is left to the
database's count, and the least recently used categories go beyond `max_rows` prices or
`max_categories` categories in all.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from shopfleet.common.flights import Flights

# Load a category's prices, ascending, at most `limit` of them.
LoadPrices = Callable[[int], Awaitable[list[int]]]


@dataclass(frozen=True)
class _Prices:
    generation: str
    cents: array[int] | None  # None: more than per_category, counted by the database


class PriceCounts:
    def __init__(
        self, *, max_rows: int = 500_000, per_category: int = 50_000, max_categories: int = 4096
    ) -> None:
        self.max_rows = max_rows
        self.per_category = per_category
        # Categories with few or no products (any id a client makes up) cost no rows: the
        # count of categories held is bounded too.
        self.max_categories = max_categories
        self._held: OrderedDict[Hashable, _Prices] = OrderedDict()
        self._rows = 0
        self._loads: Flights[tuple[Hashable, str], _Prices] = Flights()

    @property
    def rows(self) -> int:
        """How many prices are held, over every category."""
        return self._rows

    async def count(
        self,
        category: Hashable,
        generation: str,
        low: int | None,
        high: int | None,
        load: LoadPrices,
    ) -> tuple[int, int] | None:
        """How many of the category's products cost between `low` and `high` cents
        (either bound may be absent), and how many it has, as of `generation`; None when
        the category is too large to hold."""
        held = self._held.get(category)
        if held is not None and held.generation == generation:
            self._held.move_to_end(category)
        else:
            held = await self._load(category, generation, load)
        cents = held.cents
        if cents is None:
            return None
        start = 0 if low is None else bisect_left(cents, low)
        end = len(cents) if high is None else bisect_right(cents, high)
        return max(0, end - start), len(cents)

    async def _load(self, category: Hashable, generation: str, load: LoadPrices) -> _Prices:
        async def held() -> _Prices:
            found = await load(self.per_category + 1)
            cents = array("q", found) if len(found) <= self.per_category else None
            prices = _Prices(generation, cents)
            self._keep(category, prices)
            return prices

        # Requests of this instance that ask at once share one load.
        return await self._loads.run((category, generation), held)

    def _keep(self, category: Hashable, held: _Prices) -> None:
        old = self._held.pop(category, None)
        if old is not None and old.cents is not None:
            self._rows -= len(old.cents)
        self._held[category] = held
        if held.cents is not None:
            self._rows += len(held.cents)
        while len(self._held) > 1 and (
            self._rows > self.max_rows or len(self._held) > self.max_categories
        ):
            _, evicted = self._held.popitem(last=False)
            if evicted.cents is not None:
                self._rows -= len(evicted.cents)
