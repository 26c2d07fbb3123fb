"""Who is calling: signed-in users (Bearer tokens) and other services (internal credential)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shopfleet.common.errors import Forbidden, NotFound, ShopfleetError
from shopfleet.common.errors import Unauthorized as UnauthorizedError
from shopfleet.common.http import INTERNAL_TOKEN_HEADER
from shopfleet.common.tokens import AccessClaims, TokenVerifier

_bearer = HTTPBearer(auto_error=False, description="An access token from /v1/auth/login")


async def _optional_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims | None:
    if credentials is None:
        if request.headers.get("authorization"):
            raise UnauthorizedError("The Authorization header must be 'Bearer <token>'.")
        return None
    # The rate limiter may have verified this very token already.
    claims: AccessClaims | None = request.scope.get("state", {}).get("claims")
    if claims is None:
        claims = await request.app.state.resources.verifier.verify(credentials.credentials)
    request.state.user_id = claims.subject
    return claims


async def _current_user(
    claims: Annotated[AccessClaims | None, Depends(_optional_user)],
) -> AccessClaims:
    if claims is None:
        raise UnauthorizedError("Sign in to use this endpoint.")
    return claims


async def _admin_user(claims: Annotated[AccessClaims, Depends(_current_user)]) -> AccessClaims:
    if claims.role != "admin":
        raise Forbidden("This endpoint is for administrators.")
    return claims


async def _internal_caller(request: Request) -> None:
    expected: str | None = request.app.state.resources.internal_token
    if expected is None:
        raise NotFound("No such resource.")
    if not is_internal_caller(expected, request.headers.get(INTERNAL_TOKEN_HEADER)):
        raise UnauthorizedError("A valid internal service credential is required.")


def is_internal_caller(expected: str | None, given: str | None) -> bool:
    """Whether `given` is the internal service credential (none is configured: never)."""
    if expected is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def plain_bearer_claims(
    state: dict[str, object], authorization: list[str], verifier: TokenVerifier
) -> AccessClaims | None:
    """The caller's claims when it sent one valid `Bearer` token, else None.

    For answers below FastAPI (common/direct_writes.py), which leave every other caller
    to the endpoint's CurrentUser. The rate limiter's verification (`state["claims"]`)
    is reused, as CurrentUser reuses it.
    """
    if len(authorization) != 1:
        return None
    claims = state.get("claims")
    if isinstance(claims, AccessClaims):
        return claims
    scheme, _, token = authorization[0].partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return await verifier.verify(token)
    except ShopfleetError:
        return None


OptionalUser = Annotated[AccessClaims | None, Depends(_optional_user)]
CurrentUser = Annotated[AccessClaims, Depends(_current_user)]
AdminUser = Annotated[AccessClaims, Depends(_admin_user)]
InternalCaller = Depends(_internal_caller)
