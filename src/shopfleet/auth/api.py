"""Auth endpoints: the public /v1/auth API and the internal account API for users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from shopfleet.auth import repository, service
from shopfleet.auth.schemas import (
    AccountQuery,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserPublic,
)
from shopfleet.auth.service import AuthContext, Issued
from shopfleet.common.app import service_state
from shopfleet.common.database import SessionDep
from shopfleet.common.errors import NotFound
from shopfleet.common.openapi import problem_responses
from shopfleet.common.schemas import EmailQuery, PageDep, make_page
from shopfleet.common.security import CurrentUser, InternalCaller
from shopfleet.contracts import auth as contract
from shopfleet.contracts.auth import Role

ContextDep = Annotated[AuthContext, Depends(service_state(AuthContext))]
router = APIRouter(prefix="/v1/auth", tags=["auth"])
internal = APIRouter(
    prefix=contract.PREFIX,
    tags=["internal"],
    dependencies=[InternalCaller],
)


def _pair(issued: Issued) -> TokenPair:
    return TokenPair(
        user=UserPublic.model_validate(issued.account),
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


async def _no_store(response: Response) -> None:
    # Tokens must never sit in a browser, proxy or gateway cache (RFC 6749 section 5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NO_STORE = [Depends(_no_store)]


@router.post("/register", status_code=201, response_model=TokenPair, dependencies=NO_STORE)
async def register(body: RegisterRequest, db: SessionDep, ctx: ContextDep) -> TokenPair:
    """Create a customer account and return its first token pair."""
    return _pair(await service.register(db=db, ctx=ctx, data=body))


@router.post("/login", response_model=TokenPair, dependencies=NO_STORE)
async def login(body: LoginRequest, db: SessionDep, ctx: ContextDep) -> TokenPair:
    """Exchange email and password for a token pair."""
    return _pair(await service.login(db=db, ctx=ctx, email=body.email, password=body.password))


@router.post("/refresh", response_model=TokenPair, dependencies=NO_STORE)
async def refresh(body: RefreshRequest, db: SessionDep, ctx: ContextDep) -> TokenPair:
    """Rotate a refresh token into a new pair."""
    return _pair(await service.refresh(db=db, ctx=ctx, refresh_token=body.refresh_token))


@router.post("/logout", status_code=204)
async def logout(body: RefreshRequest, db: SessionDep) -> Response:
    """End the session of a refresh token."""
    await service.logout(db=db, refresh_token=body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic)
async def me(user: CurrentUser, db: SessionDep) -> UserPublic:
    """Return the signed-in account."""
    account = await service.get_account(db=db, account_id=uuid.UUID(user.subject))
    return UserPublic.model_validate(account)


@router.get("/.well-known/jwks.json")
async def jwks(ctx: ContextDep, response: Response) -> dict[str, object]:
    """Return the public keys that verify access tokens."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return ctx.signer.jwks()


@internal.get(contract.ACCOUNTS, response_model=contract.AccountPage)
async def list_accounts(
    db: SessionDep,
    paging: PageDep,
    email: Annotated[EmailQuery | None, Query()] = None,
    role: Role | None = None,
    active: bool | None = None,
    ids: Annotated[list[uuid.UUID] | None, Query()] = None,
) -> contract.AccountPage:
    query = AccountQuery(email=email, role=role, active=active, ids=ids)
    rows, total = await repository.list_accounts(
        db, query, offset=paging.offset, limit=paging.limit
    )
    page = make_page([contract.Account.model_validate(r) for r in rows], params=paging, total=total)
    return contract.AccountPage(results=page.results, pagination=page.pagination)


@internal.get(
    contract.ACCOUNT, response_model=contract.Account, responses=problem_responses(NotFound)
)
async def get_account(account_id: uuid.UUID, db: SessionDep) -> contract.Account:
    return contract.Account.model_validate(await service.get_account(db=db, account_id=account_id))


@internal.patch(
    contract.ACCOUNT, response_model=contract.Account, responses=problem_responses(NotFound)
)
async def update_account(
    account_id: uuid.UUID, body: contract.AccountChanges, db: SessionDep
) -> contract.Account:
    account = await service.update_account(db=db, account_id=account_id, changes=body)
    return contract.Account.model_validate(account)
