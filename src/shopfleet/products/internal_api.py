"""Products' internal endpoints, for orders (lookup, reservations) and categories (usage)."""

from __future__ import annotations

import re
import uuid

import orjson
from fastapi import APIRouter, Response
from pydantic import ValidationError
from starlette.types import Scope

from shopfleet.common.app import Resources
from shopfleet.common.database import SessionDep, transaction_intent
from shopfleet.common.direct_writes import DirectAnswer, DirectWrite, header_values
from shopfleet.common.errors import NotFound
from shopfleet.common.http import INTERNAL_TOKEN_HEADER
from shopfleet.common.openapi import problem_responses
from shopfleet.common.schemas import SafeStr, parse_id
from shopfleet.common.security import InternalCaller, is_internal_caller
from shopfleet.contracts import products as contract
from shopfleet.contracts.products import (
    CategoryUsage,
    LookupProduct,
    LookupRequest,
    LookupResponse,
    ReservationConflict,
    ReservationPublic,
    ReservationRequest,
)
from shopfleet.products import repository, reservations
from shopfleet.products.caching import product_cache_scopes
from shopfleet.products.reservations import (
    InsufficientStock,
    ReservationNotFound,
    ReservationReleased,
)
from shopfleet.products.schemas import cents_to_price

internal = APIRouter(
    prefix=contract.PREFIX,
    tags=["internal"],
    dependencies=[InternalCaller],
)


def _order_id(value: str) -> uuid.UUID:
    parsed = parse_id(value)
    if parsed is None:
        raise ReservationNotFound
    return parsed


@internal.post(contract.LOOKUP, response_model=LookupResponse)
async def lookup_products(body: LookupRequest, db: SessionDep) -> LookupResponse:
    """Return sku, name, price and stock of the known ones among `ids`."""
    # A read behind a POST: it need not queue for SQLite's write lock.
    with transaction_intent(writes=False):
        rows = await repository.lookup_products(db, set(body.ids))
    products = [
        LookupProduct(
            id=row["id"],
            sku=row["sku"],
            name=row["name"],
            price=cents_to_price(row["price_cents"]),
            stock=row["stock"],
        )
        for row in rows
    ]
    return LookupResponse(products=products)


@internal.post(
    contract.RESERVATIONS,
    response_model=ReservationPublic,
    responses=problem_responses(
        InsufficientStock, ReservationReleased, models={409: ReservationConflict}
    ),
)
async def reserve_stock(body: ReservationRequest, db: SessionDep) -> Response:
    """Reserve and price all lines of an order or none (409 insufficient-stock).

    A repeat for an order id already reserved returns that reservation unchanged.
    """
    reserved = await reservations.reserve(
        db=db,
        order_id=body.order_id,
        items=body.items,
        release_on_refusal=body.release_on_refusal,
    )
    # Serialised once (the response model would validate and serialise it again).
    return Response(reserved.model_dump_json(by_alias=True), media_type="application/json")


async def _direct_reserve(scope: Scope, _: re.Match[str], body: bytes) -> DirectAnswer | None:
    """POST /internal/products/reservations on PostgreSQL, without FastAPI (orders calls it
    once per order): the same statement, invalidation and bytes as `reserve_stock`. A
    caller without the credential, a body that does not validate and SQLite are left to
    that endpoint, which answers them."""
    resources: Resources = scope["app"].state.resources
    tokens = header_values(scope, _INTERNAL_TOKEN)
    if not tokens or not is_internal_caller(resources.internal_token, tokens[0]):
        return None
    if resources.engine.dialect.name != "postgresql":
        return None
    try:
        request = ReservationRequest.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None
    reserved, taken = await reservations.reserve_at_once(
        resources.engine,
        request.order_id,
        request.items,
        release_on_refusal=request.release_on_refusal,
    )
    if taken and resources.cache is not None:
        await resources.cache.invalidate(*product_cache_scopes(*taken))
    return DirectAnswer(200, reserved.model_dump_json(by_alias=True).encode())


_INTERNAL_TOKEN = INTERNAL_TOKEN_HEADER.lower().encode()
DIRECT_WRITES = [
    DirectWrite(
        "POST",
        re.compile(re.escape(contract.reservations_path())),
        contract.reservations_path(),
        _direct_reserve,
    )
]


@internal.post(contract.RELEASE, response_model=ReservationPublic)
async def release_stock(order_id: SafeStr, db: SessionDep) -> ReservationPublic:
    """Return an order's reserved stock (idempotent); an unknown order gets a tombstone."""
    return await reservations.release(db=db, order_id=_order_id(order_id))


@internal.get(
    contract.RESERVATION,
    response_model=ReservationPublic,
    responses=problem_responses(ReservationNotFound),
)
async def get_reservation(order_id: SafeStr, db: SessionDep) -> ReservationPublic:
    return await reservations.get(db=db, order_id=_order_id(order_id))


@internal.get(contract.CATEGORY_USAGE, response_model=CategoryUsage)
async def category_usage(category_id: SafeStr, db: SessionDep) -> CategoryUsage:
    """How many products are in a category (categories asks before deleting one)."""
    parsed = parse_id(category_id)
    if parsed is None:
        raise NotFound("No such category.")
    return CategoryUsage(count=await repository.count_in_category(db, parsed))
