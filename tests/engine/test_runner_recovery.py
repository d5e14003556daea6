"""The recovery rule at start, in process (the crash test proves it with a killed process)."""

from __future__ import annotations

import os
import socket

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.repository import EngineAlreadyRunning
from dialer.engine.runner import EngineConfig
from dialer.models import Attempt, EngineRun, OperatorStateLog
from dialer.models.enums import AttemptState, DialMode, OperatorState, OutcomeCategory
from tests.engine.engine_world import NOW, Harness, engine_world, scenario


async def test_attempts_of_dead_runs_are_closed_as_errors(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive)
    contacts = [await world.contact() for _ in range(4)]
    phones = [(await world.phones(c))[0].e164 for c in contacts]
    async with sessionmaker() as session, session.begin():
        # a run on another host whose heartbeat stopped a minute ago
        dead = EngineRun(pid=1, host="elsewhere")
        session.add(dead)
        await session.flush()
        await session.execute(update(EngineRun).where(EngineRun.id == dead.id)
                              .values(heartbeat_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1)))
        dead_id = dead.id
    done = await world.live_attempt(contacts[0], phones[0], AttemptState.done, engine_run_id=dead_id,
                                    outcome=OutcomeCategory.busy, completion_code_id=world.codes["busy"])
    talking = await world.live_attempt(contacts[1], phones[1], AttemptState.connected, engine_run_id=dead_id,
                                       connected_at=NOW, operator_id=world.operator_ids[0])
    preview = await world.live_attempt(contacts[2], phones[2], AttemptState.queued, engine_run_id=dead_id)
    await world.add(OperatorStateLog(operator_id=world.operator_ids[0], state=OperatorState.in_call,
                                     started_at=NOW, attempt_id=talking))
    h = Harness(sessionmaker, scenario(human=0.0, machine=0.0, busy=1.0), sim_operators=False)
    async with h.running():
        started = next(e for e in h.drain_events() if isinstance(e, ev.EngineStarted))
        assert started.recovered_attempts == 1
        assert h.engine.recovery is not None and h.engine.recovery.dead_runs == [dead_id]
    async with sessionmaker() as session:
        rows = {a.id: a for a in (await session.scalars(select(Attempt))).all()}
        run = await session.get(EngineRun, dead_id)
        assert run is not None and run.stopped_at is not None
        assert await session.scalar(select(func.count()).select_from(OperatorStateLog)
                                    .where(OperatorStateLog.ended_at.is_(None))) == 0
    assert rows[done].outcome is OutcomeCategory.busy and rows[done].completion_code_id == world.codes["busy"]
    closed = rows[talking]
    assert (closed.state, closed.outcome, closed.completion_code_id, closed.hangup_cause) == (
        AttemptState.done, OutcomeCategory.error, world.codes["error"], "engine restarted")
    assert closed.hung_up_at is not None and closed.wrap_up_ended_at is not None
    assert preview not in rows  # never placed: nothing to record


async def test_a_live_engine_refuses_a_second_one(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await engine_world(sessionmaker, operators=1)
    async with sessionmaker() as session, session.begin():
        session.add(EngineRun(pid=os.getpid() + 100_000, host=f"{socket.gethostname()}-other"))
    h = Harness(sessionmaker, scenario(), sim_operators=False)
    with pytest.raises(EngineAlreadyRunning):
        async with h.running():
            pass
    # this host's earlier run in this very process (a restart) is dead by definition
    async with sessionmaker() as session, session.begin():
        await session.execute(update(EngineRun).values(host=socket.gethostname(), pid=os.getpid()))
    h = Harness(sessionmaker, scenario(), sim_operators=False, config=EngineConfig(drain_s=0))
    async with h.running():
        assert h.engine.recovery is not None and len(h.engine.recovery.dead_runs) == 1
