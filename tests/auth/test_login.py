from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import make_user, token_for


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


async def test_an_administrator_revokes_another_users_api_token(app: FastAPI, admin: httpx.AsyncClient) -> None:
    crm_user = await make_user(app, "crm-robot", roles=("supervisor",))
    token = await token_for(app, crm_user)
    robot = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                              headers={"Authorization": f"Bearer {token}"})
    assert (await robot.get("/api/auth/me")).status_code == 200
    tokens = (await admin.get(f"/api/users/{crm_user}/tokens")).json()
    assert [(t["name"], t["revoked"]) for t in tokens] == [("test", False)]
    assert "token_hash" not in tokens[0]
    r = await admin.delete(f"/api/users/{crm_user}/tokens/{tokens[0]['id']}")
    assert r.status_code == 204
    assert (await robot.get("/api/auth/me")).status_code == 401
    assert (await admin.get(f"/api/users/{crm_user}/tokens")).json()[0]["revoked"] is True
    # another user's token id under this user is not found
    assert (await admin.delete(f"/api/users/{crm_user}/tokens/999999")).status_code == 404
    await robot.aclose()
