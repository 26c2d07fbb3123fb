"""Categories endpoints: the public /v1/categories API and the internal lookup for products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import StringConstraints

from shopfleet.categories import reads, service
from shopfleet.categories.products_client import ProductsClient
from shopfleet.categories.schemas import CategoryCreate, CategoryPublic, CategoryUpdate
from shopfleet.common.app import service_state
from shopfleet.common.database import SessionDep
from shopfleet.common.errors import Unprocessable
from shopfleet.common.openapi import problem_responses
from shopfleet.common.schemas import (
    SAFE_TEXT,
    ApiModel,
    Page,
    PageDep,
    SafeStr,
    make_page,
    parse_id,
)
from shopfleet.common.security import AdminUser, InternalCaller
from shopfleet.contracts import categories as contract

router = APIRouter(prefix="/v1/categories", tags=["categories"])
internal = APIRouter(
    prefix=contract.PREFIX,
    tags=["internal"],
    dependencies=[InternalCaller],
)
ROOT = "root"


def _json(body: ApiModel, status_code: int = 200) -> Response:
    # Serialised once by pydantic; the bytes are what a cache would keep.
    return Response(
        body.model_dump_json(by_alias=True), status_code=status_code, media_type="application/json"
    )


ProductsDep = Annotated[ProductsClient, Depends(service_state(ProductsClient))]


@router.get("", response_model=Page[CategoryPublic])
async def list_categories(
    db: SessionDep,
    paging: PageDep,
    parent_id: Annotated[
        Annotated[str, StringConstraints(max_length=64), SAFE_TEXT] | None,
        Query(
            alias="parentId",
            description=f"Only the children of this category id; `{ROOT}` for top-level ones.",
        ),
    ] = None,
) -> Response:
    """List categories by name."""
    parent = None
    if parent_id is not None and parent_id != ROOT:
        parent = parse_id(parent_id)
        if parent is None:
            raise Unprocessable("parentId must be a category id or 'root'.", field="parentId")
    rows, total = await service.list_categories(
        db=db, parent=parent, roots_only=parent_id == ROOT, offset=paging.offset, limit=paging.limit
    )
    results = [CategoryPublic.model_validate(row) for row in rows]
    return _json(make_page(results, params=paging, total=total))


async def _category_response(request: Request, id_or_slug: str) -> Response:
    # One SELECT serialised straight to bytes: no session, ORM object or response model.
    body = await reads.category_bytes(request.app.state.resources.engine, id_or_slug=id_or_slug)
    if body is None:
        raise service.CategoryNotFound
    return Response(body, media_type="application/json")


@router.get("/{id_or_slug}", response_model=CategoryPublic)
async def get_category(id_or_slug: SafeStr, request: Request) -> Response:
    """Return a category by id or slug."""
    return await _category_response(request, id_or_slug)


@router.post("", status_code=201, response_model=CategoryPublic)
async def create_category(body: CategoryCreate, db: SessionDep, _admin: AdminUser) -> Response:
    """Create a category; the slug is derived from the name when absent."""
    category = await service.create_category(db=db, data=body)
    return _json(CategoryPublic.model_validate(category), 201)


@router.patch("/{category_id}", response_model=CategoryPublic)
async def update_category(
    category_id: SafeStr, body: CategoryUpdate, db: SessionDep, _admin: AdminUser
) -> Response:
    """Change a category's name, slug, description or parent."""
    category = await service.update_category(db=db, category_id=category_id, changes=body)
    return _json(CategoryPublic.model_validate(category))


@router.delete("/{category_id}", status_code=204)
async def delete_category(
    category_id: SafeStr, db: SessionDep, products: ProductsDep, _admin: AdminUser
) -> Response:
    """Delete a category that has no child categories and no products."""
    await service.delete_category(db=db, products=products, category_id=category_id)
    return Response(status_code=204)


@internal.get(
    contract.CATEGORY,
    response_model=contract.Category,
    responses=problem_responses(service.CategoryNotFound),
)
async def lookup_category(id_or_slug: SafeStr, request: Request) -> Response:
    return await _category_response(request, id_or_slug)
