"""Values PostgreSQL cannot bind or store — integers beyond 64 bits, the NUL character — are 422 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Form
from sqlalchemy import text

from dialer.api.deps import Session

BIG = 2**63  # one past the largest 64-bit integer


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def test_integers_beyond_64_bits(admin: httpx.AsyncClient) -> None:
    for url, field in [(f"/api/holidays?page={BIG}", "page"), (f"/api/users?page={BIG}", "page"),
                       (f"/api/audit?page={BIG}", "page"), (f"/api/lists/1/contacts?page={BIG}", "page"),
                       (f"/api/holidays/{BIG}", "item_id"), (f"/api/users/{-BIG - 1}", "item_id"),
                       (f"/api/lists/{BIG}/contacts", "list_id"), (f"/api/attempts/{BIG}", "attempt_id"),
                       # filters the routes read from the query themselves: refused by the database, still 422
                       (f"/api/operators?user_id={BIG}", "user_id"),
                       (f"/api/campaigns?strategy_id={BIG}", "strategy_id")]:
        _refused(await admin.get(url), field)
    _refused(await admin.patch(f"/api/holidays/{BIG}", json={"name": "x"}), "item_id")
    _refused(await admin.delete(f"/api/strategies/{BIG}"), "item_id")
    _refused(await admin.post("/api/lists", json={"name": "L", "fields": [{"field_id": BIG}]}), "fields.0.field_id")
    _refused(await admin.post("/api/users", json={"login": "u", "password": "secret-pass-1", "role_ids": [BIG]}),
             "role_ids.0")
    _refused(await admin.post("/api/campaigns", json={"name": "C", "strategy_id": BIG}), "strategy_id")
    # the largest 64-bit integer is an ordinary (missing) id
    assert (await admin.get(f"/api/holidays/{BIG - 1}")).status_code == 404
    # long digit strings in text stay text
    assert (await admin.get(f"/api/holidays?q={BIG * 10}")).status_code == 200


async def test_nul_characters(admin: httpx.AsyncClient) -> None:
    _refused(await admin.post("/api/holidays", json={"day": "2030-01-01", "name": "a\u0000b"}), "name")
    _refused(await admin.post("/api/lists", json={"name": "L\u0000"}), "name")
    _refused(await admin.post("/api/skills", json={"name": "\u0000"}), "name")
    _refused(await admin.get("/api/holidays", params={"q": "a\u0000b"}), "q")
    _refused(await admin.get("/api/audit", params={"object_type": "\u0000"}), "object_type")
    _refused(await admin.post("/api/users", json={"login": "u", "password": "secret-pass-1",
                                                  "grants": {"a\u0000": True}}), "grants.a\u0000")
    # an escaped backslash followed by "u0000" is ordinary text
    r = await admin.post("/api/holidays", json={"day": "2030-01-02", "name": "a\\u0000b"})
    assert r.status_code == 201 and r.json()["name"] == "a\\u0000b"


async def test_database_data_errors_are_422(app: FastAPI, admin: httpx.AsyncClient) -> None:
    """What gets past the guard and is refused by the database is still the client's mistake."""

    async def echo(session: Session, value: str = Form()) -> Any:
        return await session.scalar(text("SELECT CAST(:v AS text)"), {"v": value})

    async def number(session: Session, value: int = Form()) -> Any:
        return await session.scalar(text("SELECT CAST(:v AS bigint)"), {"v": value})

    app.add_api_route("/test-only/echo", echo, methods=["POST"])
    app.add_api_route("/test-only/number", number, methods=["POST"])
    r = await admin.post("/test-only/echo", data={"value": "a\u0000b"})
    _refused(r, "body")
    r = await admin.post("/test-only/number", data={"value": str(BIG)})
    _refused(r, "body")
    assert "int64" in r.json()["detail"]
