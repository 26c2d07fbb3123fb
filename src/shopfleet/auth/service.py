"""Auth's rules: accounts, sign-in, and sessions with rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopfleet.auth import repository
from shopfleet.auth.models import Account, RefreshToken, Session
from shopfleet.auth.passwords import Passwords
from shopfleet.auth.schemas import RegisterRequest
from shopfleet.common.database import utcnow
from shopfleet.common.errors import Conflict, Forbidden, NotFound, Unauthorized
from shopfleet.common.settings import Settings
from shopfleet.common.tokens import TokenSigner
from shopfleet.contracts.auth import AccountChanges


class EmailTaken(Conflict):
    problem_type = "urn:shopfleet:problem:email-taken"

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class AccountDisabled(Forbidden):
    problem_type = "urn:shopfleet:problem:account-disabled"

    def __init__(self) -> None:
        super().__init__("This account is deactivated.")


class InvalidRefreshToken(Unauthorized):
    def __init__(self, *, session_revoked: bool = False) -> None:
        super().__init__("The refresh token is not valid.")
        # A reused token revokes its session: that revocation must be committed.
        self.keep_changes = session_revoked


@dataclass(frozen=True)
class Issued:
    account: Account
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class AuthContext:
    """What the auth rules need besides the database session."""

    settings: Settings
    passwords: Passwords
    signer: TokenSigner


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def register(*, db: AsyncSession, ctx: AuthContext, data: RegisterRequest) -> Issued:
    """Create a customer account and sign it in."""
    if await repository.get_account_by_email(db, data.email) is not None:
        raise EmailTaken
    account = Account(
        email=data.email.lower(),
        name=data.name,
        password_hash=await ctx.passwords.hash(data.password),
        role="customer",
        active=True,
    )
    db.add(account)
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise EmailTaken from exc
    return await _start_session(db=db, ctx=ctx, account=account)


async def login(*, db: AsyncSession, ctx: AuthContext, email: str, password: str) -> Issued:
    """Check credentials; unknown email and wrong password look the same, in time too."""
    account = await repository.get_account_by_email(db, email.strip())
    valid = await ctx.passwords.verify(account.password_hash if account else None, password)
    if account is None or not valid:
        raise InvalidCredentials
    if not account.active:
        raise AccountDisabled
    if ctx.passwords.needs_rehash(account.password_hash):
        account.password_hash = await ctx.passwords.hash(password)
    return await _start_session(db=db, ctx=ctx, account=account)


async def refresh(*, db: AsyncSession, ctx: AuthContext, refresh_token: str) -> Issued:
    """Rotate a refresh token; presenting a rotated one revokes the whole session."""
    now = utcnow()
    token_hash = _hash_token(refresh_token)
    found = await repository.find_refresh_token(db, token_hash)
    if found is None:
        raise InvalidRefreshToken
    token, session = found
    if session.revoked_at is not None or session.expires_at <= now:
        raise InvalidRefreshToken
    if token.rotated_at is not None or not await repository.mark_rotated(db, token_hash, now):
        await repository.revoke_sessions(db, now=now, session_id=session.id)
        raise InvalidRefreshToken(session_revoked=True)
    account = await repository.get_account(db, session.account_id)
    if account is None or not account.active:
        await repository.revoke_sessions(db, now=now, session_id=session.id)
        error = AccountDisabled()
        error.keep_changes = True
        raise error
    session.last_used_at = now
    session.expires_at = now + timedelta(seconds=ctx.settings.session_idle_timeout)
    return await _issue(db=db, ctx=ctx, account=account, session=session)


async def logout(*, db: AsyncSession, refresh_token: str) -> None:
    """End the session a refresh token belongs to; unknown tokens are ignored."""
    found = await repository.find_refresh_token(db, _hash_token(refresh_token))
    if found is not None:
        await repository.revoke_sessions(db, now=utcnow(), session_id=found[1].id)


async def get_account(*, db: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await repository.get_account(db, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


async def update_account(
    *, db: AsyncSession, account_id: uuid.UUID, changes: AccountChanges
) -> Account:
    """Change name, role or active; deactivation ends every session of the account."""
    account = await get_account(db=db, account_id=account_id)
    fields = changes.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in fields.items():
        setattr(account, name, value)
    if fields:
        account.updated_at = utcnow()
    if fields.get("active") is False:
        await repository.revoke_sessions(db, now=utcnow(), account_id=account.id)
    await db.flush()
    return account


async def ensure_admin(
    *, db: AsyncSession, passwords: Passwords, email: str, password: str, name: str
) -> tuple[Account, bool]:
    """Create an admin account, or promote an existing one; return it and whether it is new."""
    account = await repository.get_account_by_email(db, email)
    if account is not None:
        account.role = "admin"
        account.active = True
        account.updated_at = utcnow()
        await db.flush()
        return account, False
    account = Account(
        email=email.lower(),
        name=name,
        password_hash=await passwords.hash(password),
        role="admin",
        active=True,
    )
    db.add(account)
    await db.flush()
    return account, True


async def _start_session(*, db: AsyncSession, ctx: AuthContext, account: Account) -> Issued:
    now = utcnow()
    session = Session(
        account_id=account.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.session_idle_timeout),
    )
    db.add(session)
    await db.flush()
    return await _issue(db=db, ctx=ctx, account=account, session=session)


async def _issue(
    *, db: AsyncSession, ctx: AuthContext, account: Account, session: Session
) -> Issued:
    refresh_token = secrets.token_urlsafe(32)
    db.add(RefreshToken(token_hash=_hash_token(refresh_token), session_id=session.id))
    await db.flush()
    access_token, expires_in = ctx.signer.issue(subject=str(account.id), role=account.role)
    return Issued(account, access_token, refresh_token, expires_in)
