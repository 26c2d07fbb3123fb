"""Users endpoints: /v1/users (own profile, and the admin user directory)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from shopfleet.common.app import service_state
from shopfleet.common.database import SessionDep
from shopfleet.common.schemas import EmailQuery, Page, PageDep, SafeStr
from shopfleet.common.security import AdminUser, CurrentUser
from shopfleet.contracts.auth import Role
from shopfleet.users import service
from shopfleet.users.auth_client import AuthClient, UserNotFound
from shopfleet.users.schemas import AdminProfileUpdate, ProfilePublic, ProfileUpdate


async def _user_id(
    user_id: Annotated[
        SafeStr,
        Path(
            description="The user's id (a UUID). A malformed id is a 404, like an unknown one.",
            examples=["0b8f3d5e-2f7a-4a57-9a8e-5b0e9f0c1d2a"],
        ),
    ],
) -> uuid.UUID:
    # Ids are opaque to clients: a malformed one is just a user that does not exist.
    try:
        return uuid.UUID(user_id)
    except ValueError as exc:
        raise UserNotFound from exc


AuthDep = Annotated[AuthClient, Depends(service_state(AuthClient))]
UserIdDep = Annotated[uuid.UUID, Depends(_user_id)]


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Missing, invalid or expired access token.",
        403: "Signed in, but not allowed (admin only, or the account is deactivated).",
        404: "No such user (also for another user's profile, and for malformed ids).",
        409: "An administrator tried to deactivate or demote themselves.",
        503: "The auth service is unavailable; retry after `Retry-After` seconds.",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }


router = APIRouter(prefix="/v1/users", tags=["users"], responses=_problems(401, 503))


@router.get("/me", response_model=ProfilePublic, responses=_problems(404))
async def get_me(user: CurrentUser, db: SessionDep, auth: AuthDep) -> ProfilePublic:
    """Return the signed-in user's profile."""
    return await service.get_profile(db=db, auth=auth, user_id=uuid.UUID(user.subject))


@router.patch("/me", response_model=ProfilePublic, responses=_problems(403, 404))
async def update_me(
    body: ProfileUpdate, user: CurrentUser, db: SessionDep, auth: AuthDep
) -> ProfilePublic:
    """Change your own name, phone or addresses (addresses replace the whole list)."""
    return await service.update_own_profile(
        db=db, auth=auth, user_id=uuid.UUID(user.subject), changes=body
    )


@router.get("", response_model=Page[ProfilePublic], responses=_problems(403))
async def list_users(
    admin: AdminUser,
    db: SessionDep,
    auth: AuthDep,
    paging: PageDep,
    email: Annotated[
        EmailQuery | None, Query(description="Part of the email, case-insensitive")
    ] = None,
    role: Role | None = None,
    active: bool | None = None,
) -> Page[ProfilePublic]:
    """List users, newest first (admin)."""
    return await service.list_profiles(
        db=db,
        auth=auth,
        page=paging.page,
        limit=paging.limit,
        email=email,
        role=role,
        active=active,
    )


@router.get("/{user_id}", response_model=ProfilePublic, responses=_problems(404))
async def get_user(
    user: CurrentUser, user_id: UserIdDep, db: SessionDep, auth: AuthDep
) -> ProfilePublic:
    """Return a user's profile: your own, or anyone's for an admin."""
    if user.role != "admin" and user.subject != str(user_id):
        raise UserNotFound
    return await service.get_profile(db=db, auth=auth, user_id=user_id)


@router.patch("/{user_id}", response_model=ProfilePublic, responses=_problems(403, 404, 409))
async def update_user(
    admin: AdminUser, user_id: UserIdDep, body: AdminProfileUpdate, db: SessionDep, auth: AuthDep
) -> ProfilePublic:
    """Change any user's name, phone, addresses, role or active (admin).

    Role and active changes reach the user's access token at their next login or refresh.
    """
    return await service.update_profile(
        db=db, auth=auth, actor_id=uuid.UUID(admin.subject), user_id=user_id, changes=body
    )


@router.delete(
    "/{user_id}", status_code=204, response_class=Response, responses=_problems(403, 404, 409)
)
async def deactivate_user(admin: AdminUser, user_id: UserIdDep, auth: AuthDep) -> Response:
    """Deactivate a user (admin): they can no longer log in or refresh. Repeats are harmless."""
    await service.deactivate_user(auth=auth, actor_id=uuid.UUID(admin.subject), user_id=user_id)
    return Response(status_code=204)
