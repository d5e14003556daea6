"""API schemas of users, roles, tokens and login."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field, field_validator

from dialer.api.crud import ReadSchema, Schema
from dialer.auth.permissions import P
from dialer.auth.service import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


class LoginRequest(Schema):
    login: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class Me(ReadSchema):
    id: int
    login: str
    full_name: str
    language: str
    roles: list[str]
    permissions: list[str]
    csrf_token: str | None = None


def _password(value: str | None) -> str | None:
    if value is None:
        return value
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"must be at most {MAX_PASSWORD_LENGTH} characters")
    if len(set(value)) < 3:
        raise ValueError("must not be one character repeated; use at least 3 different characters")
    return value


class UserCreate(Schema):
    login: str = Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")
    password: str
    full_name: str = ""
    email: str | None = None
    is_active: bool = True
    language: str = Field("ru", pattern="^(ru|en)$")
    role_ids: list[int] = []
    grants: dict[P, bool] = Field(default_factory=dict, description="permission → granted (true) or revoked")

    _check_password = field_validator("password")(_password)


class UserUpdate(Schema):
    login: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\s]+$")
    password: str | None = None
    full_name: str | None = None
    email: str | None = None
    is_active: bool | None = None
    language: str | None = Field(None, pattern="^(ru|en)$")
    role_ids: list[int] | None = None
    grants: dict[P, bool] | None = None

    _check_password = field_validator("password")(_password)


class UserRead(ReadSchema):
    id: int
    login: str
    full_name: str
    email: str | None
    is_active: bool
    language: str
    last_login_at: datetime | None
    created_at: datetime
    role_ids: list[int]
    grants: dict[str, bool]


class RoleCreate(Schema):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    permissions: list[P] = []


class RoleUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    permissions: list[P] | None = None


class RoleRead(ReadSchema):
    id: int
    code: str
    name: str
    description: str
    is_system: bool
    permissions: list[str]


class PermissionRead(ReadSchema):
    code: str
    description: str


class TokenCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    expires_at: datetime | None = Field(None, description="Without an offset: UTC")

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        if value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class TokenRead(ReadSchema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class TokenCreated(TokenRead):
    token: str = Field(description="Shown once; only its hash is stored")
