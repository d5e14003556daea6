"""Transfers through the API (#12 §2): who may ask for which, the checks before the engine, and a transfer carried out
by the real engine (virtual time, simulated telephony) — the receiving operator's card note, the call card's stage,
the attempt search and the audit log."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.commands import CommandKind
from dialer.engine.runner import EngineConfig
from dialer.models import AuditEntry, Operator
from dialer.models.enums import OperatorState
from dialer.telephony.traffic import Constant
from tests.conftest import client_for, make_user, token_for
from tests.engine.engine_world import EngineWorld, Harness, engine_world, scenario


async def _as_operator(app: FastAPI, world: EngineWorld, index: int, login: str, **kw: Any) -> httpx.AsyncClient:
    user_id = await make_user(app, login, roles=("operator",), **kw)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == world.operator_ids[index]).values(user_id=user_id))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers={"Authorization": f"Bearer {await token_for(app, user_id)}"})


async def test_who_may_transfer_what(app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2)
    op2 = world.operator_ids[1]
    async with await client_for(app, "watcher", roles=("supervisor",)) as supervisor:
        # a supervisor has no panel of his own; an operator no floor
        r = await supervisor.post("/api/workplace/transfer", json={"to": "operator", "operator_id": op2})
        assert r.status_code == 403
        targets = await supervisor.get("/api/supervisor/transfer-targets")
        assert targets.status_code == 200 and targets.json()["external_allowed"] is True
    async with await _as_operator(app, world, 0, "op1") as me:
        r = await me.post(f"/api/supervisor/operators/{op2}/transfer", json={"to": "operator", "operator_id": op2})
        assert r.status_code == 403
        targets = (await me.get("/api/workplace/transfer-targets")).json()
        assert targets["external_allowed"] is False  # the operator role does not hold transfers.external
        assert {p["name"] for p in targets["pools"]} == {"Смена"} and targets["skills"][0]["name"] == "Продажи"
        # no conversation: nothing to transfer
        r = await me.post("/api/workplace/transfer", json={"to": "pool", "pool_id": world.pool_id})
        assert r.status_code == 409
        r = await me.post("/api/workplace/transfer", json={"to": "external", "number": "+74951234567"})
        assert r.status_code == 409
        r = await me.post("/api/workplace/consult/complete")
        assert r.status_code == 409
        # bad input is told clearly
        r = await me.post("/api/workplace/transfer", json={"to": "moon"})
        assert r.status_code == 422
    async with await _as_operator(app, world, 1, "op2", grants={"transfers.external": True}) as allowed:
        targets = (await allowed.get("/api/workplace/transfer-targets")).json()
        assert targets["external_allowed"] is True


async def test_a_transfer_through_the_api_reaches_the_engine_and_the_next_operators_card(
        app: FastAPI, admin: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], db_url: str) -> None:
    world = await engine_world(sessionmaker, operators=2, contacts=1, wrap_up_s=120)
    await world.start()
    op1, op2 = world.operator_ids
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(60.0))
    h = Harness(sessionmaker, traffic, human_operators=(op1, op2), database_url=db_url,
                config=EngineConfig(drain_s=0, seed=1), patience=Constant(300.0))
    first = await _as_operator(app, world, 0, "op1", grants={"transfers.external": True})
    second = await _as_operator(app, world, 1, "op2")
    async with h.running(), first, second:
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await h.advance(5)
        await h.settle()
        assert h.engine.operators[op1].state is OperatorState.in_call
        assert (await h.engine.submit(CommandKind.ready, op2))["ok"]
        await h.settle()
        targets = (await first.get("/api/workplace/transfer-targets")).json()
        assert [(o["id"], o["state"]) for o in targets["operators"]] == [(op2, "ready")]
        # a number on no list but not a number: refused before the engine
        r = await first.post("/api/workplace/transfer", json={"to": "external", "number": "12"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "number"
        # the call the requester saw is over (another attempt): refused, nothing moves
        r = await first.post("/api/workplace/transfer", json={"to": "operator", "operator_id": op2,
                                                              "attempt_id": 10**9})
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "attempt_id", r.text
        assert h.engine.operators[op1].state is OperatorState.in_call
        r = await first.post("/api/workplace/transfer", json={"to": "operator", "operator_id": op2,
                                                              "comment": "хочет скидку"})
        assert r.status_code == 200, r.text
        await h.advance(2)
        await h.settle()
        assert h.engine.operators[op2].state is OperatorState.in_call
        mine = (await first.get("/api/workplace/state")).json()
        theirs = (await second.get("/api/workplace/state")).json()
        assert mine["state"] == "wrap_up" and theirs["state"] == "in_call"
        attempt_id = theirs["call"]["attempt_id"]
        assert mine["call"]["attempt_id"] == attempt_id  # the same attempt, one row
        note = theirs["call"]["transfer"]
        assert (note["from_operator_id"], note["comment"], note["kind"]) == (op1, "хочет скидку", "operator")
        assert mine["call"]["transfer"] is None
        # the receiving operator must choose a code; the first one's wrap-up after the handover ends without one
        r = await second.post("/api/workplace/complete", json={"comment": "no code"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "completion_code_id"
        r = await first.post("/api/workplace/complete", json={"comment": "передал в продажи"})
        assert r.status_code == 200, r.text
        await h.settle()
        assert h.engine.operators[op1].state is OperatorState.ready
        live = (await admin.get("/api/monitoring/live")).json()
        [call] = [c for c in live["live_calls"] if c["attempt_id"] == attempt_id]
        assert (call["operator_id"], call["transfer_kind"], call["transfer_result"]) == (op2, "operator",
                                                                                         "connected")
    card = (await admin.get(f"/api/attempts/{attempt_id}")).json()
    [stage] = card["transfers"]
    assert (stage["kind"], stage["source"], stage["from_operator_id"], stage["to_operator_id"], stage["result"]) == (
        "operator", "panel", op1, op2, "connected")
    number = card["number"]
    [brief] = (await admin.get("/api/monitoring/attempts", params={"number": number})).json()
    assert brief["transfers"] == 1
    async with sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.object_type == "attempts",
                                                                  AuditEntry.object_id == str(attempt_id)))).all()
    assert [(e.user_login, e.event) for e in entries] == [("op1", "transfer to operator: operator op1")]
    assert entries[0].changes["to_operator_id"] == op2 and entries[0].changes["attempt_id"] == attempt_id
