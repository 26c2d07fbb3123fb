"""The categories service's internal interface (the category directory)."""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "/internal/categories"
CATEGORY = "/categories/{id_or_slug}"

LIST_SCOPE = "categories:list"
DETAIL_SCOPE = "categories:detail"


def category_path(id_or_slug: str) -> str:
    return PREFIX + CATEGORY.format(id_or_slug=quote(id_or_slug, safe=""))
