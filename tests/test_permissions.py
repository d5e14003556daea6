"""Every endpoint declares a permission: anonymous requests get 401, users without it get 403."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from dialer.api.deps import Require
from dialer.app import api_routes
from dialer.auth.permissions import P
from tests.conftest import make_user, token_for


def _requirement(route: APIRoute) -> Require | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Require):
            return dep.call
        stack.extend(dep.dependencies)
    return None


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
    assert public == ["/api/auth/login", "/api/health"]


async def test_anonymous_gets_401_everywhere(app: FastAPI, anon: httpx.AsyncClient) -> None:
    for route in _routes(app):
        if _requirement(route) is None:
            continue
        for method in route.methods:
            r = await _call(anon, method, _url(route))
            assert r.status_code == 401, (method, route.path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")


async def test_missing_permission_gives_403_everywhere(app: FastAPI) -> None:
    """For each permission, a user holding every other permission is refused by the endpoints needing it."""
    clients: dict[P, httpx.AsyncClient] = {}
    checked = 0
    try:
        for route in _routes(app):
            req = _requirement(route)
            if req is None or req.permission is None:
                continue
            perm = req.permission
            if perm not in clients:
                grants = {p.value: True for p in P if p != perm}
                user_id = await make_user(app, f"without-{perm.value}", grants=grants)
                clients[perm] = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://test",
                    headers={"Authorization": f"Bearer {await token_for(app, user_id)}"})
            for method in route.methods:
                r = await _call(clients[perm], method, _url(route))
                assert r.status_code == 403, (method, route.path, perm, r.status_code, r.text)
                assert perm.value in r.json()["detail"]
                checked += 1
    finally:
        for client in clients.values():
            await client.aclose()
    assert checked > 50
