"""Users' queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.users.models import Profile


async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> Profile | None:
    return await session.get(Profile, user_id)


async def get_profiles(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Profile]:
    """Load the profiles of many users in one query; users without one are absent."""
    wanted = list(user_ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(Profile).where(Profile.user_id.in_(wanted)))
    return {profile.user_id: profile for profile in rows}


async def lock_profile(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> Profile:
    """Return a user's profile for update, creating an empty one first if there is none.

    Insert-or-ignore then SELECT ... FOR UPDATE, so two first writes for one user
    never collide on the primary key and later writes to one profile queue up.
    """
    insert = postgres_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(Profile)
        .values(user_id=user_id, phone=None, addresses=[], created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[Profile.user_id])
    )
    result = await session.scalars(
        select(Profile)
        .where(Profile.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.one()
