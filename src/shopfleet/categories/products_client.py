"""Categories' view of products: how many products use a category (asked before a delete)."""

from __future__ import annotations

import uuid

from pydantic import ValidationError

from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.http import ServiceClient
from shopfleet.contracts import products as contract
from shopfleet.contracts.products import CategoryUsage

TARGET = "products"


class ProductsClient:
    """Calls products' internal API through the process's client (breaker, retries)."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def count_products_using(self, *, category_id: uuid.UUID) -> int:
        """Ask products how many products are in a category; no answer means no delete."""
        path = contract.category_usage_path(category_id)
        response = await self.http.request(TARGET, "GET", path)
        try:
            if response.status_code != 200:
                raise ValueError(response.status_code)
            return CategoryUsage.model_validate_json(response.content).count
        except (ValueError, ValidationError) as exc:
            raise DependencyUnavailable("Could not check which products use the category.") from exc
