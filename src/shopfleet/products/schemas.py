"""Products request and response bodies, public and internal."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
)

from shopfleet.common.schemas import SAFE_TEXT, ApiModel, MoneyOut, Name, Timestamp

MAX_PRICE = Decimal("99999999.99")
_http_url: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _json_number(value: Any) -> Any:
    # Lax mode would take "19.99" or true; money travels as a JSON number only.
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number")
    return value


def _http_url_text(value: str) -> str:
    url = _http_url.validate_python(value)
    if url.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    return value


Sku = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    ),
    Field(description="Letters, digits, '.', '_' and '-'; stored in upper case."),
    SAFE_TEXT,
]
Price = Annotated[
    Decimal,
    BeforeValidator(_json_number),
    Field(ge=0, le=MAX_PRICE, decimal_places=2, description="At most two decimals."),
]
Stock = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), SAFE_TEXT]
ImageUrl = Annotated[
    str, StringConstraints(max_length=2048), SAFE_TEXT, AfterValidator(_http_url_text)
]


class ProductCreate(ApiModel):
    sku: Sku
    name: Name
    description: Description | None = None
    price: Price
    category_id: uuid.UUID
    stock: Stock
    image: ImageUrl | None = None


class ProductUpdate(ApiModel):
    """Any of the create fields; only `description` and `image` may be set to null."""

    sku: Sku | None = None
    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    category_id: uuid.UUID | None = None
    stock: Stock | None = None
    image: ImageUrl | None = None


class ProductPublic(ApiModel):
    id: uuid.UUID
    sku: str
    name: str
    description: str | None
    price: MoneyOut
    currency: str
    category_id: uuid.UUID
    stock: int
    in_stock: bool
    image: str | None
    created_at: Timestamp
    updated_at: Timestamp


def _only_id_required(schema: dict[str, Any]) -> None:
    schema["required"] = ["id"]


class ProductSelection(ProductPublic):
    """A product: every field, or with `fields=` only those (and always `id`)."""

    model_config = ConfigDict(json_schema_extra=_only_id_required)


PRODUCT_FIELDS: tuple[str, ...] = tuple(
    info.alias or name for name, info in ProductPublic.model_fields.items()
)


def price_to_cents(price: Decimal) -> int:
    """Exact: prices have at most two decimals."""
    return int(price.scaleb(2))


def cents_to_price(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
