"""The operator API against a running engine: ready → a simulated call → the card → complete with a callback; the
supervisor's actions; the live snapshot and the attempt card. The engine runs in virtual time in this process and
gets the API's commands through the database and NOTIFY, as it would in another process."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from dialer.engine.runner import EngineConfig
from dialer.models import Callback, CompletionCode, Operator
from dialer.models.enums import AttemptState, CallbackKind, DialMode, OperatorState
from dialer.telephony.traffic import Constant
from tests.conftest import client_for, make_user, token_for
from tests.engine.engine_world import Harness, engine_world, scenario


async def _link(app: FastAPI, operator_id: int, user_id: int) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == operator_id).values(user_id=user_id))


async def test_operator_flow(app: FastAPI, db_url: str, admin: httpx.AsyncClient) -> None:
    maker = app.state.sessionmaker
    # real "now" (the snapshot counts today's attempts) and a window open all day (start == end), whenever it runs
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, wrap_up_s=120,
                               call_window_start=time(0), call_window_end=time(0))
    op_id = world.operator_ids[0]
    contact_id = await world.contact(data={str(world.city_field_id): "Казань", str(world.amount_field_id): 1500})
    await world.start()
    user_id = await make_user(app, "operator1", roles=("operator",))
    await _link(app, op_id, user_id)
    token = await token_for(app, user_id)
    me = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                           headers={"Authorization": f"Bearer {token}"})
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(30.0))
    h = Harness(maker, traffic, human_operators=(op_id,), database_url=db_url, epoch=datetime.now(UTC),
                config=EngineConfig(drain_s=0, seed=1))
    async with me, h.running():
        r = await me.get("/api/workplace/state")
        assert r.status_code == 200 and r.json()["state"] == "offline" and r.json()["engine_running"]

        r = await me.post("/api/workplace/ready")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "ready"
        await h.advance(5)  # dialled, answered after 2 s, connected
        await h.settle()
        state = (await me.get("/api/workplace/state")).json()
        assert state["state"] == "in_call", state
        call = state["call"]
        assert call["card"]["contact_id"] == contact_id
        assert call["card"]["fields"] == {"Город": "Казань", "Сумма": 1500}
        assert call["card"]["campaign"]["name"] == "Весна"
        assert {c["name"] for c in call["codes"]} >= {"Согласен", "Отказ", "Перезвонить"}

        # the code must belong to the campaign's group
        async with maker() as session, session.begin():
            stranger = CompletionCode(name="Чужой", category="answered")
            session.add(stranger)
            await session.flush()
            stranger_id = stranger.id
        r = await me.post("/api/workplace/complete", json={"completion_code_id": stranger_id})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "completion_code_id"

        await h.advance(31)  # the customer hangs up after 30 s of talk
        await h.settle()
        state = (await me.get("/api/workplace/state")).json()
        assert state["state"] == "wrap_up" and state["call"]["attempt_id"] == call["attempt_id"]

        callback_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        r = await me.post("/api/workplace/complete", json={
            "completion_code_id": world.codes["Перезвонить"], "comment": "просил позже", "callback_at": callback_at,
            "callback_personal": True})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "ready"

        r = await me.post("/api/workplace/pause", json={"reason": "lunch"})
        assert r.json()["state"] == "paused" and r.json()["reason"] == "lunch"
        await h.settle()

        attempt = (await world.attempts())[0]
        assert attempt.state is AttemptState.done and attempt.completion_code_id == world.codes["Перезвонить"]
        assert attempt.comment == "просил позже" and attempt.operator_id == op_id
        async with maker() as session:
            cb = (await session.scalars(select(Callback).where(Callback.contact_id == contact_id))).one()
        assert cb.kind is CallbackKind.personal and cb.operator_id == op_id

        # the attempt card with its timeline, and the live snapshot
        async with await client_for(app, "sup", roles=("supervisor",)) as sup:
            card = (await sup.get(f"/api/attempts/{attempt.id}")).json()
            assert [t["stage"] for t in card["timeline"]] == ["queued", "dialed", "ringing", "answered", "connected",
                                                               "hung_up", "wrap_up_ended"]
            assert card["abandoned"] is False and card["waited_s"] < 2 and card["talk_s"] == 30.0
            assert card["completion_code"] == "Перезвонить" and card["operator_periods"]
            live = (await sup.get("/api/monitoring/live")).json()
            assert live["engine"]["running"] is True
            assert live["operator_counts"]["paused"] == 1
            (camp,) = [c for c in live["campaigns"] if c["id"] == world.campaign_id]
            assert camp["outcomes_today"] == {"answered": 1} and camp["live_answers_today"] == 1
            assert camp["abandon_pct"] == 0 and camp["abandon_cap_pct"] == 3.0

            # supervisor: force ready, then release the break
            r = await sup.post(f"/api/supervisor/operators/{op_id}/state", json={"state": "paused",
                                                                                 "reason": "meeting"})
            assert r.status_code == 200 and r.json()["reason"] == "meeting"
            r = await sup.post(f"/api/supervisor/operators/{op_id}/release")
            assert r.status_code == 200 and r.json()["state"] == OperatorState.ready.value
            r = await sup.post(f"/api/supervisor/operators/{op_id}/release")
            assert r.status_code == 200
        # a refusal is a 409 with the engine's reason
        r = await me.post("/api/workplace/preview/confirm")
        assert r.status_code == 409 and "no preview" in r.json()["detail"]
        r = await me.post("/api/workplace/offline")
        assert r.json()["state"] == "offline"
    await admin.aclose()
