"""Authentication (argon2 passwords, session cookies, API tokens), throttling, effective permissions."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, and_, delete, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.auth.permissions import P
from dialer.models import (
    ApiToken,
    AuditEntry,
    LoginFailure,
    Role,
    User,
    UserPermissionGrant,
    UserSession,
    role_permissions,
    user_roles,
)

_hasher = PasswordHasher()
TOKEN_PREFIX = "dlr_"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1000
#: Who holds both can manage every user and role; the last active such user cannot be taken away.
ACCESS_ADMIN = (P.users_write, P.roles_write)


@dataclasses.dataclass(frozen=True)
class Principal:
    user_id: int
    login: str
    roles: tuple[str, ...]
    permissions: frozenset[P]
    via: str  # "session" | "token"
    csrf_token: str | None = None
    #: SHA-256 of the session cookie when ``via == "session"``.
    session_hash: str | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


async def role_codes(session: AsyncSession, user_id: int) -> tuple[str, ...]:
    rows = await session.scalars(
        select(Role.code).join(user_roles, user_roles.c.role_id == Role.id)
        .where(user_roles.c.user_id == user_id).order_by(Role.code)
    )
    return tuple(rows)


async def effective_permissions(session: AsyncSession, user_id: int) -> frozenset[P]:
    """Permissions of the user's roles, plus per-user grants, minus per-user revocations."""
    from_roles = set(
        await session.scalars(
            select(role_permissions.c.permission)
            .join(user_roles, user_roles.c.role_id == role_permissions.c.role_id)
            .where(user_roles.c.user_id == user_id)
        )
    )
    grants = (await session.execute(
        select(UserPermissionGrant.permission, UserPermissionGrant.granted)
        .where(UserPermissionGrant.user_id == user_id)
    )).all()
    for code, granted in grants:
        if granted:
            from_roles.add(code)
        else:
            from_roles.discard(code)
    known = {p.value for p in P}
    return frozenset(P(c) for c in from_roles if c in known)


async def _principal(session: AsyncSession, user: User, via: str, csrf: str | None,
                     session_hash: str | None = None) -> Principal:
    return Principal(
        user_id=user.id,
        login=user.login,
        roles=await role_codes(session, user.id),
        permissions=await effective_permissions(session, user.id),
        via=via,
        csrf_token=csrf,
        session_hash=session_hash,
    )


def _holds(permission: P) -> Any:
    """SQL condition: the user ``users.id`` effectively holds ``permission`` (roles, grants, revocations)."""
    grant = select(UserPermissionGrant).where(
        UserPermissionGrant.user_id == User.id, UserPermissionGrant.permission == permission.value)
    by_role = select(role_permissions.c.permission).join(
        user_roles, user_roles.c.role_id == role_permissions.c.role_id).where(
        user_roles.c.user_id == User.id, role_permissions.c.permission == permission.value)
    return or_(
        exists(grant.where(UserPermissionGrant.granted.is_(True))),
        and_(exists(by_role), not_(exists(grant.where(UserPermissionGrant.granted.is_(False))))),
    )


async def access_admin_exists(session: AsyncSession) -> bool:
    """Is there an active user who can still manage users and roles (``users.write`` and ``roles.write``)?"""
    stmt = select(User.id).where(User.is_active.is_(True), *(_holds(p) for p in ACCESS_ADMIN)).limit(1)
    return (await session.scalar(stmt)) is not None


async def credentials_valid(session: AsyncSession, *, cookie: str | None, authorization: str | None) -> bool:
    """Whether the request's API token (it wins, as in :func:`resolve_principal`) or session cookie belongs to an
    active user now: one cheap lookup, for the request guard to refuse made-up credentials before reading a body."""
    found: Select[Any]
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        found = select(ApiToken.id).join(User, User.id == ApiToken.user_id).where(
            ApiToken.token_hash == digest(token), ApiToken.revoked.is_(False), User.is_active,
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now()))
    elif cookie:
        found = select(UserSession.token_hash).join(User, User.id == UserSession.user_id).where(
            UserSession.token_hash == digest(cookie), UserSession.expires_at > now(), User.is_active)
    else:
        return False
    return bool(await session.scalar(select(exists(found))))


async def resolve_principal(session: AsyncSession, *, cookie: str | None, authorization: str | None
                            ) -> Principal | None:
    """Who sends the request: an API token in ``Authorization: Bearer`` wins over the session cookie."""
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        row = (await session.execute(
            select(ApiToken, User).join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == digest(token), ApiToken.revoked.is_(False))
        )).first()
        if row is None:
            return None
        api_token, user = row
        if not user.is_active or (api_token.expires_at and api_token.expires_at <= now()):
            return None
        api_token.last_used_at = now()
        return await _principal(session, user, "token", None)
    if cookie:
        srow = (await session.execute(
            select(UserSession, User).join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == digest(cookie), UserSession.expires_at > now())
        )).first()
        if srow is None:
            return None
        user_session, user = srow
        if not user.is_active:
            return None
        return await _principal(session, user, "session", user_session.csrf_token, user_session.token_hash)
    return None


