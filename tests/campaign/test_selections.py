"""Selections of a campaign through the API: validation against field types, previews that count contacts."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import AuditEntry
from dialer.models.enums import ContactStatus, FieldType
from tests.campaign.conftest import Setup, add_contact, add_field, add_list, field_errors


async def test_selection_crud_and_preview(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    city = await add_field(app, "Город", FieldType.string)
    amount = await add_field(app, "Сумма", FieldType.decimal)
    segment = await add_field(app, "Сегмент", FieldType.enum, options=["gold", "silver"])
    other_list = await add_list(app, "Чужой")
    rows: list[tuple[int, dict[int, Any], dict[str, Any]]] = [
        (setup.list_id, {city: "Москва", amount: 5000, segment: "gold"}, {}),
        (setup.list_id, {city: "Москва", amount: 100, segment: "silver"}, {"attempts_total": 3}),
        (setup.list_id, {city: "Казань", amount: 7000}, {}),
        (setup.list_id, {city: "Москва", amount: 9000}, {"status": ContactStatus.done}),
        (other_list, {city: "Москва", amount: 9000}, {}),
    ]
    for list_id, data, system in rows:
        await add_contact(app, list_id, {str(k): v for k, v in data.items()}, **system)
    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    base = f"/api/campaigns/{cid}/selections"

    r = await admin.post(base, json={"name": "Москва, крупные", "priority": 90,
                                     "conditions": [{"field": str(city), "op": "eq", "value": "Москва"},
                                                    {"field": amount, "op": "ge", "value": "1000"}],
                                     "sort": [{"field": amount, "dir": "desc"}, {"field": "created_at"}]})
    assert r.status_code == 201, r.text
    sel = r.json()
    assert sel["campaign_id"] == cid
    assert sel["conditions"] == [{"field": city, "op": "eq", "value": "Москва"},
                                 {"field": amount, "op": "ge", "value": "1000"}]
    assert sel["sort"] == [{"field": amount, "dir": "desc"}, {"field": "created_at", "dir": "asc"}]
    assert (await admin.get(f"{base}/{sel['id']}/preview")).json() == {"matching": 1, "total": 3}

    r = await admin.post(f"{base}/preview", json={"conditions": [{"field": city, "op": "eq", "value": "Москва"}]})
    assert r.json() == {"matching": 2, "total": 3}
    r = await admin.post(f"{base}/preview", json={"conditions": [{"field": city, "op": "eq", "value": "Москва"}],
                                                  "max_attempts_total": 3})
    assert r.json() == {"matching": 1, "total": 3}
    r = await admin.post(f"{base}/preview", json={"conditions": []})
    assert r.json() == {"matching": 3, "total": 3}

    bad = [
        ({"field": segment, "op": "eq", "value": "bronze"}, "conditions.1.value", "'bronze' is not an option"),
        ({"field": amount, "op": "contains", "value": "5"}, "conditions.1.op", "does not apply"),
        ({"field": "colour", "op": "eq", "value": "x"}, "conditions.1.field", "unknown field 'colour'"),
        ({"field": 99999, "op": "eq", "value": "x"}, "conditions.1.field", "contact field 99999 does not exist"),
        ({"field": city, "op": "approx", "value": "x"}, "conditions.1.op", "Input should be"),
        ({"field": "attempts_today", "op": "gt", "value": "много"}, "conditions.1.value", "not a whole number"),
    ]
    for condition, field, reason in bad:
        conditions = [{"field": city, "op": "ne", "value": None}, condition]
        for r in (await admin.post(base, json={"name": "Плохая", "conditions": conditions}),
                  await admin.post(f"{base}/preview", json={"conditions": conditions})):
            assert r.status_code == 422, r.text
            assert reason in field_errors(r).get(field, ""), (field, r.json())
    r = await admin.post(base, json={"name": "Плохая", "sort": [{"field": "colour"}]})
    assert r.status_code == 422 and "sort.0.field" in field_errors(r)
    r = await admin.post(base, json={"name": "Москва, крупные"})
    assert r.status_code == 409 and "name" in field_errors(r)
    r = await admin.post(base, json={"name": "Пул", "pool_id": 9999, "min_skill_level": 101})
    assert r.status_code == 422 and "min_skill_level" in field_errors(r)
    r = await admin.post(base, json={"name": "Пул", "pool_id": 9999})
    assert r.status_code == 422 and "pool_id" in field_errors(r)

    second = (await admin.post(base, json={"name": "Остальные", "priority": 10, "is_active": False})).json()
    r = await admin.get(base)
    assert [s["name"] for s in r.json()["items"]] == ["Москва, крупные", "Остальные"]
    r = await admin.get(base, params={"is_active": "false"})
    assert [s["id"] for s in r.json()["items"]] == [second["id"]]
    r = await admin.patch(f"{base}/{second['id']}", json={"conditions": [
        {"field": "status", "op": "eq", "value": "new"}, {"field": segment, "op": "in", "value": ["gold"]}]})
    assert r.status_code == 200
    assert (await admin.get(f"{base}/{second['id']}/preview")).json() == {"matching": 1, "total": 3}

    other = (await admin.post("/api/campaigns", json=setup.campaign("Другая"))).json()["id"]
    r = await admin.get(f"/api/campaigns/{other}/selections/{sel['id']}")
    assert r.status_code == 404
    assert (await admin.delete(f"{base}/{second['id']}")).status_code == 204
    assert (await admin.get(f"{base}/{second['id']}")).status_code == 404
    assert (await admin.get("/api/campaigns/9999/selections")).status_code == 404

    async with app.state.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "selections").order_by(AuditEntry.id))).all()
    assert actions == ["created", "created", "updated", "deleted"]


async def test_operator_cannot_see_selections(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    from tests.conftest import client_for

    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    async with await client_for(app, "op", roles=("operator",)) as op:
        r = await op.post(f"/api/campaigns/{cid}/selections/preview", json={"conditions": []})
        assert r.status_code == 403 and "selections.read" in r.json()["detail"]
