"""Login, logout, current user, API tokens, users, roles and the permission catalogue."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import Resource, crud_router, load, member_ids, set_members
from dialer.api.deps import Session, client_of, principal_of, public, require
from dialer.audit.recorder import Actor, log
from dialer.auth import service
from dialer.auth.permissions import P
from dialer.auth.schemas import (
    LoginRequest,
    Me,
    PermissionRead,
    RoleCreate,
    RoleRead,
    RoleUpdate,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from dialer.auth.service import Principal
from dialer.exceptions import (
    Conflict,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    ValidationFailed,
)
from dialer.models import ApiToken, Permission, Role, User, UserPermissionGrant, role_permissions, user_roles
from dialer.models.enums import AuditAction

COOKIE = "dialer_session"
#: Login and token bodies are a few hundred bytes; nothing bigger is read.
SMALL_BODY = 64 * 1024
auth_router = APIRouter(prefix="/api/auth", tags=["auth"], max_body_size=SMALL_BODY)


@auth_router.post("/login", response_model=Me, summary="Log in; sets the session cookie")
@public
async def login(body: LoginRequest, request: Request, response: Response, session: Session) -> Any:
    settings = request.app.state.settings
    client = client_of(request)
    window = timedelta(seconds=settings.login_window_seconds)
    if not await service.claim_login_attempt(session, body.login, client):
        raise TooManyAttempts("another attempt to log in as this user from your address is in progress; "
                              "try again in a moment")
    # per login and address, per address, and a distributed attack on the login: see auth/service.py
    if reason := await service.throttled(session, login=body.login, client=client, window=window,
                                         max_failures=settings.login_max_failures):
        raise TooManyAttempts(f"{reason}; try again in {max(1, settings.login_window_seconds // 60)} minutes",
                              retry_after_s=settings.login_window_seconds)
    user = await service.check_credentials(session, body.login, body.password)
    if user is None:
        await service.note_failure(session, login=body.login.lower(), client=client, window=window)
        # The attempted login is recorded only when it is a user's: an unknown one is often a password
        # typed into the wrong box.
        known = await service.find_login(session, body.login)
        session.info["actor"] = Actor(None, known.login if known else "", (), client)
        await log(session, AuditAction.custom, "users", known.id if known else None,
                  event_label="login failed" if known else "login failed: unknown login")
        # The failure must be remembered although the request fails.
        await session.commit()
        raise NotAuthenticated("wrong login or password")
    await service.clear_failures(session, login=body.login.lower(), client=client)
    if previous := request.cookies.get(COOKIE):
        await service.close_session(session, previous)  # a new login never keeps the old session alive
    roles = await service.role_codes(session, user.id)
    session.info["actor"] = Actor(user.id, user.login, roles, client)
    value, csrf = await service.open_session(session, user, hours=settings.session_hours, client=client)
    await log(session, AuditAction.custom, "users", user.id, event_label="login")
    response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=_secure(request),
                        max_age=settings.session_hours * 3600, path="/")
    return Me(id=user.id, login=user.login, full_name=user.full_name, language=user.language,
              roles=list(roles),
              permissions=sorted(p.value for p in await service.effective_permissions(session, user.id)),
              csrf_token=csrf)


def _secure(request: Request) -> bool:
    """Secure cookies when configured, and always when the request itself came over HTTPS."""
    return bool(request.app.state.settings.secure_cookies) or request.url.scheme == "https"


@auth_router.post("/logout", status_code=204, summary="Log out: the session is deleted")
async def logout(request: Request, session: Session, principal: Principal = Depends(require(None))) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await service.close_session(session, cookie)
        await log(session, AuditAction.custom, "users", principal.user_id, event_label="logout")
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


@auth_router.get("/me", response_model=Me, summary="The current user, roles and effective permissions")
async def me(session: Session, principal: Principal = Depends(require(None))) -> Any:
    user = await session.get(User, principal.user_id)
    assert user is not None
    return Me(id=user.id, login=user.login, full_name=user.full_name, language=user.language,
              roles=list(principal.roles), permissions=sorted(p.value for p in principal.permissions),
              csrf_token=principal.csrf_token)


tokens_router = APIRouter(prefix="/api/tokens", tags=["auth"], max_body_size=SMALL_BODY)


@tokens_router.get("", response_model=list[TokenRead], summary="My API tokens")
async def list_tokens(session: Session, principal: Principal = Depends(require(P.tokens_manage))) -> Any:
    return (await session.scalars(
        select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id))).all()


@tokens_router.post("", response_model=TokenCreated, status_code=201,
                    summary="Create an API token for integrations (shown once)")
async def create_token(body: TokenCreate, session: Session,
                       principal: Principal = Depends(require(P.tokens_manage))) -> Any:
    token = service.new_api_token()
    row = ApiToken(user_id=principal.user_id, name=body.name, token_hash=service.digest(token),
                   prefix=token[:10], expires_at=body.expires_at)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return TokenCreated.model_validate({**TokenRead.model_validate(row).model_dump(), "token": token})


@tokens_router.delete("/{token_id}", status_code=204, summary="Revoke one of my API tokens")
async def revoke_token(token_id: int, session: Session,
                       principal: Principal = Depends(require(P.tokens_manage))) -> Response:
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != principal.user_id:
        raise NotFound(f"api token {token_id} does not exist")
    row.revoked = True
    return Response(status_code=204)


# ---- users -------------------------------------------------------------------------------------

async def _check_roles(session: AsyncSession, role_ids: list[int] | None) -> None:
    if not role_ids:
        return
    found = set((await session.scalars(select(Role.id).where(Role.id.in_(role_ids)))).all())
    if missing := sorted(set(role_ids) - found):
        raise ValidationFailed.field("role_ids", f"roles {missing} do not exist")


async def _check_login_free(session: AsyncSession, login: str, user_id: int | None) -> None:
    """Logins are matched case-insensitively at log-in, so two may not differ only in case."""
    other = await service.find_login(session, login)
    if other is not None and other.id != user_id:
        raise Conflict(f"login: '{other.login}' already exists",
                       errors=[{"field": "login", "reason": f"'{other.login}' already exists (case-insensitively)"}])


def _check_password_not_login(password: str, login: str) -> None:
    if password.strip().lower() == login.strip().lower():
        raise ValidationFailed.field("password", "must not be the same as the login")


def _escalation_guard(session: AsyncSession) -> frozenset[P] | None:
    """What the acting principal may hand out: None means anything.

    Holders of ``roles.write`` define what every role can do (their own included), so they may hand
    out any permission. Everyone else may give a user, through roles or grants, only permissions they
    hold themselves, and may change or delete only users who hold nothing more than they do: a holder
    of ``users.write`` cannot make themselves (or an accomplice) an administrator, nor take over an
    administrator's account by resetting its password. Changes without a principal (CLI, start-up) are
    not limited.
    """
    principal = principal_of(session)
    if principal is None or P.roles_write in principal.permissions:
        return None
    return principal.permissions


async def _check_within(session: AsyncSession, user_id: int, allowed: frozenset[P] | None, what: str) -> None:
    if allowed is None:
        return
    beyond = await service.effective_permissions(session, user_id) - allowed
    if beyond:
        names = ", ".join(sorted(p.value for p in beyond))
        raise PermissionDenied(f"{what}: the user would hold permissions you do not have: {names}")


async def _access_admin_before(session: AsyncSession) -> None:
    session.info["access_admin_before"] = await service.access_admin_exists(session)


async def _access_admin_after(session: AsyncSession) -> None:
    """Refuse a change that takes away the last active user able to manage users and roles."""
    if session.info.pop("access_admin_before", False) and not await service.access_admin_exists(session):
        raise Conflict("the change would leave no active user who can manage users and roles "
                       f"({', '.join(p.value for p in service.ACCESS_ADMIN)}); give another user these first")


async def _user_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    await _check_login_free(session, data["login"], None)
    _check_password_not_login(data["password"], data["login"])
    data["password_hash"] = await asyncio.to_thread(service.hash_password, data.pop("password"))
    return data


async def _user_before_update(session: AsyncSession, obj: User, data: dict[str, Any]) -> dict[str, Any]:
    for key in ("login", "is_active", "full_name", "language"):
        if key in data and data[key] is None:
            raise ValidationFailed.field(key, "must not be null")
    await _check_within(session, obj.id, _escalation_guard(session), f"user '{obj.login}'")
    await _access_admin_before(session)
    if data.get("login") is not None and data["login"] != obj.login:
        await _check_login_free(session, data["login"], obj.id)
    password = data.pop("password", None)
    if password:
        _check_password_not_login(password, data.get("login") or obj.login)
        data["password_hash"] = await asyncio.to_thread(service.hash_password, password)
        # Whoever knew the old password is logged out; the actor keeps the session they are using.
        principal = principal_of(session)
        keep = principal.session_hash if principal is not None and principal.user_id == obj.id else None
        await service.close_user_sessions(session, obj.id, keep=keep)
    if data.get("is_active") is False and obj.is_active:
        await service.close_user_sessions(session, obj.id)
    return data


async def _user_grants(session: AsyncSession, user_id: int) -> dict[str, bool]:
    rows = (await session.execute(
        select(UserPermissionGrant.permission, UserPermissionGrant.granted)
        .where(UserPermissionGrant.user_id == user_id).order_by(UserPermissionGrant.permission))).all()
    return {p: g for p, g in rows}


async def _user_after_save(session: AsyncSession, obj: User, extra: dict[str, Any]) -> None:
    await _check_roles(session, extra.get("role_ids"))
    await set_members(session, user_roles, "user_id", obj.id, "role_id", extra.get("role_ids"), otype="users")
    grants = extra.get("grants")
    if grants is not None:
        old = await _user_grants(session, obj.id)
        new = {P(perm).value: bool(granted) for perm, granted in sorted(grants.items())}
        if new != old:
            # Core statements, audited once below as the user's "grants" field (old and new value).
            await session.execute(delete(UserPermissionGrant).where(UserPermissionGrant.user_id == obj.id))
            if new:
                await session.execute(insert(UserPermissionGrant), [
                    {"user_id": obj.id, "permission": perm, "granted": granted} for perm, granted in new.items()])
            await log(session, AuditAction.updated, "users", obj.id, changes={"grants": {"old": old, "new": new}})
    await _check_within(session, obj.id, _escalation_guard(session), f"user '{obj.login}'")
    await _access_admin_after(session)


async def _user_before_delete(session: AsyncSession, obj: User) -> None:
    await _check_within(session, obj.id, _escalation_guard(session), f"user '{obj.login}'")
    await _access_admin_before(session)


async def _user_after_delete(session: AsyncSession, obj: User) -> None:
    await _access_admin_after(session)


async def _user_read_extra(session: AsyncSession, obj: User) -> dict[str, Any]:
    grants = (await session.execute(
        select(UserPermissionGrant.permission, UserPermissionGrant.granted)
        .where(UserPermissionGrant.user_id == obj.id))).all()
    return {"role_ids": await member_ids(session, user_roles, "user_id", obj.id, "role_id"),
            "grants": {p: g for p, g in grants}}


users = Resource(
    model=User, path="users", tag="users", read_schema=UserRead, create_schema=UserCreate,
    update_schema=UserUpdate, read_perm=P.users_read, write_perm=P.users_write,
    search=("login", "full_name", "email"), sort=("id", "login", "full_name", "created_at", "last_login_at"),
    filters=("is_active",), extra_fields=("role_ids", "grants"),
    before_create=_user_before_create, before_update=_user_before_update, after_save=_user_after_save,
    read_extra=_user_read_extra, before_delete=_user_before_delete, after_delete=_user_after_delete,
)


# ---- roles -------------------------------------------------------------------------------------

async def _role_before_update(session: AsyncSession, obj: Role, data: dict[str, Any]) -> dict[str, Any]:
    await _access_admin_before(session)
    return data


async def _role_after_save(session: AsyncSession, obj: Role, extra: dict[str, Any]) -> None:
    perms = extra.get("permissions")
    if perms is None:
        session.info.pop("access_admin_before", None)
        return
    wanted = sorted({P(p).value for p in perms})
    current = sorted((await session.scalars(
        select(role_permissions.c.permission).where(role_permissions.c.role_id == obj.id))).all())
    if wanted == current:
        session.info.pop("access_admin_before", None)
        return
    await session.execute(delete(role_permissions).where(role_permissions.c.role_id == obj.id))
    if wanted:
        await session.execute(insert(role_permissions), [{"role_id": obj.id, "permission": p} for p in wanted])
    await log(session, AuditAction.updated, "roles", obj.id, changes={"permissions": {"old": current, "new": wanted}})
    await _access_admin_after(session)


async def _role_read_extra(session: AsyncSession, obj: Role) -> dict[str, Any]:
    return {"permissions": sorted((await session.scalars(
        select(role_permissions.c.permission).where(role_permissions.c.role_id == obj.id))).all())}


async def _role_before_delete(session: AsyncSession, obj: Role) -> None:
    if obj.is_system:
        raise Conflict(f"role '{obj.code}' is one of the system roles and cannot be deleted")
    await _access_admin_before(session)


async def _role_after_delete(session: AsyncSession, obj: Role) -> None:
    await _access_admin_after(session)


roles = Resource(
    model=Role, path="roles", tag="roles", read_schema=RoleRead, create_schema=RoleCreate,
    update_schema=RoleUpdate, read_perm=P.roles_read, write_perm=P.roles_write,
    search=("code", "name", "description"), sort=("id", "code", "name"), extra_fields=("permissions",),
    before_update=_role_before_update, after_save=_role_after_save, read_extra=_role_read_extra,
    before_delete=_role_before_delete, after_delete=_role_after_delete,
)

permissions_router = APIRouter(prefix="/api/permissions", tags=["roles"])


@permissions_router.get("", response_model=list[PermissionRead], summary="The permission catalogue")
async def list_permissions(session: Session, _: Principal = Depends(require(P.roles_read))) -> Any:
    return (await session.scalars(select(Permission).order_by(Permission.code))).all()


# ---- other users' API tokens (an integration to switch off when its owner leaves) -------------------

user_tokens_router = APIRouter(prefix="/api/users/{user_id}/tokens", tags=["users"])


@user_tokens_router.get("", response_model=list[TokenRead], summary="A user's API tokens")
async def list_user_tokens(user_id: int, session: Session, _: Principal = Depends(require(P.users_read))) -> Any:
    await load(session, User, user_id, "user")
    return (await session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id))).all()


@user_tokens_router.delete("/{token_id}", status_code=204, summary="Revoke a user's API token")
async def revoke_user_token(user_id: int, token_id: int, session: Session,
                            _: Principal = Depends(require(P.users_write))) -> Response:
    await load(session, User, user_id, "user")
    await _check_within(session, user_id, _escalation_guard(session), "revoking a token")
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"api token {token_id} of user {user_id} does not exist")
    row.revoked = True
    return Response(status_code=204)


routers = [auth_router, tokens_router, crud_router(users), user_tokens_router, crud_router(roles),
           permissions_router]
