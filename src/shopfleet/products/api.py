"""Products' public endpoints: /v1/products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from shopfleet.common.app import service_state
from shopfleet.common.database import SessionDep
from shopfleet.common.schemas import ApiModel, Page, SafeStr, make_page, parse_id
from shopfleet.common.security import AdminUser
from shopfleet.products import caching, catalog, reads, service
from shopfleet.products.categories_client import CategoriesClient
from shopfleet.products.listing import FieldsText, ProductListQueryDep, parse_fields
from shopfleet.products.routing import ExactNumbersRoute
from shopfleet.products.schemas import (
    ProductCreate,
    ProductPublic,
    ProductSelection,
    ProductUpdate,
)
from shopfleet.products.service import ProductNotFound

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=ExactNumbersRoute)


async def _currency(request: Request) -> str:
    currency: str = request.app.state.resources.settings.currency
    return currency


CategoriesDep = Annotated[CategoriesClient, Depends(service_state(CategoriesClient))]
CurrencyDep = Annotated[str, Depends(_currency)]
FieldsQuery = Annotated[
    FieldsText | None,
    Query(description="Comma-separated product fields; id is always included."),
]


def _json(body: ApiModel, status_code: int = 200) -> Response:
    # Serialised once by pydantic; the bytes are what a cache would keep.
    return Response(
        body.model_dump_json(by_alias=True), status_code=status_code, media_type="application/json"
    )


@router.get("", response_model=Page[ProductSelection])
async def list_products(
    query: ProductListQueryDep, request: Request, categories: CategoriesDep
) -> Response:
    """List products: filters, sorts, field selection, and `cursor` for keyset pagination."""
    category_id = None
    if query.category is not None:
        category_id = await categories.resolve(query.category)
        if category_id is None:  # no category has that slug: nothing is in it
            return _json(make_page([], params=query.paging, total=0))
    body = await caching.list_page(
        request.app.state.resources, query=query, category_id=category_id
    )
    return Response(body, media_type="application/json")


@router.get("/{product_id}", response_model=ProductSelection)
async def get_product(
    product_id: SafeStr, request: Request, currency: CurrencyDep, fields: FieldsQuery = None
) -> Response:
    """Return one product, or just the `fields` asked for."""
    chosen = parse_fields(fields)
    parsed = parse_id(product_id)
    body = None
    if parsed is not None:
        # One SELECT of the needed columns, serialised straight to the bytes the
        # response cache keeps (no session, ORM object or response model).
        engine = request.app.state.resources.engine
        body = await reads.product_detail_bytes(
            engine, product_id=parsed, fields=chosen, currency=currency
        )
    if body is None:
        raise ProductNotFound
    return Response(body, media_type="application/json")


@router.post("", status_code=201, response_model=ProductPublic)
async def create_product(
    body: ProductCreate,
    db: SessionDep,
    categories: CategoriesDep,
    currency: CurrencyDep,
    _admin: AdminUser,
) -> Response:
    """Add a product; its category must exist."""
    product = await service.create_product(db=db, categories=categories, data=body)
    return _json(catalog.public_product(product, currency=currency), 201)


@router.patch("/{product_id}", response_model=ProductPublic)
async def update_product(
    product_id: SafeStr,
    body: ProductUpdate,
    db: SessionDep,
    categories: CategoriesDep,
    currency: CurrencyDep,
    _admin: AdminUser,
) -> Response:
    """Change any of a product's fields."""
    product = await service.update_product(
        db=db, categories=categories, product_id=product_id, changes=body
    )
    return _json(catalog.public_product(product, currency=currency))


@router.delete("/{product_id}", status_code=204)
async def delete_product(product_id: SafeStr, db: SessionDep, _admin: AdminUser) -> Response:
    await service.delete_product(db=db, product_id=product_id)
    return Response(status_code=204)
