from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import AuditEntry


async def test_operator_with_skills_and_pools_is_audited(app: FastAPI, admin: httpx.AsyncClient) -> None:
    sales = (await admin.post("/api/skills", json={"name": "Продажи"})).json()
    pool = (await admin.post("/api/pools", json={"name": "Смена А"})).json()
    r = await admin.post("/api/operators", json={
        "name": "Иванова Анна", "extension": "101",
        "skills": [{"skill_id": sales["id"], "level": 80}], "pool_ids": [pool["id"]]})
    assert r.status_code == 201, r.text
    op = r.json()
    assert op["skills"] == [{"skill_id": sales["id"], "level": 80}]
    assert op["pool_ids"] == [pool["id"]]
    assert (await admin.get(f"/api/pools/{pool['id']}")).json()["operator_ids"] == [op["id"]]

    r = await admin.patch(f"/api/operators/{op['id']}", json={"skills": [{"skill_id": sales["id"], "level": 101}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "skills.0.level"
    r = await admin.patch(f"/api/operators/{op['id']}", json={"name": "Иванова А.", "skills": []})
    assert r.status_code == 200 and r.json()["skills"] == []

    async with app.state.sessionmaker() as session:
        entries = (await session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "operators").order_by(AuditEntry.id))).all()
    actions = [(e.action, e.user_login) for e in entries]
    assert ("created", "admin") in actions
    renamed = [e for e in entries if "name" in e.changes and e.action == "updated"]
    assert renamed and renamed[0].changes["name"] == {"old": "Иванова Анна", "new": "Иванова А."}
    assert renamed[0].user_roles == "admin"


async def test_list_paginates_sorts_and_searches(admin: httpx.AsyncClient) -> None:
    for name in ["Гамма", "Альфа", "Бета", "Дельта"]:
        assert (await admin.post("/api/skills", json={"name": name})).status_code == 201
    r = (await admin.get("/api/skills", params={"sort": "-name", "per_page": 2, "page": 1})).json()
    assert [s["name"] for s in r["items"]] == ["Дельта", "Гамма"] and r["total"] == 4
    r = (await admin.get("/api/skills", params={"q": "ЛЬ"})).json()
    assert sorted(s["name"] for s in r["items"]) == ["Альфа", "Дельта"]
    r = await admin.get("/api/skills", params={"sort": "password"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sort"
    r = await admin.post("/api/skills", json={"name": "Альфа"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"


async def test_an_extension_rings_one_operator_only(admin: httpx.AsyncClient) -> None:
    a = (await admin.post("/api/operators", json={"name": "Анна", "extension": "101"})).json()
    # Another operator on the same extension would get Анна's calls (or she his): refused, naming her.
    r = await admin.post("/api/operators", json={"name": "Борис", "extension": "101"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "extension"
    assert "Анна" in r.json()["detail"]
    b = (await admin.post("/api/operators", json={"name": "Борис", "extension": "102"})).json()
    r = await admin.patch(f"/api/operators/{b['id']}", json={"extension": "101"})
    assert r.status_code == 409
    assert (await admin.get(f"/api/operators/{b['id']}")).json()["extension"] == "102"
    # Saving an operator again with his own extension is fine.
    r = await admin.patch(f"/api/operators/{a['id']}", json={"extension": "101", "name": "Анна"})
    assert r.status_code == 200

    # A SIP device of Борис may not carry Анна's extension as its login ...
    device = {"login": "101", "password": "s3cret-pass", "operator_id": b["id"]}
    r = await admin.post("/api/sip-devices", json=device)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "login", r.text
    # ... while a device of nobody may be the phone her extension names, and her own device may too.
    assert (await admin.post("/api/sip-devices", json={**device, "operator_id": None})).status_code == 201
    r = await admin.post("/api/sip-devices", json={"login": "201", "password": "s3cret-pass", "operator_id": b["id"]})
    assert r.status_code == 201
    # Борис's device login cannot become Анна's extension either way round.
    r = await admin.post("/api/operators", json={"name": "Вера", "extension": "201"})
    assert r.status_code == 409 and "Борис" in r.json()["detail"]
