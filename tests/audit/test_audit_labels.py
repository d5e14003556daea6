"""The audit API labels tables, actions and events in the request's language beside what was recorded."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from dialer.audit.recorder import log
from dialer.models.enums import AuditAction


async def test_labels_in_russian_and_english(app: FastAPI, admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/api/skills", json={"name": "Английский"})).status_code == 201
    async with app.state.sessionmaker() as session, session.begin():
        await log(session, AuditAction.custom, "campaigns", 7, event_label="status: draft → running")
        await log(session, AuditAction.custom, "campaigns", 7, event_label="something new")

    items = (await admin.get("/api/audit", headers={"Accept-Language": "ru"})).json()["items"]
    by_event = {e["event"]: e for e in items}
    status = by_event["status: draft → running"]
    assert (status["object_type"], status["object_label"]) == ("campaigns", "Кампании")
    assert status["event_label"] == "статус: черновик → работает" and status["action_label"] == "действие"
    assert by_event["something new"]["event_label"] == "something new"  # unknown events stay as recorded
    skill = next(e for e in items if e["object_type"] == "skills")
    assert (skill["object_label"], skill["action_label"], skill["event_label"]) == ("Умения", "создание", "")

    items = (await admin.get("/api/audit")).json()["items"]  # this client asks for English
    status = next(e for e in items if e["event"] == "status: draft → running")
    assert (status["object_label"], status["event_label"]) == ("Campaigns", "status: draft → running")
