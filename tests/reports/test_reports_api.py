"""The reports' figures over a day of calls written as the engine writes them, checked by hand, with the local
day's edges; the rollups give the same answers as the raw tables."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from dialer.core.clock import VirtualClock
from dialer.reports import rollup, service
from dialer.reports.period import Period, ReportFilter, zone
from tests.conftest import client_for
from tests.reports.data import make_day, utc

MARCH_4 = {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04", "tz": "Europe/Moscow"}


async def test_outcomes_of_a_day_count_by_local_day(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    r = await admin.get("/api/reports/outcomes", params=MARCH_4)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kpi"] == {
        "attempts": 7, "answered": 2, "reached_contacts": 2, "answer_rate": 28.57, "abandoned": 1,
        "live_answers": 3, "abandon_rate": 33.33, "abandon_cap": 3.0, "handled": 2, "talk_ms": 90_000,
        "wrap_ms": 15_000, "aht_ms": 52_500, "successful": 1, "conversion": 50.0, "inbound_abandoned": 0,
        "transferred": 0}
    assert body["categories"] == {"answered": 2, "no_answer": 1, "busy": 1, "rejected": 1, "abandoned": 1,
                                  "error": 1, "total": 7}
    assert [d["day"] for d in body["by_day"]] == ["2026-03-04"]
    hours = {h["hour"]: h["total"] for h in body["by_hour"] if h["total"]}
    # 00:00 local (the day before in UTC) and 23:59 local are both the 4th's.
    assert hours == {0: 1, 10: 1, 12: 2, 13: 1, 14: 1, 23: 1}
    assert body["by_hour"][23]["answered"] == 1
    [campaign] = body["by_campaign"]
    assert (campaign["id"], campaign["total"], campaign["successful"], campaign["conversion"]) == \
        (day.world.campaign_id, 7, 1, 50.0)
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"date_from": "2026-03-05", "date_to": "2026-03-05"})
    assert r.json()["categories"]["total"] == 1  # 00:00:30 on the 5th
    # In UTC the same calendar day holds other calls: the zone decides.
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"tz": "UTC"})
    assert r.json()["categories"]["total"] == 7 - 1 + 1


async def test_filters_narrow_every_figure(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"pool_ids": str(day.pool)})
    assert r.json()["kpi"]["attempts"] == 1 and r.json()["applied"]["operator_ids"] == [day.op1]
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"list_ids": str(day.world.list_id),
                                                                    "operator_ids": f"{day.op1},{day.op2}"})
    assert r.json()["kpi"]["handled"] == 2
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"campaign_ids": "999999"})
    assert r.json()["kpi"]["attempts"] == 0
    async with app.state.sessionmaker() as session, session.begin():
        group = await session.scalar(text("INSERT INTO completion_code_groups (name, description, created_at,"
                                          " updated_at) VALUES ('Итог', '', now(), now()) RETURNING id"))
        await session.execute(text("INSERT INTO completion_code_group_members VALUES (:g, :a), (:g, :b)"),
                              {"g": group, "a": day.agreed, "b": day.world.codes["busy"]})
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"code_group_ids": str(group)})
    assert r.json()["categories"] | {"total": 0} == {"answered": 1, "busy": 1, "no_answer": 0, "rejected": 0,
                                                      "abandoned": 0, "error": 0, "total": 0}


async def test_bad_filters_name_the_field(admin: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"period": "custom", "date_to": "2026-03-04"}, "date_from"),
        ({"period": "custom", "date_from": "2026-03-05", "date_to": "2026-03-04"}, "date_to"),
        ({"period": "custom", "date_from": "2025-01-01", "date_to": "2026-03-04"}, "date_to"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"campaign_ids": "1,x"}, "campaign_ids"),
    ]
    for params, field in cases:
        r = await admin.get("/api/reports/outcomes", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field, r.json()
    r = await admin.get("/api/reports/calls", params={"outcome": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "outcome"


async def test_operators_and_time_in_state(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    rows = {r["name"]: r for r in (await admin.get("/api/reports/operators", params=MARCH_4)).json()["rows"]}
    anna, boris = rows["Анна"], rows["Борис"]
    assert (anna["handled"], anna["talk_ms"], anna["wrap_ms"], anna["successful"], anna["conversion"]) == \
        (1, 60_000, 10_000, 1, 100.0)
    # Logged in on the 4th: 60 + 30 (lunch) + 10 + 5 + 15 + 30 (until midnight) minutes; ready 105 of them.
    assert (anna["logged_in_ms"], anna["waiting_ms"], anna["paused_ms"]) == (150 * 60_000, 105 * 60_000, 30 * 60_000)
    assert anna["calls_per_hour"] == 0.4 and anna["rank"] == 1 and boris["rank"] == 2
    assert [c["name"] for c in boris["codes"]] == ["Отказ"]
    states = (await admin.get("/api/reports/states", params=MARCH_4)).json()["rows"]
    [a] = [s for s in states if s["operator_id"] == day.op1]
    assert a["first_login"] == "2026-03-04T05:00:00Z" and a["last_logout"] == "2026-03-04T21:00:00Z"
    assert a["paused_by_reason"] == {"Обед": 30 * 60_000}
    assert (a["in_call_ms"], a["wrap_up_ms"], a["occupancy"]) == (10 * 60_000, 5 * 60_000, 12.5)
    [b] = [s for s in states if s["operator_id"] == day.op2]
    assert b["reserved_ms"] == 60_000 and b["occupancy"] == round(100 * 15 / 46, 2)
    fifth = (await admin.get("/api/reports/states", params=MARCH_4 | {"date_from": "2026-03-05",
                                                                       "date_to": "2026-03-05"})).json()["rows"]
    assert [(s["operator_id"], s["ready_ms"]) for s in fifth] == [(day.op1, 30 * 60_000)]


async def test_codes_abandon_ledger_calls(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    codes = (await admin.get("/api/reports/codes", params=MARCH_4)).json()
    assert codes["total"] == 7
    agreed = next(r for r in codes["rows"] if r["code_id"] == day.agreed)
    assert agreed["successful"] and agreed["count"] == 1 and agreed["share"] == 14.29
    assert {(r["name"], r["code"], r["count"]) for r in codes["by_operator"]} == {("Анна", "Согласен", 1),
                                                                                   ("Борис", "Отказ", 1)}
    ledger = (await admin.get("/api/reports/abandon", params=MARCH_4)).json()["rows"]
    [row] = ledger
    # The day: 1 of 3; the 30 days: 2 of 13 (the 12th of February counts), over the 3 % cap.
    assert (row["live_answers"], row["abandoned"], row["rate"]) == (3, 1, 33.33)
    assert (row["rolling_live_answers"], row["rolling_abandoned"], row["over_cap"]) == (13, 2, True)
    calls = (await admin.get("/api/reports/calls", params=MARCH_4 | {"outcome": "answered"})).json()
    assert calls["total"] == 2 and {c["operator"] for c in calls["items"]} == {"Анна", "Борис"}
    first = calls["items"][0]
    assert first["talk_ms"] in (60_000, 30_000) and first["connected_at"] is not None
    calls = (await admin.get("/api/reports/calls", params=MARCH_4 | {"sort": "queued_at", "per_page": 3})).json()
    assert calls["total"] == 7 and len(calls["items"]) == 3
    assert calls["items"][0]["queued_at"] == "2026-03-03T21:00:00Z"
    # The call card the list drills down to exists for these ids.
    r = await admin.get(f"/api/attempts/{calls['items'][0]['id']}")
    assert r.status_code == 200, r.text


async def test_progress_of_lists(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    await day.world.dnc(day.world.codes and "+79160000000")
    body = (await admin.get("/api/reports/progress", params={"campaign_ids": str(day.world.campaign_id)})).json()
    [lst] = body["lists"]
    assert lst["total"] == 9 and lst["new"] == 9
    assert sum(z["contacts"] for z in lst["left_by_zone"]) == 9
    assert lst["left_by_zone"][0]["zone"] == "Europe/Moscow"


async def test_rollups_answer_as_the_raw_tables(app: FastAPI) -> None:
    maker = app.state.sessionmaker
    await make_day(maker)
    f = ReportFilter(period=Period(date(2026, 2, 1), date(2026, 3, 31), zone("Europe/Moscow")),
                     now=utc(2026, 3, 6, 12, 0))
    # Sealed in the middle of the 4th: hours before from the rollups, after from the raw tables.
    for now in (utc(2026, 3, 4, 9, 40), utc(2026, 3, 6, 12, 0)):
        async with maker() as session, session.begin():
            await session.execute(text("DELETE FROM report_rollup_marks"))
            marks = await rollup.refresh(session, now)
        assert marks.attempts <= now
        async with maker() as session:
            for report in (service.outcomes, service.operators, service.states, service.codes, service.abandon):
                raw = await report(session, f, None)
                rolled = await report(session, f, marks)
                assert raw == rolled, report.__name__
            assert (await service.outcomes(session, f, marks)).kpi.attempts == 7 + 1 + 10
    async with maker() as session:
        assert await session.scalar(text("SELECT count(*) FROM report_attempt_hours")) > 0
        assert await session.scalar(text("SELECT count(*) FROM report_state_hours")) > 0
        assert await session.scalar(text("SELECT count(*) FROM report_outcome_hours")) > 0
        assert await session.scalar(text("SELECT count(*) FROM report_operator_days")) > 0
        # The call still live on the 4th holds the days from it on: the operators' 4th is not folded yet.
        assert await session.scalar(text("SELECT count(*) FROM report_state_days")) == 0
    async with maker() as session, session.begin():
        await session.execute(text("UPDATE attempts SET state = 'done', outcome = 'busy', hung_up_at = queued_at"
                                   " WHERE state <> 'done'"))
        marks = await rollup.refresh(session, utc(2026, 3, 6, 12, 0))
    assert marks.days == utc(2026, 3, 5, 21, 0) and marks.days_tz == "Europe/Moscow"
    async with maker() as session:
        assert await session.scalar(text("SELECT count(*) FROM report_state_days")) > 0
        for report in (service.outcomes, service.operators, service.states, service.codes, service.abandon):
            assert await report(session, f, None) == await report(session, f, marks), report.__name__


async def test_day_rollups_follow_the_centres_zone(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    maker = app.state.sessionmaker
    await make_day(maker)
    async with maker() as session, session.begin():
        await session.execute(text("UPDATE attempts SET state = 'done', outcome = 'busy', hung_up_at = queued_at"
                                   " WHERE state <> 'done'"))
        await rollup.refresh(session, utc(2026, 3, 6, 12, 0))
    # The centre moves to Yekaterinburg (UTC+5): its days are folded again, Moscow's are gone.
    monkeypatch.setenv("DIALER_REPORTS_TIME_ZONE", "Asia/Yekaterinburg")
    async with maker() as session, session.begin():
        marks = await rollup.refresh(session, utc(2026, 3, 6, 12, 0))
    assert marks.days_tz == "Asia/Yekaterinburg" and marks.days == utc(2026, 3, 5, 19, 0)
    async with maker() as session:
        names = set((await session.scalars(text("SELECT name FROM report_rollup_marks"))).all())
        assert names == {"attempts", "states", "days:Asia/Yekaterinburg"}
        days = {d.hour for d in (await session.scalars(text("SELECT day FROM report_state_days"))).all()}
        assert days == {19}
        f = ReportFilter(period=Period(date(2026, 3, 1), date(2026, 3, 31), zone("Asia/Yekaterinburg")),
                         now=utc(2026, 3, 6, 12, 0))
        for report in (service.operators, service.states, service.codes):
            assert await report(session, f, None) == await report(session, f, marks), report.__name__
        # A report in another zone than the centre's reads hours, and still agrees.
        moscow = ReportFilter(period=f.period.__class__(f.period.first, f.period.last, zone("Europe/Moscow")),
                              now=f.now)
        assert await service.states(session, moscow, None) == await service.states(session, moscow, marks)


async def test_today_follows_the_clock_and_zone(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await make_day(app.state.sessionmaker)
    # 02:30 on the 5th in Moscow is still the 4th in UTC.
    app.state.reports_clock = VirtualClock(epoch=datetime(2026, 3, 4, 23, 30, tzinfo=UTC))
    r = await admin.get("/api/reports/outcomes", params={"period": "yesterday"})
    assert r.json()["applied"]["date_from"] == "2026-03-04" and r.json()["kpi"]["attempts"] == 7
    r = await admin.get("/api/reports/outcomes", params={"period": "today", "tz": "UTC"})
    assert r.json()["applied"]["date_from"] == "2026-03-04"
    r = await admin.get("/api/reports/outcomes", params={"period": "last_month"})
    assert (r.json()["applied"]["date_from"], r.json()["applied"]["date_to"]) == ("2026-02-01", "2026-02-28")
    assert r.json()["kpi"]["attempts"] == 10


async def test_successful_codes_need_the_codes_permission(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    r = await admin.put("/api/reports/successful-codes", json={"code_ids": [day.refused, day.agreed]})
    assert r.status_code == 200 and r.json()["code_ids"] == sorted([day.refused, day.agreed])
    r = await admin.put("/api/reports/successful-codes", json={"code_ids": [day.agreed, 987654]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "code_ids[1]"
    kpi = (await admin.get("/api/reports/outcomes", params=MARCH_4)).json()["kpi"]
    assert (kpi["successful"], kpi["conversion"]) == (2, 100.0)
    audit = (await admin.get("/api/audit", params={"object_type": "report_successful_codes"})).json()
    assert audit["total"] >= 1
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        assert (await sup.get("/api/reports/outcomes", params=MARCH_4)).status_code == 200
        assert (await sup.put("/api/reports/successful-codes", json={"code_ids": []})).status_code == 403
    async with await client_for(app, "op", roles=("operator",)) as op:
        assert (await op.get("/api/reports/outcomes", params=MARCH_4)).status_code == 403
