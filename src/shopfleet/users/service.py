"""Users' rules: profiles joined with auth's accounts, and the admin user directory."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, Forbidden
from shopfleet.common.schemas import Page
from shopfleet.contracts.auth import Account, AccountChanges, Role
from shopfleet.users import repository
from shopfleet.users.auth_client import AuthClient
from shopfleet.users.models import Profile
from shopfleet.users.schemas import Address, AdminProfileUpdate, ProfilePublic, ProfileUpdate

ACCOUNT_FIELDS = frozenset({"name", "role", "active"})
PROFILE_FIELDS = frozenset({"phone", "addresses"})


class AccountDeactivated(Forbidden):
    problem_type = "urn:shopfleet:problem:account-disabled"

    def __init__(self) -> None:
        super().__init__("This account is deactivated.")


class OwnAccessChange(Conflict):
    problem_type = "urn:shopfleet:problem:own-access"

    def __init__(self) -> None:
        super().__init__(
            "Administrators cannot deactivate or demote themselves; ask another administrator."
        )


def to_public(account: Account, profile: Profile | None) -> ProfilePublic:
    """Join an account with its profile; no profile row yet means no phone and no addresses."""
    updated_at = account.updated_at
    if profile is not None and profile.updated_at > updated_at:
        updated_at = profile.updated_at
    return ProfilePublic(
        id=account.id,
        email=account.email,
        name=account.name,
        role=account.role,
        active=account.active,
        created_at=account.created_at,
        updated_at=updated_at,
        phone=profile.phone if profile else None,
        addresses=[Address.model_validate(a) for a in profile.addresses] if profile else [],
    )


async def get_profile(*, db: AsyncSession, auth: AuthClient, user_id: uuid.UUID) -> ProfilePublic:
    account = await auth.get_account(account_id=user_id)
    return to_public(account, await repository.get_profile(db, user_id))


async def update_own_profile(
    *, db: AsyncSession, auth: AuthClient, user_id: uuid.UUID, changes: ProfileUpdate
) -> ProfilePublic:
    """Apply a user's own changes; a deactivated account may not edit while its token lives."""
    account = await auth.get_account(account_id=user_id)
    if not account.active:
        raise AccountDeactivated
    return await _apply(db=db, auth=auth, account=account, user_id=user_id, changes=changes)


async def update_profile(
    *,
    db: AsyncSession,
    auth: AuthClient,
    actor_id: uuid.UUID,
    user_id: uuid.UUID,
    changes: AdminProfileUpdate,
) -> ProfilePublic:
    """Apply an admin's changes to any user, account fields included."""
    if actor_id == user_id and (changes.active is False or changes.role == "customer"):
        raise OwnAccessChange
    return await _apply(db=db, auth=auth, account=None, user_id=user_id, changes=changes)


async def deactivate_user(*, auth: AuthClient, actor_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Deactivate an account (auth ends its sessions); the profile is kept. Idempotent."""
    if actor_id == user_id:
        raise OwnAccessChange
    await auth.update_account(account_id=user_id, changes=AccountChanges(active=False))


async def list_profiles(
    *,
    db: AsyncSession,
    auth: AuthClient,
    page: int,
    limit: int,
    email: str | None,
    role: Role | None,
    active: bool | None,
) -> Page[ProfilePublic]:
    """One page of the directory from auth, with the page's profiles loaded in one query."""
    directory = await auth.list_accounts(
        page=page, limit=limit, email=email, role=role, active=active
    )
    profiles = await repository.get_profiles(db, (account.id for account in directory.results))
    return Page[ProfilePublic](
        results=[to_public(a, profiles.get(a.id)) for a in directory.results],
        pagination=directory.pagination,
    )


async def _apply(
    *,
    db: AsyncSession,
    auth: AuthClient,
    account: Account | None,
    user_id: uuid.UUID,
    changes: ProfileUpdate,
) -> ProfilePublic:
    # Auth is called before our own write: an unknown user or an unreachable auth
    # then leaves nothing to undo, and no database lock is held across the call.
    account_changes = changes.model_dump(include=set(ACCOUNT_FIELDS), exclude_unset=True)
    if account_changes:
        account = await auth.update_account(
            account_id=user_id, changes=AccountChanges.model_validate(account_changes)
        )
    elif account is None:
        account = await auth.get_account(account_id=user_id)
    profile_changes = changes.model_dump(
        mode="json", include=set(PROFILE_FIELDS), exclude_unset=True
    )
    if not profile_changes:
        return to_public(account, await repository.get_profile(db, user_id))
    now = utcnow()
    profile = await repository.lock_profile(db, user_id, now=now)
    if "phone" in profile_changes:
        profile.phone = profile_changes["phone"]
    if "addresses" in profile_changes:
        profile.addresses = profile_changes["addresses"]
    profile.updated_at = now
    await db.flush()
    return to_public(account, profile)
