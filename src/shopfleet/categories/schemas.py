"""Categories request and response bodies."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from shopfleet.common.schemas import SAFE_TEXT, ApiModel, Name, Timestamp
from shopfleet.contracts.categories import SLUG_MAX_LENGTH, SLUG_PATTERN

_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9]+")

Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=SLUG_MAX_LENGTH),
    Field(description="Lower-case ASCII letters and digits in words joined by hyphens."),
    SAFE_TEXT,
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), SAFE_TEXT]


def slugify(name: str) -> str:
    """Derive a slug from a name: ASCII-folded, lower case, words joined by hyphens."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG_CHARS.sub("-", folded.lower()).strip("-")
    return slug[:SLUG_MAX_LENGTH].rstrip("-")


class CategoryCreate(ApiModel):
    name: Name
    slug: Slug | None = Field(default=None, description="Derived from the name when absent.")
    description: Description | None = None
    parent_id: uuid.UUID | None = None


class CategoryUpdate(ApiModel):
    """Any of the create fields; `description` and `parentId` may be set to null."""

    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    parent_id: uuid.UUID | None = None


class CategoryPublic(ApiModel):
    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    parent_id: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp
