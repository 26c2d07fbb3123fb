"""Orders endpoints: the public /v1/orders API."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import ValidationError
from starlette.types import Scope

from shopfleet.common.app import Resources, service_state
from shopfleet.common.database import SessionDep
from shopfleet.common.direct_writes import DirectAnswer, DirectWrite, header_values
from shopfleet.common.errors import PROBLEM_JSON, NotFound
from shopfleet.common.schemas import Page, PageDep, SafeStr, make_page
from shopfleet.common.security import AdminUser, CurrentUser, plain_bearer_claims
from shopfleet.orders import lifecycle, service
from shopfleet.orders.outcomes import Outcome
from shopfleet.orders.schemas import OrderCreate, OrderPublic, OrderStatus, OrderStatusUpdate
from shopfleet.orders.service import OrdersContext


async def _order_id(order_id: SafeStr) -> uuid.UUID:
    # A malformed id names no order: the same 404 as any order one may not see.
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise NotFound("No such order.") from None


ContextDep = Annotated[OrdersContext, Depends(service_state(OrdersContext))]
OrderIdDep = Annotated[uuid.UUID, Depends(_order_id)]
# Printable ASCII only: stricter than the input hygiene rule (common/schemas.py).
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="Repeat a request with the same key to get the same order and answer",
    ),
]
_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
router = APIRouter(prefix="/v1/orders", tags=["orders"])


def _answer(outcome: Outcome) -> DirectAnswer:
    headers = []
    if outcome.status_code == 201:
        headers.append((b"location", f"/v1/orders/{outcome.body['id']}".encode()))
    if outcome.replayed:
        headers.append((b"idempotent-replayed", b"true"))
    return DirectAnswer(
        outcome.status_code,
        orjson.dumps(outcome.body),
        _PROBLEM_TYPE if outcome.status_code >= 400 else b"application/json",
        tuple(headers),
    )


def _render(outcome: Outcome) -> Response:
    answer = _answer(outcome)
    return Response(
        answer.body,
        status_code=answer.status,
        headers={name.decode(): value.decode() for name, value in answer.headers},
        media_type=answer.media_type.decode(),
    )


_PROBLEM_TYPE = PROBLEM_JSON.encode()
_PRINTABLE = re.compile(r"[\x20-\x7e]{1,255}")  # IdempotencyKeyHeader's rule


async def _direct_create(scope: Scope, _: re.Match[str], body: bytes) -> DirectAnswer | None:
    """POST /v1/orders without FastAPI: the same service call and answer as `create_order`.

    Taken only in its plain form: one valid Bearer token, at most one valid
    Idempotency-Key, and a body that validates. Anything else is left to the endpoint,
    which answers it (401, 422, ...).
    """
    resources: Resources = scope["app"].state.resources
    claims = await plain_bearer_claims(
        scope.setdefault("state", {}), header_values(scope, b"authorization"), resources.verifier
    )
    if claims is None:
        return None
    keys = header_values(scope, b"idempotency-key")
    if len(keys) > 1 or (keys and _PRINTABLE.fullmatch(keys[0]) is None):
        return None
    try:
        data = OrderCreate.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None
    outcome = await service.create_order(
        ctx=resources.state(OrdersContext),
        user_id=uuid.UUID(claims.subject),
        data=data,
        idempotency_key=keys[0] if keys else None,
    )
    return _answer(outcome)


DIRECT_WRITES = [DirectWrite("POST", re.compile("/v1/orders"), "/v1/orders", _direct_create)]


@router.post(
    "",
    status_code=201,
    response_model=OrderPublic,
    responses={
        409: {**_PROBLEM, "description": "Not enough stock (names the lines), or key reused"},
        422: {**_PROBLEM, "description": "Invalid request or unknown product"},
        503: {**_PROBLEM, "description": "Products is unavailable; the order stays pending"},
    },
)
async def create_order(
    body: OrderCreate,
    user: CurrentUser,
    ctx: ContextDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Place an order with prices from products; stock is reserved or the order refused."""
    outcome = await service.create_order(
        ctx=ctx, user_id=uuid.UUID(user.subject), data=body, idempotency_key=idempotency_key
    )
    return _render(outcome)


@router.get("", response_model=Page[OrderPublic])
async def list_orders(
    user: CurrentUser,
    db: SessionDep,
    paging: PageDep,
    status: OrderStatus | None = None,
    user_id: Annotated[
        uuid.UUID | None, Query(alias="userId", description="Admins: one user's orders")
    ] = None,
) -> Page[OrderPublic]:
    """List your orders, newest first (admins: everyone's)."""
    rows, total = await lifecycle.list_orders(
        db=db,
        claims=user,
        status=status,
        user_id=user_id,
        offset=paging.offset,
        limit=paging.limit,
    )
    return make_page([OrderPublic.of(row) for row in rows], params=paging, total=total)


@router.get("/{order_id}", response_model=OrderPublic, responses={404: _PROBLEM})
async def get_order(user: CurrentUser, order_id: OrderIdDep, db: SessionDep) -> OrderPublic:
    """Return one of your orders (admins: any order)."""
    return OrderPublic.of(await lifecycle.get_order(db=db, claims=user, order_id=order_id))


@router.post(
    "/{order_id}/cancel",
    response_model=OrderPublic,
    responses={404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
)
async def cancel_order(
    user: CurrentUser, order_id: OrderIdDep, db: SessionDep, ctx: ContextDep
) -> OrderPublic:
    """Cancel a pending or confirmed order and return its stock."""
    order = await lifecycle.cancel_order(
        db=db, products=ctx.products, claims=user, order_id=order_id
    )
    return OrderPublic.of(order)


@router.patch(
    "/{order_id}/status",
    response_model=OrderPublic,
    responses={403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
)
async def change_status(
    _admin: AdminUser,
    order_id: OrderIdDep,
    body: OrderStatusUpdate,
    db: SessionDep,
    ctx: ContextDep,
) -> OrderPublic:
    """Ship, deliver or cancel an order (admin)."""
    order = await lifecycle.change_status(
        db=db, products=ctx.products, order_id=order_id, status=body.status
    )
    return OrderPublic.of(order)
