"""A conversation an engine crash cut off reaches its operator (or a supervisor) for its result (the crash finding:
the results of the customers who were talking to an operator were lost)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Attempt, Contact, Operator
from dialer.models.enums import AttemptState, ContactStatus, DialMode, OutcomeCategory
from tests.conftest import client_for, make_user, token_for
from tests.engine.engine_world import NOW, Harness, dead_run, engine_world, scenario


async def test_a_cut_off_conversation_gets_its_result_later(app: FastAPI, admin: httpx.AsyncClient,
                                                            sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive)
    talker, other = world.operator_ids
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    dead_id = await dead_run(sessionmaker)
    attempt_id = await world.live_attempt(contact, number, AttemptState.connected, engine_run_id=dead_id,
                                          connected_at=NOW, operator_id=talker)
    async with Harness(sessionmaker, scenario(), sim_operators=False).running():
        pass  # the start recovers it: closed with the placeholder code, counted, the strategy applied

    pending = (await admin.get("/api/monitoring/attempts", params={"result_pending": "true"})).json()
    assert [a["id"] for a in pending] == [attempt_id]

    talker_user = await make_user(app, "talker", roles=("operator",))
    other_user = await make_user(app, "other", roles=("operator",))
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == talker).values(user_id=talker_user))
        await session.execute(update(Operator).where(Operator.id == other).values(user_id=other_user))
    body = {"completion_code_id": world.codes["never_call"], "comment": "asked not to be called"}
    async with await client_for(app, "other2", roles=("operator",)) as stranger:
        assert (await stranger.get("/api/workplace/results-pending")).status_code == 404  # not an operator
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {await token_for(app, other_user)}"}) as c:
        assert (await c.get("/api/workplace/results-pending")).json() == []
        assert (await c.post(f"/api/workplace/results-pending/{attempt_id}", json=body)).status_code == 404
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {await token_for(app, talker_user)}"}) as c:
        mine = (await c.get("/api/workplace/results-pending")).json()
        assert [a["id"] for a in mine] == [attempt_id]
        r = await c.post(f"/api/workplace/results-pending/{attempt_id}", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == OutcomeCategory.answered.value
        again = await c.post(f"/api/workplace/results-pending/{attempt_id}", json=body)
        assert again.status_code == 409

    async with sessionmaker() as session:
        attempt = await session.get(Attempt, attempt_id)
        stored = await session.get(Contact, contact)
    assert attempt is not None and stored is not None
    assert (attempt.completion_code_id, attempt.comment) == (world.codes["never_call"], "asked not to be called")
    # the placeholder's count stands (one attempt, counted once); the recorded code decides: never call again
    assert (stored.attempts_total, stored.status, stored.next_call_at) == (1, ContactStatus.done, None)
    assert (await admin.get("/api/monitoring/attempts", params={"result_pending": "true"})).json() == []
    # a supervisor records results too, but only where one is pending
    r = await admin.post(f"/api/attempts/{attempt_id}/result", json=body)
    assert r.status_code == 409
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Attempt)) == 1
