"""The categories service's internal interface (the category directory)."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

from shopfleet.common.schemas import Timestamp
from shopfleet.contracts.base import ContractAnswer

PREFIX = "/internal/categories"
CATEGORY = "/categories/{id_or_slug}"

# A category is named by its id or its slug: lower-case ASCII words joined by hyphens.
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_MAX_LENGTH = 200
_SLUG = re.compile(SLUG_PATTERN)

LIST_SCOPE = "categories:list"
DETAIL_SCOPE = "categories:detail"


def is_slug(value: str) -> bool:
    return len(value) <= SLUG_MAX_LENGTH and _SLUG.match(value) is not None


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
