"""Users' view of auth: the only way users reads or changes accounts (auth's internal API)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shopfleet.common.errors import DependencyUnavailable, NotFound
from shopfleet.common.http import Answer, ServiceClient
from shopfleet.contracts import auth as contract
from shopfleet.contracts.auth import Account, AccountChanges, AccountPage, Role

log = logging.getLogger("shopfleet.users.auth_client")
TARGET = "auth"
Model = TypeVar("Model", bound=BaseModel)


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such user.")


class AuthClient:
    """Calls auth's internal account API through the process's client (breaker, retries)."""

    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def get_account(self, *, account_id: uuid.UUID) -> Account:
        response = await self.http.request(TARGET, "GET", contract.account_path(account_id))
        return _read(response, Account, not_found=True)

    async def list_accounts(
        self,
        *,
        page: int,
        limit: int,
        email: str | None = None,
        role: Role | None = None,
        active: bool | None = None,
    ) -> AccountPage:
        """Return one page of the account directory, newest first, filtered by auth."""
        params: dict[str, Any] = {"page": page, "limit": limit}
        if email is not None:
            params["email"] = email
        if role is not None:
            params["role"] = role
        if active is not None:
            params["active"] = "true" if active else "false"
        response = await self.http.request(TARGET, "GET", contract.ACCOUNTS_PATH, params=params)
        return _read(response, AccountPage, not_found=False)

    async def update_account(self, *, account_id: uuid.UUID, changes: AccountChanges) -> Account:
        """Change name, role or active; deactivating also ends the account's sessions in auth."""
        # The body sets absolute values, so a repeat is harmless and transient failures retry.
        response = await self.http.request(
            TARGET,
            "PATCH",
            contract.account_path(account_id),
            json=changes.model_dump(mode="json", by_alias=True, exclude_unset=True),
            idempotent=True,
        )
        return _read(response, Account, not_found=True)


def _read(response: Answer, model: type[Model], *, not_found: bool) -> Model:
    """Parse auth's answer; anything but success or a missing account is auth's failure."""
    if response.status_code == 404 and not_found:
        raise UserNotFound
    if response.status_code != 200:
        # 5xx never get here (ServiceClient raises); a 4xx means users and auth disagree
        # (credential, contract), which our client cannot fix either.
        log.error(
            "unexpected answer from auth",
            extra={"status": response.status_code, "url": response.url},
        )
        raise DependencyUnavailable("The auth service could not answer.")
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        log.error("unreadable answer from auth", extra={"error": str(exc)})
        raise DependencyUnavailable("The auth service could not answer.") from exc
