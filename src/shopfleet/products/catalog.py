"""A written product rendered as its response model (reads go through reads.py as bytes)."""

from __future__ import annotations

from shopfleet.products.listing import (
    ALL_FIELDS,
    columns_for,
    field_values,
)
from shopfleet.products.models import Product
from shopfleet.products.schemas import ProductPublic


def public_product(product: Product, *, currency: str) -> ProductPublic:
    row = {column: getattr(product, column) for column in columns_for(ALL_FIELDS)}
    return ProductPublic.model_validate(field_values(row, ALL_FIELDS, currency))
