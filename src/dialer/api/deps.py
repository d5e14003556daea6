"""Request dependencies: one database session per request and the permission check."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.audit.recorder import Actor
from dialer.auth.permissions import P
from dialer.auth.service import Principal, resolve_principal
from dialer.exceptions import NotAuthenticated, PermissionDenied

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "X-CSRF-Token"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The unit of work of a request: committed after the handler, rolled back if it raised."""
    maker = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


#: ``scope="function"``: the commit happens before the response is sent (FastAPI's default "request" scope runs
#: the code after ``yield`` once the response is out — a client could act on an answer whose change is not yet
#: committed, and an error at commit would be lost behind a 200).
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def csrf_matches(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison; a session without a CSRF token never matches."""
    if not sent or not expected:
        return False
    return secrets.compare_digest(sent.encode(), expected.encode())


def principal_of(session: AsyncSession) -> Principal | None:
    """The principal the request dependency authenticated on this session (None for system work)."""
    principal = session.info.get("principal")
    return principal if isinstance(principal, Principal) else None


class Require:
    """Dependency that authenticates the request and checks one permission.

    ``Require(None)`` only authenticates (for "who am I" and logging out). The permission is kept on
    the instance so a test can walk the route table and prove every endpoint declares one.
    Browser sessions must echo their CSRF token in ``X-CSRF-Token`` on unsafe methods; API tokens
    are not sent automatically by browsers and need no CSRF token.
    """

    def __init__(self, permission: P | None) -> None:
        self.permission = permission

    async def __call__(self, request: Request, session: Session) -> Principal:
        principal = await resolve_principal(
            session,
            cookie=request.cookies.get("dialer_session"),
            authorization=request.headers.get("authorization"),
        )
        if principal is None:
            raise NotAuthenticated("log in or send an API token (Authorization: Bearer ...)")
        if principal.via == "session" and request.method not in SAFE_METHODS and not csrf_matches(
                request.headers.get(CSRF_HEADER), principal.csrf_token):
            raise PermissionDenied(f"missing or wrong CSRF token: send the {CSRF_HEADER} header")
        if self.permission is not None and self.permission not in principal.permissions:
            raise PermissionDenied(f"permission '{self.permission.value}' is required")
        session.info["actor"] = Actor(principal.user_id, principal.login, principal.roles, client_of(request))
        #: Hooks that hand out access (roles, grants) check what the acting principal holds itself.
        session.info["principal"] = principal
        request.state.principal = principal
        return principal


def require(permission: P | None) -> Require:
    return Require(permission)


F = TypeVar("F", bound=Callable[..., Any])


def public(func: F) -> F:
    """Mark an endpoint as intentionally public (login, health)."""
    func.__dialer_public__ = True  # type: ignore[attr-defined]
    return func
