"""Inbound calls in the reports (issue #12 §3): a direction filter and column everywhere, and the abandon ledger
counts outbound calls only — an inbound caller who gave up is shown in a column of his own, not in the rate the
campaign's cap limits."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models.enums import OutcomeCategory
from tests.reports.data import Day, attempt, make_day, utc

MARCH_4 = {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04", "tz": "Europe/Moscow"}


async def add_inbound(maker: async_sessionmaker[AsyncSession], day: Day) -> list[int]:
    """Two inbound calls on the 4th: one taken by an operator, one caller nobody took (a callback booked)."""
    async with maker() as session, session.begin():
        taken = await attempt(session, day.world, day.contacts[0], utc(2026, 3, 4, 12, 0), OutcomeCategory.answered,
                              operator_id=day.op1, code_id=day.agreed, talk_s=40, wrap_s=5)
        lost = await attempt(session, day.world, None, utc(2026, 3, 4, 12, 30), OutcomeCategory.abandoned,
                             code_id=day.world.codes["abandoned"])
        await session.execute(text("UPDATE attempts SET direction = 'inbound' WHERE id IN (:a, :b)"),
                              {"a": taken, "b": lost})
    return [taken, lost]


async def test_ledger_counts_outbound_calls_and_shows_inbound_apart(app: FastAPI,
                                                                    admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    await add_inbound(app.state.sessionmaker, day)
    [row] = (await admin.get("/api/reports/abandon", params=MARCH_4)).json()["rows"]
    # the outbound day of data.py: 1 abandoned of 3 live answers; the inbound pair is beside it
    assert (row["live_answers"], row["abandoned"], row["rate"]) == (3, 1, 33.33)
    assert (row["inbound_answered"], row["inbound_abandoned"]) == (1, 1)
    # rolling 30 days: 1 + 1 abandoned of 3 + 10 outbound live answers
    assert (row["rolling_live_answers"], row["rolling_abandoned"]) == (13, 2)
    kpi = (await admin.get("/api/reports/outcomes", params=MARCH_4)).json()
    assert kpi["categories"]["total"] == 9 and kpi["categories"]["abandoned"] == 2
    assert (kpi["kpi"]["abandoned"], kpi["kpi"]["live_answers"], kpi["kpi"]["abandon_rate"],
            kpi["kpi"]["inbound_abandoned"]) == (1, 3, 33.33, 1)
    assert {d["direction"]: d["total"] for d in kpi["by_direction"]} == {"outbound": 7, "inbound": 2}
    [campaign] = kpi["by_campaign"]
    assert campaign["abandon_rate"] == 33.33  # not 2 of 5


async def test_direction_filters_reports_calls_and_exports(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    taken, lost = await add_inbound(app.state.sessionmaker, day)
    inbound = MARCH_4 | {"direction": "inbound"}
    body = (await admin.get("/api/reports/outcomes", params=inbound)).json()
    assert body["categories"] == {"answered": 1, "no_answer": 0, "busy": 0, "rejected": 0, "abandoned": 1,
                                  "error": 0, "total": 2}
    assert body["applied"]["direction"] == "inbound"
    calls = (await admin.get("/api/reports/calls", params=inbound | {"sort": "id"})).json()
    assert [(c["id"], c["direction"]) for c in calls["items"]] == [(taken, "inbound"), (lost, "inbound")]
    assert calls["total"] == 2
    outbound = (await admin.get("/api/reports/calls", params=MARCH_4 | {"direction": "outbound"})).json()
    assert outbound["total"] == 7 and {c["direction"] for c in outbound["items"]} == {"outbound"}
    ops = (await admin.get("/api/reports/operators", params=inbound)).json()["rows"]
    assert [(r["operator_id"], r["handled"]) for r in ops if r["handled"]] == [(day.op1, 1)]
    r = await admin.get("/api/reports/calls/export", params=inbound | {"format": "csv"},
                        headers={"Accept-Language": "ru"})
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(";")[2] == "Направление"
    assert [line.split(";")[2] for line in lines[1:]] == ["входящий", "входящий"]
    r = await admin.get("/api/reports/outcomes", params=MARCH_4 | {"direction": "sideways"})
    assert r.status_code == 422 and "direction" in r.text
