"""The auth service's internal interface (accounts, for users)."""

from __future__ import annotations

PREFIX = "/internal/auth"
ACCOUNTS = "/accounts"
ACCOUNT = "/accounts/{account_id}"
ACCOUNTS_PATH = PREFIX + ACCOUNTS