# --- login throttling -----------------------------------------------------------------------------
# Failures are rows of login_failures (login as typed, lower-cased; client address), so every process sees them.
# Three limits, over the last DIALER_LOGIN_WINDOW_SECONDS:
#
# * per login *and* address: ``max_failures`` failures of login L from address X refuse L from X. Counting by
#   login alone let anyone lock any account (five wrong passwords for "admin" from anywhere blocked its owner);
#   now an attacker locks out only himself.
# * per address: ``PER_ADDRESS_FACTOR`` × ``max_failures`` failures from X, whatever the logins, refuse X — one
#   address spraying many logins is stopped.
# * per login, distributed: ``PER_LOGIN_FACTOR`` × ``max_failures`` failures of L from all addresses mean L is
#   under attack from many addresses at once. Then L is refused to addresses it has never logged in from
#   (a "login" entry of the audit log with that address in the last ``KNOWN_ADDRESS_DAYS`` days), while its owner
#   still logs in from where he usually does. A ceiling refusing everyone would hand the lock-out back to the
#   attacker; a slow-down would not lower a parallel attacker's rate (each of his addresses waits in parallel)
#   and would hold a request (and a database connection) per guess. Someone logging in from a new address during
#   such an attack waits for it to end (or logs in from a known address).

#: Failures from one address, of any logins, per ``max_failures``.
PER_ADDRESS_FACTOR = 4
#: Failures of one login, from all addresses, per ``max_failures``, beyond which only known addresses may try it.
PER_LOGIN_FACTOR = 20
#: How far back a successful login makes an address known.
KNOWN_ADDRESS_DAYS = 90


@dataclasses.dataclass(frozen=True)
class Failures:
    """Recent failed logins: of this login from this address, from this address, of this login."""

    pair: int
    address: int
    login: int


async def recent_failures(session: AsyncSession, *, login: str, client: str, window: timedelta) -> Failures:
    since = now() - window
    row = (await session.execute(
        select(func.count().filter(LoginFailure.login == login, LoginFailure.client == client),
               func.count().filter(LoginFailure.client == client),
               func.count().filter(LoginFailure.login == login))
        .where(LoginFailure.at > since, or_(LoginFailure.login == login, LoginFailure.client == client)))).one()
    return Failures(int(row[0]), int(row[1]), int(row[2]))


async def known_address(session: AsyncSession, user: User | None, client: str) -> bool:
    """Has ``user`` logged in from ``client`` in the last :data:`KNOWN_ADDRESS_DAYS` days (the audit log says)?"""
    if user is None:
        return False
    return bool(await session.scalar(select(exists().where(
        AuditEntry.object_type == "users", AuditEntry.object_id == str(user.id), AuditEntry.event == "login",
        AuditEntry.client == client, AuditEntry.at > now() - timedelta(days=KNOWN_ADDRESS_DAYS)))))


async def throttled(session: AsyncSession, *, login: str, client: str, window: timedelta,
                    max_failures: int) -> str | None:
    """Why a login attempt of ``login`` from ``client`` is refused now (see the rules above), or None."""
    failures = await recent_failures(session, login=login.lower(), client=client, window=window)
    if failures.pair >= max_failures:
        return "too many failed logins of this login from your address"
    if failures.address >= max_failures * PER_ADDRESS_FACTOR:
        return "too many failed logins from your address"
    if failures.login >= max_failures * PER_LOGIN_FACTOR and not await known_address(
            session, await find_login(session, login), client):
        return ("this login is under attack from many addresses: it can be used only from an address it "
                "has logged in from before")
    return None


async def note_failure(session: AsyncSession, *, login: str, client: str, window: timedelta) -> None:
    # Failures older than the window are never counted again: forget them so the table stays small.
    await session.execute(delete(LoginFailure).where(LoginFailure.at <= now() - window))
    session.add(LoginFailure(login=login, client=client))


async def clear_failures(session: AsyncSession, *, login: str, client: str) -> None:
    """A successful login forgets its own address's failures only: not an attacker's elsewhere."""
    await session.execute(delete(LoginFailure).where(LoginFailure.login == login, LoginFailure.client == client))


async def find_login(session: AsyncSession, login: str) -> User | None:
    """The user of a login, case-insensitively; an exact match wins if logins differ only in case."""
    return await session.scalar(
        select(User).where(func.lower(User.login) == login.lower())
        .order_by((User.login == login).desc(), User.id).limit(1))


async def claim_login_attempt(session: AsyncSession, login: str, client: str) -> bool:
    """Take the transaction's right to check a password of this login from this address; False if another
    attempt holds it.

    Without it, concurrent guesses would all read the failure count before any of them wrote a
    failure, and a burst of requests would get many more tries than the limit. The right is per login and
    address, like the limit it protects: a flood of guesses from elsewhere cannot keep the owner's own attempt
    from being checked.
    """
    seed = b"dialer.login:" + login.lower().encode() + b"\x00" + client.encode()
    key = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big", signed=True)
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(key))))


async def check_credentials(session: AsyncSession, login: str, password: str) -> User | None:
    user = await find_login(session, login)
    # Argon2 takes a noticeable time on purpose: off the event loop, which serves everyone else (and the engine).
    if user is None:
        # Spend the same time as a real check so logins cannot be enumerated by timing.
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
        return None
    # The hash is verified for inactive users too, so they cannot be told apart by timing either.
    if not await asyncio.to_thread(verify_password, user.password_hash, password) or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    return user


_DUMMY_HASH = _hasher.hash("not a real password")


async def open_session(session: AsyncSession, user: User, *, hours: int, client: str) -> tuple[str, str]:
    """Create a browser session; returns (cookie value, CSRF token). Only hashes are stored."""
    value = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.add(UserSession(token_hash=digest(value), user_id=user.id, csrf_token=csrf,
                            expires_at=now() + timedelta(hours=hours), client=client))
    user.last_login_at = now()
    return value, csrf


async def close_session(session: AsyncSession, cookie: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == digest(cookie)))


async def close_user_sessions(session: AsyncSession, user_id: int, *, keep: str | None = None) -> None:
    """End every browser session of a user (password changed, deactivated), except ``keep`` (a cookie hash)."""
    stmt = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(UserSession.token_hash != keep)
    await session.execute(stmt)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
