from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import make_user


async def test_login_session_csrf_and_logout(app: FastAPI, anon: httpx.AsyncClient) -> None:
    await make_user(app, "sup", roles=("supervisor",))
    r = await anon.post("/api/auth/login", json={"login": "sup", "password": "secret-pass-1"})
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["roles"] == ["supervisor"]
    assert "campaigns.control" in me["permissions"]
    csrf = me["csrf_token"]
    assert anon.cookies.get("dialer_session")

    assert (await anon.get("/api/auth/me")).json()["login"] == "sup"
    # Unsafe method without the CSRF header is refused even with a valid session.
    r = await anon.post("/api/skills", json={"name": "x"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = await anon.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    anon.cookies.clear()
    assert (await anon.get("/api/auth/me")).status_code == 401


async def test_wrong_password_is_throttled(app: FastAPI, anon: httpx.AsyncClient) -> None:
    await make_user(app, "op", roles=("operator",))
    for _ in range(5):
        r = await anon.post("/api/auth/login", json={"login": "op", "password": "wrong-password"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await anon.post("/api/auth/login", json={"login": "op", "password": "secret-pass-1"})
    assert r.status_code == 429
    # The client is told when trying again can succeed: when the failures have left the window.
    assert r.headers["retry-after"] == str(app.state.settings.login_window_seconds)


async def test_password_is_hashed_with_argon2(app: FastAPI, admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/users", json={"login": "newbie", "password": "long-enough-1", "role_ids": []})
    assert r.status_code == 201, r.text
    assert "password" not in r.text
    from sqlalchemy import select

    from dialer.models import User

    async with app.state.sessionmaker() as session:
        h = await session.scalar(select(User.password_hash).where(User.login == "newbie"))
    assert h is not None and h.startswith("$argon2")
    r = await admin.post("/api/users", json={"login": "short", "password": "123"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "password"
