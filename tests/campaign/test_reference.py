"""Completion codes and groups, strategies, holidays, caller IDs and groups through the API."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import AuditEntry
from dialer.models.enums import FieldType
from tests.campaign.conftest import add_field, add_list, field_errors


async def test_system_codes_are_protected(admin: httpx.AsyncClient) -> None:
    r = await admin.get("/api/completion-codes", params={"is_system": "true", "per_page": 100})
    system = {c["system_key"]: c for c in r.json()["items"]}
    assert {"answered", "busy", "no_answer", "never_call"} <= set(system)
    busy = system["busy"]
    assert busy["is_system"] is True and busy["category"] == "busy"

    r = await admin.delete(f"/api/completion-codes/{busy['id']}")
    assert r.status_code == 409
    assert r.json()["detail"] == ("completion code 'Занято' is a system code set automatically by the dialer; "
                                  "it cannot be deleted")
    r = await admin.patch(f"/api/completion-codes/{busy['id']}", json={"category": "answered"})
    assert r.status_code == 409 and "category" in field_errors(r)
    r = await admin.patch(f"/api/completion-codes/{busy['id']}", json={"system_key": "other"})
    assert r.status_code == 409 and "system_key" in field_errors(r)
    r = await admin.patch(f"/api/completion-codes/{busy['id']}", json={"name": "Линия занята", "hotkey": "F3"})
    assert r.status_code == 200 and r.json()["name"] == "Линия занята" and r.json()["category"] == "busy"

    r = await admin.post("/api/completion-codes", json={"name": "Перезвонить"})
    assert r.status_code == 422 and field_errors(r) == {"category": "Field required"}
    r = await admin.post("/api/completion-codes", json={"name": "Перезвонить", "category": "no_answer",
                                                        "crm_status": "callback"})
    assert r.status_code == 201 and r.json()["is_system"] is False and r.json()["system_key"] is None
    own = r.json()
    r = await admin.post("/api/completion-codes", json={"name": "Сам", "category": "answered", "system_key": "x"})
    assert r.status_code == 422 and "system_key" in field_errors(r)

    r = await admin.get("/api/completion-codes", params={"category": "no_answer", "is_system": "false"})
    assert [c["name"] for c in r.json()["items"]] == ["Перезвонить"]
    r = await admin.get("/api/completion-codes", params={"category": "maybe"})
    assert r.status_code == 422 and "category" in field_errors(r)
    assert (await admin.delete(f"/api/completion-codes/{own['id']}")).status_code == 204


async def test_code_groups_have_members(app: FastAPI, admin: httpx.AsyncClient) -> None:
    codes = (await admin.get("/api/completion-codes", params={"sort": "id", "per_page": 3})).json()["items"]
    ids = [c["id"] for c in codes]
    r = await admin.post("/api/completion-code-groups", json={"name": "Основные", "code_ids": [ids[0], 9999]})
    assert r.status_code == 422 and "code_ids" in field_errors(r)
    r = await admin.post("/api/completion-code-groups", json={"name": "Основные", "code_ids": ids[:2]})
    assert r.status_code == 201 and r.json()["code_ids"] == ids[:2]
    gid = r.json()["id"]
    r = await admin.patch(f"/api/completion-code-groups/{gid}", json={"code_ids": [ids[2]]})
    assert r.json()["code_ids"] == [ids[2]]
    r = await admin.patch(f"/api/completion-code-groups/{gid}", json={"name": None})
    assert r.status_code == 422 and field_errors(r) == {"name": "must not be null"}
    async with app.state.sessionmaker() as session:
        changes = (await session.scalars(select(AuditEntry.changes).where(
            AuditEntry.object_type == "completion_code_groups", AuditEntry.action == "updated"))).all()
    assert {"code_ids": {"old": sorted(ids[:2]), "new": [ids[2]]}} in changes


async def test_strategy_with_retries_and_rules(app: FastAPI, admin: httpx.AsyncClient) -> None:
    phone = await add_field(app, "Мобильный", FieldType.phone)
    name = await add_field(app, "ФИО", FieldType.string)
    code = (await admin.post("/api/completion-codes", json={"name": "Нет дома", "category": "no_answer"})).json()
    payload = {
        "name": "Дожим", "phone_field_id": phone, "call_window_start": "09:30", "call_window_end": "20:00",
        "answer_timeout_s": 25, "min_operators": 1, "max_operators": 5,
        "outcome_retries": [{"outcome": "busy", "intervals": "15;60;1440;60", "max_attempts": 5},
                            {"outcome": "machine", "intervals": [3360, 1440, 120], "max_attempts": 3}],
        "result_rules": [
            {"completion_code_id": code["id"], "day_type": "workday", "retry_interval_s": 3600},
            {"completion_code_id": code["id"], "day_type": "holiday", "use_common_interval": True,
             "attempts_on_previous_number": 2, "switch_to_phone_type": "home"},
        ],
    }
    r = await admin.post("/api/strategies", json=payload)
    assert r.status_code == 201, r.text
    strategy = r.json()
    assert strategy["call_window_start"] == "09:30" and strategy["call_window_end"] == "20:00"
    assert strategy["outcome_retries"] == [
        {"outcome": "busy", "intervals": "15;60;1440;60", "intervals_min": [15, 60, 1440, 60], "max_attempts": 5},
        {"outcome": "machine", "intervals": "3360;1440;120", "intervals_min": [3360, 1440, 120], "max_attempts": 3}]
    assert [(x["day_type"], x["switch_to_phone_type"]) for x in strategy["result_rules"]] == [
        ("workday", None), ("holiday", "home")]

    sid = strategy["id"]
    r = await admin.patch(f"/api/strategies/{sid}", json={"outcome_retries": [
        {"outcome": "no_answer", "intervals": "240;1380", "max_attempts": 3}]})
    assert r.status_code == 200
    assert [x["outcome"] for x in r.json()["outcome_retries"]] == ["no_answer"]
    assert len(r.json()["result_rules"]) == 2  # not given: kept
    r = await admin.patch(f"/api/strategies/{sid}", json={"result_rules": []})
    assert r.json()["result_rules"] == []
    async with app.state.sessionmaker() as session:
        audited = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "strategy_outcome_retries"))).all()
    assert sorted(audited) == ["created", "created", "created", "deleted", "deleted"]

    errors = {
        "call_window_start": ({"call_window_start": "9:30"}, "is not a time HH:MM"),
        "call_window_end": ({"call_window_end": "24:01"}, "is not a time HH:MM"),
        "max_operators": ({"max_operators": 0}, "must not exceed"),
        "answer_timeout_s": ({"answer_timeout_s": 0}, "greater than 0"),
        "phone_field_id": ({"phone_field_id": name}, "is of type string; choose a phone field"),
        "default_completion_code_id": ({"default_completion_code_id": 9999}, "does not exist"),
        "outcome_retries.0.intervals": ({"outcome_retries": [{"outcome": "busy", "intervals": "15;x",
                                                               "max_attempts": 2}]}, "interval 2 ('x')"),
        "outcome_retries.0.max_attempts": ({"outcome_retries": [{"outcome": "busy", "intervals": "15",
                                                                  "max_attempts": 0}]}, "greater than or equal"),
        "outcome_retries.0.outcome": ({"outcome_retries": [{"outcome": "answered", "intervals": "15",
                                                             "max_attempts": 1}]}, "Input should be"),
        "outcome_retries.1.outcome": ({"outcome_retries": [{"outcome": "busy", "intervals": "1", "max_attempts": 1},
                                                           {"outcome": "busy", "intervals": "2", "max_attempts": 1}]},
                                      "already set at Retries by outcome №1"),
        "result_rules.0.retry_interval_s": ({"result_rules": [{"completion_code_id": code["id"],
                                                               "day_type": "workday"}]}, "give the interval"),
        "result_rules.0.attempts_on_previous_number": (
            {"result_rules": [{"completion_code_id": code["id"], "day_type": "workday", "retry_interval_s": 60,
                               "switch_to_phone_type": "work"}]}, "after how many attempts"),
        "result_rules.0.is_final": ({"result_rules": [{"completion_code_id": code["id"], "day_type": "workday",
                                                       "is_final": True, "retry_interval_s": 60}]}, "final rule"),
        "result_rules.0.completion_code_id": ({"result_rules": [{"completion_code_id": 9999, "day_type": "workday",
                                                                 "is_final": True}]}, "does not exist"),
    }
    for field, (change, reason) in errors.items():
        r = await admin.patch(f"/api/strategies/{sid}", json=change)
        assert r.status_code == 422, (field, r.text)
        assert reason in field_errors(r).get(field, ""), (field, r.json())

    cid = (await admin.post("/api/completion-code-groups", json={"name": "G", "code_ids": [code["id"]]})).json()["id"]
    lst = await add_list(app, "L")
    r = await admin.post("/api/campaigns", json={"name": "C", "strategy_id": sid, "completion_code_group_id": cid,
                                                 "list_ids": [lst]})
    assert r.status_code == 201
    r = await admin.delete(f"/api/strategies/{sid}")
    assert r.status_code == 409 and r.json()["detail"] == "strategy 'Дожим' is used by campaigns 'C'; change them first"


async def test_holidays_and_day_type(admin: httpx.AsyncClient) -> None:
    for day, name, working in [("2026-01-01", "Новый год", False), ("2026-03-09", "Перенос", False),
                               ("2026-03-14", "Рабочая суббота", True), ("2027-01-01", "Новый год", False)]:
        r = await admin.post("/api/holidays", json={"day": day, "name": name, "is_working_day": working})
        assert r.status_code == 201, r.text
    r = await admin.post("/api/holidays", json={"day": "2026-01-01"})
    assert r.status_code == 409 and "day" in field_errors(r)
    r = await admin.get("/api/holidays", params={"year": 2026, "sort": "day"})
    assert [h["day"] for h in r.json()["items"]] == ["2026-01-01", "2026-03-09", "2026-03-14"]
    r = await admin.get("/api/holidays", params={"year": "двадцать"})
    assert r.status_code == 422 and "year" in field_errors(r)

    expected = {"2026-03-09": "holiday", "2026-03-10": "workday", "2026-03-14": "workday", "2026-03-15": "holiday"}
    for day, kind in expected.items():
        r = await admin.get("/api/holidays/day-type", params={"date": day})
        assert r.json() == {"date": day, "day_type": kind}
    r = await admin.get("/api/holidays/day-type", params={"date": "10.03.2026"})
    assert r.status_code == 422 and "date" in field_errors(r)


async def test_caller_ids_are_normalised(app: FastAPI, admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/caller-ids", json={"number": "8 (495) 123-45-67", "description": "Москва"})
    assert r.status_code == 201 and r.json()["number"] == "+74951234567"
    first = r.json()["id"]
    r = await admin.post("/api/caller-ids", json={"number": "+7 495 123 45 67"})
    assert r.status_code == 409 and "number" in field_errors(r)
    r = await admin.post("/api/caller-ids", json={"number": "12345"})
    assert r.status_code == 422
    assert "'12345' is not a valid phone number" in field_errors(r)["number"]
    app.state.settings.default_country = "KZ"
    r = await admin.post("/api/caller-ids", json={"number": "8 727 250 00 00", "is_active": False})
    assert r.status_code == 201 and r.json()["number"] == "+77272500000"
    second = r.json()["id"]
    r = await admin.patch(f"/api/caller-ids/{first}", json={"number": "+7 916 000-00-01"})
    assert r.json()["number"] == "+79160000001"
    r = await admin.get("/api/caller-ids", params={"is_active": "false"})
    assert [c["id"] for c in r.json()["items"]] == [second]

    r = await admin.post("/api/caller-id-groups", json={"name": "Основной пул", "caller_id_ids": [first, second]})
    assert r.status_code == 201 and r.json()["caller_id_ids"] == [first, second]
    r = await admin.patch(f"/api/caller-id-groups/{r.json()['id']}", json={"caller_id_ids": [404]})
    assert r.status_code == 422 and "caller_id_ids" in field_errors(r)
