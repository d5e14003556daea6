"""The recovery rule at start, in process (the crash test proves it with a killed process)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.repository import EngineAlreadyRunning
from dialer.engine.runner import EngineConfig
from dialer.models import Attempt, Contact, EngineRun, OperatorStateLog
from dialer.models.enums import AttemptState, DialMode, OperatorState, OutcomeCategory
from tests.engine.engine_world import NOW, Harness, dead_run, engine_world, scenario


async def test_attempts_of_dead_runs_are_closed_as_errors(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive)
    contacts = [await world.contact() for _ in range(4)]
    phones = [(await world.phones(c))[0].e164 for c in contacts]
    dead_id = await dead_run(sessionmaker)
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
        AttemptState.done, OutcomeCategory.error, world.codes["engine_restarted"], "engine restarted")
    # hung up when last known alive: the dead run's last heartbeat (later than the call's own last stage here)
    assert closed.hung_up_at == run.heartbeat_at and closed.wrap_up_ended_at == run.heartbeat_at
    assert preview not in rows  # never placed: nothing to record
    # the recovered attempt counts and goes through the strategy: not redialled at once
    async with sessionmaker() as session:
        contact = await session.get(Contact, contacts[1])
    assert contact is not None
    assert (contact.attempts_total, contact.last_outcome) == (1, OutcomeCategory.error)
    assert contact.next_call_at is not None and contact.next_call_at > NOW


async def test_recovered_contacts_are_not_redialled_at_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The crash finding: every contact a crash cut off was dialled again within a second of the restart."""
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive)
    contacts = [await world.contact() for _ in range(3)]
    for c in contacts:
        await world.live_attempt(c, (await world.phones(c))[0].e164, AttemptState.ringing, dialed_at=NOW)
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.0, machine=0.0, busy=1.0))
    async with h.running():
        await h.advance(120)
    async with sessionmaker() as session:
        redialled = await session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.contact_id.in_(contacts), Attempt.hangup_cause != "engine restarted"))
        totals = (await session.scalars(select(Contact.attempts_total).where(Contact.id.in_(contacts)))).all()
    assert redialled == 0
    assert sorted(totals) == [1, 1, 1]


async def test_a_live_process_of_this_host_is_never_declared_dead(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """However late its heartbeat: a stalled engine is still an engine (two would dial at once)."""
    await engine_world(sessionmaker, operators=1)
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    try:
        async with sessionmaker() as session, session.begin():
            session.add(EngineRun(pid=other.pid, host=socket.gethostname(),
                                  started_at=func.now(), heartbeat_at=func.now() - timedelta(minutes=10)))
        h = Harness(sessionmaker, scenario(), sim_operators=False, config=EngineConfig(drain_s=0))
        with pytest.raises(EngineAlreadyRunning):
            async with h.running():
                pass
        # the same pid given to a process younger than the run: the run's own process is gone
        async with sessionmaker() as session, session.begin():
            await session.execute(update(EngineRun).values(started_at=func.now() - timedelta(hours=1)))
        h = Harness(sessionmaker, scenario(), sim_operators=False, config=EngineConfig(drain_s=0))
        async with h.running():
            assert h.engine.recovery is not None and len(h.engine.recovery.dead_runs) == 1
    finally:
        other.kill()
        await other.wait()


async def test_a_run_that_lost_its_lease_stops_dialling(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The fence: another engine declared this run dead (its row stopped); at its next heartbeat it stops."""
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive)
    for _ in range(5):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.0, machine=0.0, busy=0.0),
                config=EngineConfig(drain_s=0, heartbeat_s=0.05))
    async with h.engine.running():
        async with sessionmaker() as session, session.begin():
            await session.execute(update(EngineRun).where(EngineRun.id == h.engine.run_id)
                                  .values(stopped_at=func.now()))
        await asyncio.wait_for(h.engine.stopped.wait(), 30)
        assert h.engine.fenced


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
