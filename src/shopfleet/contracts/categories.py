"""The categories service's internal interface (the category directory)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from shopfleet.common.schemas import Timestamp
from shopfleet.contracts.base import ContractAnswer

PREFIX = "/internal/categories"
CATEGORY = "/categories/{id_or_slug}"

LIST_SCOPE = "categories:list"
DETAIL_SCOPE = "categories:detail"


def category_path(id_or_slug: str) -> str:
    return PREFIX + CATEGORY.format(id_or_slug=quote(id_or_slug, safe=""))


class Category(ContractAnswer):
    """A category as categories' internal lookup answers it (products checks and resolves)."""

    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    parent_id: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp
