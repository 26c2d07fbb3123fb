"""Auth's queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.auth.models import Account, RefreshToken, Session
from shopfleet.auth.schemas import AccountQuery


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    return await session.get(Account, account_id)


async def get_account_by_email(session: AsyncSession, email: str) -> Account | None:
    result = await session.execute(select(Account).where(Account.email == email.lower()))
    return result.scalar_one_or_none()


async def list_accounts(
    session: AsyncSession, query: AccountQuery, *, offset: int, limit: int
) -> tuple[Sequence[Account], int]:
    conditions: list[ColumnElement[bool]] = []
    if query.email:
        pattern = query.email.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Account.email.like(f"%{pattern}%", escape="\\"))
    if query.role:
        conditions.append(Account.role == query.role)
    if query.active is not None:
        conditions.append(Account.active == query.active)
    if query.ids is not None:
        conditions.append(Account.id.in_(query.ids))
    total = await session.scalar(select(func.count()).select_from(Account).where(*conditions))
    rows = await session.scalars(
        select(Account)
        .where(*conditions)
        .order_by(Account.created_at.desc(), Account.id)
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)


async def find_refresh_token(
    session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, Session] | None:
    result = await session.execute(
        select(RefreshToken, Session)
        .join(Session, Session.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == token_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def mark_rotated(session: AsyncSession, token_hash: str, now: datetime) -> bool:
    """Rotate a token once: False when another request rotated it first."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_sessions(
    session: AsyncSession,
    *,
    now: datetime,
    session_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
) -> None:
    statement = update(Session).where(Session.revoked_at.is_(None)).values(revoked_at=now)
    if session_id is not None:
        statement = statement.where(Session.id == session_id)
    if account_id is not None:
        statement = statement.where(Session.account_id == account_id)
    await session.execute(statement)
