"""Campaigns: every column, members, schedule, dial modes, and the errors that name the field."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import AuditEntry
from tests.campaign.conftest import Setup, add_list, field_errors


async def test_create_read_update(app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    pool = (await admin.post("/api/pools", json={"name": "Смена А"})).json()
    payload = setup.campaign(
        description="Весенняя акция", kind="infinite", start_at="2026-03-01T09:00:00", time_zone="Asia/Yekaterinburg",
        dial_mode="predictive", dial_params={"max_ratio": 2.5}, priority=80, max_concurrent_calls=30,
        call_script="Здравствуйте!", pool_ids=[pool["id"]],
        schedule=[{"weekday": 0, "start": "09:00", "end": "13:00"}, {"weekday": 0, "start": "14:00", "end": "18:00"},
                  {"weekday": 5, "start": "10:00", "end": "15:00"}])
    r = await admin.post("/api/campaigns", json=payload)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "draft" and c["list_ids"] == [setup.list_id] and c["pool_ids"] == [pool["id"]]
    assert c["start_at"] == "2026-03-01T04:00:00Z"  # naive: the campaign's zone (UTC+5)
    assert c["dial_params"] == {"abandon_cap_pct": 3.0, "abandon_window_min": 60, "max_ratio": 2.5}
    assert c["abandon_cap_pct"] == 3.0
    assert c["schedule"][1] == {"weekday": 0, "start": "14:00", "end": "18:00"}

    cid = c["id"]
    r = await admin.patch(f"/api/campaigns/{cid}", json={"abandon_cap_pct": 2})
    assert r.json()["abandon_cap_pct"] == 2.0 and r.json()["dial_params"]["abandon_cap_pct"] == 2.0
    r = await admin.patch(f"/api/campaigns/{cid}", json={"dial_mode": "fixed_lines"})
    assert r.status_code == 422 and "required" in field_errors(r)["dial_params.max_lines"]
    second_list = await add_list(app, "Б")
    r = await admin.patch(f"/api/campaigns/{cid}", json={"dial_mode": "fixed_lines", "dial_params": {"max_lines": 40},
                                                          "schedule": [], "list_ids": [setup.list_id, second_list]})
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["dial_params"] == {"max_lines": 40} and c["abandon_cap_pct"] == 2.0
    assert c["schedule"] == [] and c["list_ids"] == sorted([setup.list_id, second_list])

    r = await admin.get("/api/campaigns", params={"dial_mode": "fixed_lines", "q": "весен"})
    assert [x["id"] for x in r.json()["items"]] == [cid]
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(select(AuditEntry.object_type, AuditEntry.action).where(
            AuditEntry.object_type.in_(["campaigns", "campaign_schedules"])))).all()
    assert rows.count(("campaign_schedules", "deleted")) == 3
    assert ("campaigns", "updated") in rows


async def test_validation_names_the_field(admin: httpx.AsyncClient, setup: Setup) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"list_ids": []}, "list_ids", "at least 1 item"),
        ({"list_ids": [9999]}, "list_ids", "contact list 9999 does not exist"),
        ({"pool_ids": [9999]}, "pool_ids", "operator pool 9999 does not exist"),
        ({"strategy_id": 9999}, "strategy_id", "strategy 9999 does not exist"),
        ({"caller_id_group_id": 9999}, "caller_id_group_id", "does not exist"),
        ({"time_zone": "Moscow"}, "time_zone", "is not an IANA time zone"),
        ({"status": "running"}, "status", "is changed only by the actions"),
        ({"priority": 0}, "priority", "greater than or equal to 1"),
        ({"dial_mode": "preview", "dial_params": {"preview_seconds": 0}}, "dial_params.preview_seconds",
         "greater than or equal to 1"),
        ({"dial_mode": "fixed_lines"}, "dial_params.max_lines", "Field required"),
        ({"dial_mode": "predictive", "dial_params": {"abandon_cap_pct": 150}}, "dial_params.abandon_cap_pct",
         "less than or equal to 100"),
        ({"dial_mode": "progressive", "dial_params": {"preview_seconds": 5}}, "dial_params.preview_seconds",
         "Extra inputs"),
        ({"dial_mode": "predictive", "abandon_cap_pct": 1, "dial_params": {"abandon_cap_pct": 2}}, "abandon_cap_pct",
         "differs"),
        ({"schedule": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, "schedule.0.weekday", "less than or equal"),
        ({"schedule": [{"weekday": 1, "start": "9:00", "end": "10:00"}]}, "schedule.0.start", "is not a time HH:MM"),
        ({"schedule": [{"weekday": 1, "start": "11:00", "end": "25:00"}]}, "schedule.0.end", "is not a time HH:MM"),
        ({"schedule": [{"weekday": 1, "start": "09:00", "end": "12:00"},
                       {"weekday": 1, "start": "11:30", "end": "13:00"}]}, "schedule.1", "overlaps Schedule №1"),
    ]
    for overrides, field, reason in cases:
        r = await admin.post("/api/campaigns", json=setup.campaign(**overrides))
        assert r.status_code == 422, (overrides, r.text)
        assert reason in field_errors(r).get(field, ""), (field, r.json())
    assert (await admin.get("/api/campaigns")).json()["total"] == 0

    assert (await admin.post("/api/campaigns", json=setup.campaign())).status_code == 201
    r = await admin.post("/api/campaigns", json=setup.campaign())
    assert r.status_code == 409 and "name" in field_errors(r)
    cid = (await admin.get("/api/campaigns")).json()["items"][0]["id"]
    r = await admin.patch(f"/api/campaigns/{cid}", json={"status": "finished"})
    assert r.status_code == 422 and "status" in field_errors(r)
    r = await admin.patch(f"/api/campaigns/{cid}", json={"strategy_id": None})
    assert r.status_code == 422 and field_errors(r) == {"strategy_id": "must not be null"}
