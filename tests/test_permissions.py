"""Every endpoint declares a permission: anonymous requests get 401, users without it get 403.

Pages of the browser UI (``dialer.web``, ``PageAccess``) refuse the same way in their own terms: an anonymous visitor
is redirected to the login page (303), a logged-in user without the permission gets the 403 page.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from dialer.api.deps import Require
from dialer.api.routes import api_routes
from dialer.auth.permissions import P
from dialer.web.access import PageAccess, RequireAny
from tests.conftest import make_user, token_for

PUBLIC_PAGES = ["/lang/{code}", "/login"]


def _requirement(route: APIRoute) -> Require | PageAccess | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Require | PageAccess):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def _withheld(req: Require | PageAccess) -> frozenset[P]:
    """The permissions a user must lack to be refused."""
    if isinstance(req, RequireAny):
        return req.any_of
    return frozenset({req.permission}) if req.permission is not None else frozenset()


def _routes(app: FastAPI) -> list[APIRoute]:
    return [route for _path, route in api_routes(app)]


def _url(route: APIRoute) -> str:
    return re.sub(r"\{[^}]+\}", "1", route.path)


async def _call(client: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return await client.request(method, url, **kwargs)


async def test_every_endpoint_declares_a_permission(app: FastAPI) -> None:
    routes = _routes(app)
    assert len(routes) > 50
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in routes
                  if _requirement(r) is None and not getattr(r.endpoint, "__dialer_public__", False)]
    assert undeclared == []
    public = sorted(r.path for r in routes if getattr(r.endpoint, "__dialer_public__", False))
    # a recording's signed link is its own credential (an HMAC with an expiry, recordings/service.py)
    assert public == ["/api/auth/login", "/api/health", "/api/recordings/{recording_id}/shared", *PUBLIC_PAGES]
    pages = [r for r in routes if isinstance(_requirement(r), PageAccess)]
    assert pages and all(not r.include_in_schema and r.methods == {"GET"} for r in pages)


async def test_anonymous_gets_401_everywhere(app: FastAPI, anon: httpx.AsyncClient) -> None:
    for route in _routes(app):
        if _requirement(route) is None:
            continue
        for method in route.methods:
            r = await _call(anon, method, _url(route))
            if isinstance(_requirement(route), PageAccess):
                assert r.status_code == 303, (method, route.path, r.status_code, r.text)
                assert r.headers["location"].startswith("/login?next=/"), r.headers["location"]
                continue
            assert r.status_code == 401, (method, route.path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")


async def test_missing_permission_gives_403_everywhere(app: FastAPI) -> None:
    """For each permission, a user holding every other permission is refused by the endpoints needing it."""
    clients: dict[frozenset[P], httpx.AsyncClient] = {}
    checked = 0
    try:
        for route in _routes(app):
            req = _requirement(route)
            withheld = _withheld(req) if req is not None else frozenset()
            if not withheld:
                continue
            if withheld not in clients:
                grants = {p.value: True for p in P if p not in withheld}
                name = "+".join(sorted(p.value for p in withheld))
                user_id = await make_user(app, f"without-{name}", grants=grants)
                clients[withheld] = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://test",
                    headers={"Authorization": f"Bearer {await token_for(app, user_id)}"})
            for method in route.methods:
                r = await _call(clients[withheld], method, _url(route))
                assert r.status_code == 403, (method, route.path, withheld, r.status_code, r.text)
                if isinstance(req, PageAccess):
                    assert r.headers["content-type"].startswith("text/html")
                    assert all(p.value in r.text for p in withheld)
                else:
                    assert all(p.value in r.json()["detail"] for p in withheld)
                checked += 1
    finally:
        for client in clients.values():
            await client.aclose()
    assert checked > 50
