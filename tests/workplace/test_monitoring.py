"""The supervisor's monitoring API: the live snapshot's per-operator day (talk time, completion codes, pools, SIP
phone), campaigns' dialable contacts, trunks, the attempt card's stage durations and the attempt search.

The data is written directly (as the engine would record it), so the numbers are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from dialer.models import (
    Attempt,
    OperatorPool,
    OperatorStateLog,
    SipDevice,
    SipRegistration,
    SipTrunk,
    SipTrunkState,
    pool_operators,
)
from dialer.models.enums import AttemptState, ContactStatus, OperatorState, OutcomeCategory
from dialer.workplace import repository, service
from tests.conftest import client_for
from tests.engine.engine_world import EngineWorld, engine_world


async def _world(app: FastAPI) -> EngineWorld:
    return await engine_world(app.state.sessionmaker, operators=2)


async def test_snapshot_has_each_operators_day(app: FastAPI) -> None:
    world = await _world(app)
    maker = app.state.sessionmaker
    op1, op2 = world.operator_ids
    now = datetime.now(UTC)
    c1 = await world.contact(phones=["+79160000001"])
    c2 = await world.contact(phones=["+79160000002"])
    c3 = await world.contact(phones=["+79160000003"])
    async with maker() as session, session.begin():
        # today in the operators' day zone, whenever the test runs
        t0 = max(now - timedelta(minutes=30), service._day_start(now, service.OPERATOR_DAY_ZONE))
        done = [
            # two calls of op1 with the code "Согласен" (60 s and 30 s of talk), one with "Отказ" (15 s)
            Attempt(campaign_id=world.campaign_id, contact_id=c1, operator_id=op1, number="+79160000001",
                    state=AttemptState.done, outcome=OutcomeCategory.answered,
                    completion_code_id=world.codes["Согласен"], queued_at=t0, dialed_at=t0,
                    answered_at=t0 + timedelta(seconds=5), connected_at=t0 + timedelta(seconds=6),
                    hung_up_at=t0 + timedelta(seconds=66), wrap_up_ended_at=t0 + timedelta(seconds=70)),
            Attempt(campaign_id=world.campaign_id, contact_id=c2, operator_id=op1, number="+79160000002",
                    state=AttemptState.done, outcome=OutcomeCategory.answered,
                    completion_code_id=world.codes["Согласен"], queued_at=t0, connected_at=t0,
                    hung_up_at=t0 + timedelta(seconds=30)),
            Attempt(campaign_id=world.campaign_id, contact_id=None, operator_id=op1, number="+79160000009",
                    state=AttemptState.done, outcome=OutcomeCategory.answered,
                    completion_code_id=world.codes["Отказ"], queued_at=t0, connected_at=t0,
                    hung_up_at=t0 + timedelta(seconds=15)),
            # a call of yesterday does not count
            Attempt(campaign_id=world.campaign_id, contact_id=None, operator_id=op1, number="+79160000008",
                    state=AttemptState.done, outcome=OutcomeCategory.answered,
                    completion_code_id=world.codes["Отказ"], queued_at=now - timedelta(days=2),
                    connected_at=now - timedelta(days=2), hung_up_at=now - timedelta(days=2, seconds=-40)),
        ]
        live = Attempt(campaign_id=world.campaign_id, contact_id=c3, operator_id=op1, number="+79160000003",
                       state=AttemptState.connected, queued_at=now - timedelta(seconds=20),
                       connected_at=now - timedelta(seconds=10))
        session.add_all([*done, live])
        await session.flush()
        session.add(OperatorStateLog(operator_id=op1, state=OperatorState.in_call, campaign_id=world.campaign_id,
                                     attempt_id=live.id, started_at=now - timedelta(seconds=10)))
        session.add(OperatorStateLog(operator_id=op2, state=OperatorState.paused, reason="lunch",
                                     started_at=now - timedelta(minutes=3)))
        second = OperatorPool(name="Вечер")
        session.add(second)
        session.add(SipDevice(login="op1phone", password="secret-1234", operator_id=op1))
        session.add(SipRegistration(login="op1phone", online=True, reachable=False, detail="no OPTIONS answer"))
        trunk = SipTrunk(name="МТС", host="sip.example.net")
        session.add(trunk)
        await session.flush()
        session.add(SipTrunkState(trunk_id=trunk.id, up=False, detail="408 timeout"))
        await session.execute(pool_operators.insert().values(pool_id=second.id, operator_id=op1))
        second_id, live_id, trunk_id = second.id, live.id, trunk.id

    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        r = await sup.get("/api/monitoring/live")
        assert r.status_code == 200, r.text
        snap = r.json()
    ops = {o["id"]: o for o in snap["operators"]}
    one, two = ops[op1], ops[op2]
    assert one["state"] == "in_call" and one["attempt_id"] == live_id
    assert one["number"] == "+79160000003" and one["contact_id"] == c3 and one["campaign_name"] == "Весна"
    assert one["calls_today"] == 4  # three finished and the one in progress were connected today
    # 60 + 30 + 15 finished plus ~10 s of the call in progress
    assert 114 <= one["talk_s_today"] <= 120, one["talk_s_today"]
    assert [(c["name"], c["category"], c["count"]) for c in one["codes_today"]] == [
        ("Согласен", "answered", 2), ("Отказ", "answered", 1)]
    assert sorted(one["pool_ids"]) == sorted([world.pool_id, second_id])
    assert one["sip"] == {"login": "op1phone", "online": True, "reachable": False,
                          "changed_at": one["sip"]["changed_at"], "detail": "no OPTIONS answer"}
    assert two["state"] == "paused" and two["reason"] == "lunch" and two["sip"] is None
    assert two["talk_s_today"] == 0 and two["codes_today"] == [] and two["pool_ids"] == [world.pool_id]
    assert [(c["attempt_id"], c["state"], c["operator_id"], c["number"]) for c in snap["live_calls"]] == [
        (live_id, "connected", op1, "+79160000003")]
    (camp,) = snap["campaigns"]
    assert camp["calls"] == {"connected": 1}
    assert {p["name"] for p in snap["pools"]} == {"Смена", "Вечер"}
    assert snap["trunks"] == [{"id": trunk_id, "name": "МТС", "is_active": True, "up": False,
                               "detail": "408 timeout", "changed_at": snap["trunks"][0]["changed_at"]}]


async def test_campaign_dialable_left_counts_due_contacts_and_is_cached(app: FastAPI) -> None:
    world = await _world(app)
    await world.start()
    now = datetime.now(UTC)
    for _ in range(3):
        await world.contact()
    await world.contact(next_call_at=now + timedelta(hours=2))  # not due yet
    await world.contact(status=ContactStatus.done)  # done
    await world.contact(status=ContactStatus.in_progress, next_call_at=now - timedelta(minutes=1))  # due
    service._dialable_cache.clear()
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        (camp,) = [c for c in (await sup.get("/api/monitoring/live")).json()["campaigns"]
                   if c["id"] == world.campaign_id]
        assert camp["dialable_left"] == 4
        assert camp["pool_ids"] == [world.pool_id] and camp["status"] == "running"
        await world.contact()
        (camp,) = [c for c in (await sup.get("/api/monitoring/live")).json()["campaigns"]
                   if c["id"] == world.campaign_id]
        assert camp["dialable_left"] == 4  # counted a moment ago: reused
        service._dialable_cache.clear()
        (camp,) = [c for c in (await sup.get("/api/monitoring/live")).json()["campaigns"]
                   if c["id"] == world.campaign_id]
        assert camp["dialable_left"] == 5

    # the count is answered from the due-contacts index, not by reading every contact
    stmt = repository.dialable_stmt([world.campaign_id]).compile(dialect=postgresql.dialect(),
                                                                 compile_kwargs={"literal_binds": True})
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join((await session.scalars(text(f"EXPLAIN {stmt}"))).all())
    assert "ix_contacts_due" in plan, plan


async def test_attempt_card_has_stage_durations_and_search_finds_it(app: FastAPI) -> None:
    world = await _world(app)
    op1 = world.operator_ids[0]
    contact_id = await world.contact(phones=["+79161112233"])
    phone_id = (await world.phones(contact_id))[0].id
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    async with app.state.sessionmaker() as session, session.begin():
        a = Attempt(campaign_id=world.campaign_id, contact_id=contact_id, phone_id=phone_id, operator_id=op1,
                    number="+79161112233", state=AttemptState.done, outcome=OutcomeCategory.answered,
                    completion_code_id=world.codes["Согласен"], answered_by="human", queued_at=t0,
                    dialed_at=t0 + timedelta(seconds=1), ringing_at=t0 + timedelta(seconds=2),
                    answered_at=t0 + timedelta(seconds=9), connected_at=t0 + timedelta(seconds=10),
                    hung_up_at=t0 + timedelta(seconds=70), wrap_up_ended_at=t0 + timedelta(seconds=80))
        other = Attempt(campaign_id=world.campaign_id, contact_id=None, number="+79169999999",
                        state=AttemptState.done, outcome=OutcomeCategory.busy, queued_at=t0, direction="inbound")
        session.add_all([a, other])
        await session.flush()
        attempt_id = a.id
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        card = (await sup.get(f"/api/attempts/{attempt_id}")).json()
        assert [(e["stage"], e["duration_s"]) for e in card["timeline"]] == [
            ("queued", 1.0), ("dialed", 1.0), ("ringing", 7.0), ("answered", 1.0), ("connected", 60.0),
            ("hung_up", 10.0), ("wrap_up_ended", None)]
        assert card["talk_s"] == 60.0 and card["wrap_up_s"] == 10.0 and card["waited_s"] == 1.0

        for typed in ("+79161112233", "8 916 111-22-33", "9161112233"):
            found = (await sup.get("/api/monitoring/attempts", params={"number": typed})).json()
            assert [f["id"] for f in found] == [attempt_id], typed
        (hit,) = found
        assert hit["operator_id"] == op1 and hit["completion_code"] == "Согласен" and hit["talk_s"] == 60.0
        assert hit["campaign_name"] == "Весна" and hit["outcome"] == "answered"
        latest = (await sup.get("/api/monitoring/attempts", params={"campaign_id": world.campaign_id,
                                                                    "limit": 1})).json()
        assert [f["id"] for f in latest] == [other.id]
        mine = (await sup.get("/api/monitoring/attempts", params={"operator_id": op1})).json()
        assert [f["id"] for f in mine] == [attempt_id]
        # a finished call to a number that is no contact's (a manual dial) is found too
        found = (await sup.get("/api/monitoring/attempts", params={"number": "8 (916) 999-99-99"})).json()
        assert [f["id"] for f in found] == [other.id]
        # a customer's own call (engine/inbound.py) says so, in the search and on the card
        assert [f["direction"] for f in found] == ["inbound"] and hit["direction"] == "outbound"
        assert (await sup.get(f"/api/attempts/{other.id}")).json()["direction"] == "inbound"
        assert card["direction"] == "outbound"
        r = await sup.get("/api/monitoring/attempts", params={"number": "abc"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "number"

    async with await client_for(app, "op", roles=("operator",)) as op:
        assert (await op.get("/api/monitoring/attempts")).status_code == 403
        assert (await op.get("/api/monitoring/live")).status_code == 403


async def test_snapshot_without_operators_or_campaigns(app: FastAPI, admin: httpx.AsyncClient) -> None:
    r = await admin.get("/api/monitoring/live")
    assert r.status_code == 200
    snap = r.json()
    assert snap["operators"] == [] and snap["campaigns"] == [] and snap["trunks"] == []
