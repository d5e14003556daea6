"""The panels' own reads (/api/panels): an operator's callbacks for today with his comment, his figures for the
day, a campaign's codes, a contact's call history — each scoped and permission-checked."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Operator
from tests.conftest import client_for, make_user, token_for
from tests.web.panel_data import operator_day


async def _as_operator(app: FastAPI, maker: async_sessionmaker[AsyncSession], login: str,
                       operator_id: int) -> httpx.AsyncClient:
    user_id = await make_user(app, login, roles=("operator",))
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == operator_id).values(user_id=user_id))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {await token_for(app, user_id)}"})


async def test_my_callbacks_are_mine_today_with_my_comment(app: FastAPI,
                                                           sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    day = await operator_day(sessionmaker)
    async with await _as_operator(app, sessionmaker, "op1", day.me) as me:
        r = await me.get("/api/panels/my-callbacks")
        assert r.status_code == 200, r.text
        items = r.json()
    by_id = {cb["id"]: cb for cb in items}
    # mine (booked by my call, and my personal overdue one); not the other's, not the one in two days
    assert set(by_id) == {day.callbacks["mine_shared"], day.callbacks["mine_overdue"]}
    overdue = by_id[day.callbacks["mine_overdue"]]
    shared = by_id[day.callbacks["mine_shared"]]
    assert (overdue["overdue"], shared["overdue"]) == (True, False)
    assert (overdue["kind"], shared["kind"]) == ("personal", "common")
    # the comment I wrote on the call, not the engine's placeholder
    assert shared["comment"] == day.booked_comment
    assert [cb["id"] for cb in items] == [day.callbacks["mine_overdue"], day.callbacks["mine_shared"]]  # by time
    async with await _as_operator(app, sessionmaker, "op2", day.other) as other:
        theirs = (await other.get("/api/panels/my-callbacks")).json()
    assert [cb["id"] for cb in theirs] == [day.callbacks["others"]]
    assert theirs[0]["comment"] == "чужой комментарий"


async def test_my_day_counts_my_calls_only(app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    day = await operator_day(sessionmaker)
    async with await _as_operator(app, sessionmaker, "op1", day.me) as me:
        figures = (await me.get("/api/panels/my-day")).json()
    # two finished calls of mine: the cut-off conversation (95 s) and the one that booked a callback (60 s)
    assert (figures["calls"], figures["conversations"]) == (2, 2)
    assert figures["talk_s"] == 155.0
    assert figures["avg_talk_s"] == 77.5
    assert figures["outcomes"]["answered"] == 1 and figures["outcomes"]["error"] == 1
    assert sum(figures["outcomes"].values()) == 2
    # the callbacks made today after a call of mine on the contact (the other operator's is his)
    assert figures["callbacks_booked"] == 3
    assert {c["name"] for c in figures["codes"]} >= {"Перезвонить"}


async def test_campaign_codes_for_operators_and_supervisors(app: FastAPI,
                                                            sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    day = await operator_day(sessionmaker)
    path = f"/api/panels/campaigns/{day.world.campaign_id}/codes"
    async with await _as_operator(app, sessionmaker, "op1", day.me) as me:
        names = {c["name"] for c in (await me.get(path)).json()}
        assert (await me.get("/api/panels/campaigns/999999/codes")).status_code == 404
    assert {"Согласен", "Отказ", "Перезвонить"} <= names
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        assert {c["name"] for c in (await sup.get(path)).json()} == names
        # the operator's own reads need the operator panel
        assert (await sup.get("/api/panels/my-day")).status_code == 403
    async with await client_for(app, "nobody") as nobody:
        assert (await nobody.get(path)).status_code == 403


async def test_contact_history_for_the_administration(app: FastAPI, admin: httpx.AsyncClient,
                                                      sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    day = await operator_day(sessionmaker)
    r = await admin.get(f"/api/panels/contacts/{day.contact}/attempts")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [a["id"] for a in rows][-1] == day.pending_id  # the latest first
    assert len(rows) == 2
    assert rows[0]["comment"] == day.booked_comment and rows[0]["completion_code"] == "Перезвонить"
    assert rows[0]["talk_s"] == 60.0 and rows[0]["operator_name"] == "op1"
    assert (await admin.get("/api/panels/contacts/999999/attempts")).status_code == 404
    async with await _as_operator(app, sessionmaker, "op1", day.me) as me:
        assert (await me.get(f"/api/panels/contacts/{day.contact}/attempts")).status_code == 403
