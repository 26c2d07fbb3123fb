"""Products' view of categories: category ids checked and slugs resolved, remembered briefly."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable

from pydantic import ValidationError

from shopfleet.common.errors import DependencyUnavailable, Unprocessable
from shopfleet.common.http import ServiceClient
from shopfleet.contracts import categories as contract
from shopfleet.contracts.categories import Category

TARGET = "categories"
UNEXPECTED = "The categories service gave an unexpected answer."


class UnknownCategory(Unprocessable):
    def __init__(self) -> None:
        super().__init__("The category does not exist.", field="categoryId")


class CategoriesClient:
    """Checks category ids and resolves slugs through categories' internal API.

    Answers are remembered for `ttl` seconds, but only as a fallback while categories is
    down: a write must not give products to a deleted category, and a listing must not
    resolve a slug that was just renamed. (Listings are cached whole, so a resolution
    costs one call per cache miss, not per request.)
    """

    def __init__(
        self,
        http: ServiceClient,
        *,
        ttl: float = 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._ids: dict[uuid.UUID, float] = {}
        self._slugs: dict[str, tuple[uuid.UUID, float]] = {}

    async def require(self, category_id: uuid.UUID) -> None:
        """Refuse an unknown category; 503 only when categories is down and it is not known."""
        try:
            found = await self._fetch(str(category_id))
        except DependencyUnavailable:
            if self._ids.get(category_id, 0.0) > self.clock():
                return
            raise
        if found is None:
            raise UnknownCategory

    async def resolve(self, id_or_slug: str) -> uuid.UUID | None:
        """Turn a listing's `category` filter into an id; None when no category has that slug."""
        try:
            return uuid.UUID(id_or_slug)
        except ValueError:
            pass
        if not contract.is_slug(id_or_slug):
            return None
        try:
            return await self._fetch(id_or_slug)
        except DependencyUnavailable:
            cached = self._slugs.get(id_or_slug)
            if cached is not None and cached[1] > self.clock():
                return cached[0]
            raise

    async def _fetch(self, id_or_slug: str) -> uuid.UUID | None:
        path = contract.category_path(id_or_slug)
        response = await self.http.request(TARGET, "GET", path)
        if response.status_code == 404:
            self._forget(id_or_slug)
            return None
        if response.status_code != 200:
            raise DependencyUnavailable(UNEXPECTED)
        try:
            category = Category.model_validate_json(response.content)
        except ValidationError as exc:
            raise DependencyUnavailable(UNEXPECTED) from exc
        self._remember(category.id, category.slug)
        return category.id

    def _forget(self, id_or_slug: str) -> None:
        self._slugs.pop(id_or_slug, None)
        with contextlib.suppress(ValueError):
            self._ids.pop(uuid.UUID(id_or_slug), None)

    def _remember(self, category_id: uuid.UUID, slug: str) -> None:
        now = self.clock()
        if len(self._ids) >= self.max_entries:
            self._ids = {key: until for key, until in self._ids.items() if until > now}
            self._slugs = {key: entry for key, entry in self._slugs.items() if entry[1] > now}
            if len(self._ids) >= self.max_entries:
                self._ids.clear()
                self._slugs.clear()
        self._ids[category_id] = now + self.ttl
        self._slugs[slug] = (category_id, now + self.ttl)
