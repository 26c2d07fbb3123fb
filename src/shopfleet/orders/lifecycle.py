"""An order after its creation: reading, listing, cancelling and fulfilment steps."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, Forbidden, NotFound
from shopfleet.common.tokens import AccessClaims
from shopfleet.orders import repository
from shopfleet.orders.models import Order
from shopfleet.orders.outcomes import cancelled_outcome
from shopfleet.orders.products_client import ProductsClient

# The status changes an administrator may make; cancelling also returns the stock.
TRANSITIONS = frozenset(
    {
        ("confirmed", "shipped"),
        ("shipped", "delivered"),
        ("pending", "cancelled"),
        ("confirmed", "cancelled"),
    }
)


class InvalidTransition(Conflict):
    problem_type = "urn:shopfleet:problem:invalid-transition"

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"An order that is {current} cannot become {wanted}.")


def _is_admin(claims: AccessClaims) -> bool:
    return claims.role == "admin"


async def get_order(
    *, db: AsyncSession, claims: AccessClaims, order_id: uuid.UUID, for_update: bool = False
) -> Order:
    """Return an order its owner or an admin may see; anyone else gets a 404."""
    order = await repository.get_order(db, order_id, for_update=for_update)
    if order is None or (not _is_admin(claims) and str(order.user_id) != claims.subject):
        raise NotFound("No such order.")
    return order


async def list_orders(
    *,
    db: AsyncSession,
    claims: AccessClaims,
    status: str | None,
    user_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[Order], int]:
    """A customer's own orders; an admin's view of everyone's, optionally one user's."""
    if not _is_admin(claims):
        if user_id is not None and str(user_id) != claims.subject:
            raise Forbidden("Only administrators can list other users' orders.")
        user_id = uuid.UUID(claims.subject)
    return await repository.list_orders(
        db, user_id=user_id, status=status, offset=offset, limit=limit
    )


async def cancel_order(
    *, db: AsyncSession, products: ProductsClient, claims: AccessClaims, order_id: uuid.UUID
) -> Order:
    """Cancel a pending or confirmed order and return its stock; repeating it is a no-op."""
    order = await get_order(db=db, claims=claims, order_id=order_id, for_update=True)
    if order.status == "cancelled":
        return order
    if (order.status, "cancelled") not in TRANSITIONS:
        raise InvalidTransition(order.status, "cancelled")
    return await _cancel(db=db, products=products, order=order)


async def change_status(
    *, db: AsyncSession, products: ProductsClient, order_id: uuid.UUID, status: str
) -> Order:
    """Move an order along its fulfilment (admin); only the allowed transitions."""
    order = await repository.get_order(db, order_id, for_update=True)
    if order is None:
        raise NotFound("No such order.")
    if (order.status, status) not in TRANSITIONS:
        raise InvalidTransition(order.status, status)
    if status == "cancelled":
        return await _cancel(db=db, products=products, order=order)
    order.status = status
    order.updated_at = utcnow()
    await db.flush()
    return order


async def _cancel(*, db: AsyncSession, products: ProductsClient, order: Order) -> Order:
    # The row stays locked (FOR UPDATE on PostgreSQL, the write transaction on SQLite)
    # across the release, so no confirm, ship or sweep slips in between: once products
    # has released, this order can only end cancelled.
    await products.release_stock(order_id=order.id)
    if order.status == "pending":
        # Cancelling a pending order also settles its creation for a repeated key.
        outcome = cancelled_outcome(order)
        await repository.resolve_pending(
            db,
            order_id=order.id,
            status="cancelled",
            response_status=outcome.status_code,
            response_body=outcome.body,
        )
    else:
        order.status = "cancelled"
        order.updated_at = utcnow()
        await db.flush()
    refreshed = await repository.get_order(db, order.id)
    assert refreshed is not None
    return refreshed
