"""Saved views: a user's named filters per report, one default per report, nobody else's to see or change."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import client_for


async def test_saved_views_are_the_users_own(app: FastAPI, admin: httpx.AsyncClient) -> None:
    body = {"report": "outcomes", "name": "Март", "is_default": True,
            "query": {"period": "custom", "date_from": "2026-03-01", "date_to": "2026-03-31", "campaign_ids": "1"}}
    r = await admin.post("/api/reports/views", json=body)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["is_default"] and first["query"]["campaign_ids"] == "1"
    # A second default replaces the first; the same name again is refused naming the field.
    second = (await admin.post("/api/reports/views", json=body | {"name": "Вчера", "query": {"period": "yesterday"}}))
    assert second.status_code == 201
    views = (await admin.get("/api/reports/views", params={"report": "outcomes"})).json()
    assert [(v["name"], v["is_default"]) for v in views] == [("Вчера", True), ("Март", False)]
    r = await admin.post("/api/reports/views", json=body)
    assert r.status_code == 409, r.text
    for bad, field in (({"report": "nothing"}, "report"), ({"query": {"drop": "table"}}, "query.drop"),
                       ({"name": ""}, "name")):
        r = await admin.post("/api/reports/views", json=body | {"name": "x"} | bad)
        assert r.status_code == 422 and field in r.json()["errors"][0]["field"], (bad, r.text)
    r = await admin.put(f"/api/reports/views/{first['id']}", json=body | {"name": "Март 2026", "is_default": False})
    assert r.status_code == 200 and r.json()["name"] == "Март 2026"
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        assert (await sup.get("/api/reports/views")).json() == []
        assert (await sup.delete(f"/api/reports/views/{first['id']}")).status_code == 404
        assert (await sup.post("/api/reports/views", json=body)).status_code == 201  # his own "Март"
    assert (await admin.delete(f"/api/reports/views/{first['id']}")).status_code == 204
    assert [v["name"] for v in (await admin.get("/api/reports/views")).json()] == ["Вчера"]
    audit = (await admin.get("/api/audit", params={"object_type": "report_views"})).json()
    assert audit["total"] >= 4
