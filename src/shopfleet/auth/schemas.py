"""Auth request and response bodies."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import EmailStr, Field, field_validator

from shopfleet.common.schemas import SAFE_TEXT, ApiModel, Name, SafeStr, Timestamp
from shopfleet.contracts.auth import Role

Password = Annotated[str, Field(min_length=8, max_length=128), SAFE_TEXT]


class RegisterRequest(ApiModel):
    email: Annotated[EmailStr, Field(max_length=320), SAFE_TEXT]
    password: Password
    name: Name

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class LoginRequest(ApiModel):
    email: Annotated[str, Field(min_length=1, max_length=320), SAFE_TEXT]
    password: Annotated[str, Field(min_length=1, max_length=128), SAFE_TEXT]


class RefreshRequest(ApiModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512), SAFE_TEXT]


class UserPublic(ApiModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: Timestamp
    updated_at: Timestamp


class TokenPair(ApiModel):
    user: UserPublic
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a token kind, not a secret)
    expires_in: int


class AccountQuery(ApiModel):
    email: SafeStr | None = None
    role: Role | None = None
    active: bool | None = None
    ids: list[uuid.UUID] | None = None
