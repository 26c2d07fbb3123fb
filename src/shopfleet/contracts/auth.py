"""The auth service's internal interface (accounts, for users)."""

from __future__ import annotations

import uuid
from typing import Literal

from shopfleet.common.schemas import Name, Pagination, Timestamp
from shopfleet.contracts.base import ContractAnswer, ContractRequest

PREFIX = "/internal/auth"
ACCOUNTS = "/accounts"
ACCOUNT = "/accounts/{account_id}"
ACCOUNTS_PATH = PREFIX + ACCOUNTS

Role = Literal["customer", "admin"]


def account_path(account_id: uuid.UUID) -> str:
    return PREFIX + ACCOUNT.format(account_id=account_id)


class Account(ContractAnswer):
    """An account as auth's internal API answers it (GET and PATCH of one account)."""

    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: Timestamp
    updated_at: Timestamp


class AccountPage(ContractAnswer):
    """One page of the account directory, newest first."""

    results: list[Account]
    pagination: Pagination


class AccountChanges(ContractRequest):
    """What users may change on an account; only the fields sent change."""

    name: Name | None = None
    role: Role | None = None
    active: bool | None = None
