"""Who may see a page: :func:`page` is the pages' counterpart of ``Require``.

A page answers an anonymous visitor with a redirect to ``/login?next=<the page>`` (303) and a logged-in user without
the permission with the 403 page (HTML); the API answers both with problem details. Both exceptions are turned into
responses by the handlers :func:`dialer.web.install` registers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request

from dialer.api.deps import Require, Session
from dialer.auth.permissions import P
from dialer.auth.service import Principal, resolve_principal
from dialer.exceptions import PermissionDenied


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    def __init__(self, principal: Principal, permission: P) -> None:
        super().__init__(permission.value)
        self.principal = principal
        self.permission = permission


class PageAccess:
    """Dependency of a page: authenticates by session cookie (or API token) and checks one permission.

    ``PageAccess(None)`` only needs a logged-in user. Like ``Require`` it keeps the permission on the instance so
    ``tests/test_permissions.py`` can walk the routes and prove every page refuses.
    """

    def __init__(self, permission: P | None) -> None:
        self.permission = permission

    async def __call__(self, request: Request, session: Session) -> Principal:
        principal = await resolve_principal(session, cookie=request.cookies.get("dialer_session"),
                                            authorization=request.headers.get("authorization"))
        if principal is None:
            raise LoginRequired(login_url(request))
        if self.permission is not None and self.permission not in principal.permissions:
            raise PageForbidden(principal, self.permission)
        request.state.principal = principal
        return principal


def page(permission: P | None) -> Any:
    """``principal: Principal = page(P.users_read)`` in a page handler's signature."""
    return Depends(PageAccess(permission))


class RequireAny(Require):
    """``Require`` for an endpoint open to holders of any one of several permissions (the live events)."""

    def __init__(self, *permissions: P) -> None:
        super().__init__(None)
        self.any_of = frozenset(permissions)

    async def __call__(self, request: Request, session: Session) -> Principal:
        principal = await super().__call__(request, session)
        if not self.any_of & principal.permissions:
            names = "' or '".join(sorted(p.value for p in self.any_of))
            raise PermissionDenied(f"permission '{names}' is required")
        return principal


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after logging in; anything else (other hosts, ``//host``) becomes ``default``.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so ``/\t/evil.example``
    would lead to ``//evil.example``: a path with any of them, or any control character or space, is refused.
    """
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(ch) < 33 or ord(ch) == 127 for ch in value)):
        return default
    return value


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="/")
