"""Login, logout, current user, API tokens, users, roles and the permission catalogue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import Resource, crud_router, member_ids, set_members
from dialer.api.deps import Session, client_of, public, require
from dialer.audit.recorder import log
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
from dialer.exceptions import Conflict, NotAuthenticated, NotFound, TooManyAttempts, ValidationFailed
from dialer.models import ApiToken, Permission, Role, User, UserPermissionGrant, role_permissions, user_roles
from dialer.models.enums import AuditAction

COOKIE = "dialer_session"
auth_router = APIRouter(prefix="/api/auth", tags=["auth"])


@auth_router.post("/login", response_model=Me, summary="Log in; sets the session cookie")
@public
async def login(body: LoginRequest, request: Request, response: Response, session: Session) -> Any:
    settings = request.app.state.settings
    client = client_of(request)
    by_login, by_client = await service.recent_failures(
        session, login=body.login.lower(), client=client, window=timedelta(seconds=settings.login_window_seconds))
    if by_login >= settings.login_max_failures or by_client >= settings.login_max_failures * 4:
        raise TooManyAttempts(
            f"too many failed logins; try again in {settings.login_window_seconds // 60} minutes")
    user = await service.check_credentials(session, body.login, body.password)
    if user is None:
        await service.note_failure(session, login=body.login.lower(), client=client)
        # The failure must be remembered although the request fails.
        await session.commit()
        raise NotAuthenticated("wrong login or password")
    await service.clear_failures(session, login=body.login.lower())
    value, csrf = await service.open_session(session, user, hours=settings.session_hours, client=client)
    response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        max_age=settings.session_hours * 3600, path="/")
    return Me(id=user.id, login=user.login, full_name=user.full_name, language=user.language,
              roles=list(await service.role_codes(session, user.id)),
              permissions=sorted(p.value for p in await service.effective_permissions(session, user.id)),
              csrf_token=csrf)


@auth_router.post("/logout", status_code=204, summary="Log out: the session is deleted")
async def logout(request: Request, session: Session, _: Principal = Depends(require(None))) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await service.close_session(session, cookie)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@auth_router.get("/me", response_model=Me, summary="The current user, roles and effective permissions")
async def me(session: Session, principal: Principal = Depends(require(None))) -> Any:
    user = await session.get(User, principal.user_id)
    assert user is not None
    return Me(id=user.id, login=user.login, full_name=user.full_name, language=user.language,
              roles=list(principal.roles), permissions=sorted(p.value for p in principal.permissions),
              csrf_token=principal.csrf_token)


tokens_router = APIRouter(prefix="/api/tokens", tags=["auth"])


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


async def _user_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    data["password_hash"] = service.hash_password(data.pop("password"))
    return data


async def _user_before_update(session: AsyncSession, obj: User, data: dict[str, Any]) -> dict[str, Any]:
    password = data.pop("password", None)
    if password:
        data["password_hash"] = service.hash_password(password)
    return data


async def _user_after_save(session: AsyncSession, obj: User, extra: dict[str, Any]) -> None:
    await _check_roles(session, extra.get("role_ids"))
    await set_members(session, user_roles, "user_id", obj.id, "role_id", extra.get("role_ids"), otype="users")
    grants = extra.get("grants")
    if grants is not None:
        await session.execute(delete(UserPermissionGrant).where(UserPermissionGrant.user_id == obj.id))
        for perm, granted in grants.items():
            session.add(UserPermissionGrant(user_id=obj.id, permission=P(perm).value, granted=granted))


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
    read_extra=_user_read_extra,
)


# ---- roles -------------------------------------------------------------------------------------

async def _role_after_save(session: AsyncSession, obj: Role, extra: dict[str, Any]) -> None:
    perms = extra.get("permissions")
    if perms is None:
        return
    wanted = sorted({P(p).value for p in perms})
    current = sorted((await session.scalars(
        select(role_permissions.c.permission).where(role_permissions.c.role_id == obj.id))).all())
    if wanted == current:
        return
    await session.execute(delete(role_permissions).where(role_permissions.c.role_id == obj.id))
    if wanted:
        await session.execute(insert(role_permissions), [{"role_id": obj.id, "permission": p} for p in wanted])
    await log(session, AuditAction.updated, "roles", obj.id, changes={"permissions": {"old": current, "new": wanted}})


async def _role_read_extra(session: AsyncSession, obj: Role) -> dict[str, Any]:
    return {"permissions": sorted((await session.scalars(
        select(role_permissions.c.permission).where(role_permissions.c.role_id == obj.id))).all())}


async def _role_before_delete(session: AsyncSession, obj: Role) -> None:
    if obj.is_system:
        raise Conflict(f"role '{obj.code}' is one of the system roles and cannot be deleted")


roles = Resource(
    model=Role, path="roles", tag="roles", read_schema=RoleRead, create_schema=RoleCreate,
    update_schema=RoleUpdate, read_perm=P.roles_read, write_perm=P.roles_write,
    search=("code", "name", "description"), sort=("id", "code", "name"), extra_fields=("permissions",),
    after_save=_role_after_save, read_extra=_role_read_extra, before_delete=_role_before_delete,
)

permissions_router = APIRouter(prefix="/api/permissions", tags=["roles"])


@permissions_router.get("", response_model=list[PermissionRead], summary="The permission catalogue")
async def list_permissions(session: Session, _: Principal = Depends(require(P.roles_read))) -> Any:
    return (await session.scalars(select(Permission).order_by(Permission.code))).all()


routers = [auth_router, tokens_router, crud_router(users), crud_router(roles), permissions_router]
