"""THE crash test: a real engine process is killed with SIGKILL mid-campaign and started again.

After the restart: the attempts that were in flight are closed as errors ("engine restarted"), every result
recorded before the kill is intact, no contact ever has two live attempts, the killed run's contacts are dialled
again, and the campaign goes on; SIGTERM then drains the second engine cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Attempt, Contact, EngineRun, OperatorStateLog
from dialer.models.enums import AttemptState, ContactStatus, DialMode, OutcomeCategory
from tests.engine.engine_world import engine_world

ROOT = Path(__file__).resolve().parents[2]


def _spawn(url: str, seed: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "tests.engine.engine_process", url, str(seed)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_for(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _double_live(session: AsyncSession) -> int:
    """Contacts with more than one live attempt (must always be none)."""
    return int(await session.scalar(text(
        "SELECT count(*) FROM (SELECT contact_id FROM attempts WHERE state <> 'done' GROUP BY contact_id "
        "HAVING count(*) > 1) AS t")) or 0)


@pytest.mark.slow
async def test_sigkill_mid_campaign_and_restart(sessionmaker: async_sessionmaker[AsyncSession], db_url: str,
                                                tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    world = await engine_world(sessionmaker, operators=6, mode=DialMode.predictive, max_attempts_per_contact=1,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=30,
                               answer_timeout_s=3)
    for _ in range(400):
        await world.contact()
    await world.start()

    async def done() -> int:
        return await world.count(Attempt.state == AttemptState.done)

    async def live() -> int:
        return await world.count(Attempt.state != AttemptState.done)

    first = _spawn(db_url, 1, log)
    try:
        async def busy_enough() -> bool:
            return await done() >= 40 and await live() >= 3

        await _wait_for(busy_enough, 30, "the first engine to place calls")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL

    async with sessionmaker() as session:
        recorded = {a.id: (a.outcome, a.completion_code_id, a.hung_up_at) for a in (await session.scalars(
            select(Attempt).where(Attempt.state == AttemptState.done))).all()}
        in_flight = {a.id: a.contact_id for a in (await session.scalars(
            select(Attempt).where(Attempt.state != AttemptState.done))).all()}
        dead_run = (await session.scalars(select(EngineRun).order_by(EngineRun.id.desc()))).first()
        assert await _double_live(session) == 0
    assert in_flight and dead_run is not None and dead_run.stopped_at is None

    second = _spawn(db_url, 2, log)
    try:
        async def recovered() -> bool:
            async with sessionmaker() as session:
                rows = (await session.execute(select(Attempt.state, Attempt.outcome, Attempt.hangup_cause)
                                              .where(Attempt.id.in_(list(in_flight))))).all()
            return all(s is AttemptState.done for s, _, _ in rows)

        await _wait_for(recovered, 20, "the in-flight attempts to be closed")
        before = await done()

        async def continues() -> bool:
            async with sessionmaker() as session:
                assert await _double_live(session) == 0
            return await done() >= before + 30

        await _wait_for(continues, 30, "the campaign to go on after the restart")

        # A lost call is an attempt like any other: counted, and the strategy decides what follows — here
        # (max_attempts_per_contact=1) the contact is finished, where it used to be dialled again at once.
        async with sessionmaker() as session:
            redialled = await session.scalar(select(func.count()).select_from(Attempt).where(
                Attempt.contact_id.in_(list(in_flight.values())), Attempt.id.not_in(list(in_flight))))
            lost = (await session.execute(select(Contact.attempts_total, Contact.status).where(
                Contact.id.in_(list(in_flight.values()))))).all()
        assert redialled == 0
        assert {(n, status) for n, status in lost} == {(1, ContactStatus.done)}
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()
    except AssertionError:
        print(log.read_text())
        raise
    finally:
        if second.poll() is None:
            second.kill()

    async with sessionmaker() as session:
        closed = (await session.execute(select(Attempt.outcome, Attempt.hangup_cause, Attempt.completion_code_id)
                                        .where(Attempt.id.in_(list(in_flight))))).all()
        assert {(o, c, code) for o, c, code in closed} == {(OutcomeCategory.error, "engine restarted",
                                                            world.codes["engine_restarted"])}
        now_recorded = {a.id: (a.outcome, a.completion_code_id, a.hung_up_at) for a in (await session.scalars(
            select(Attempt).where(Attempt.id.in_(list(recorded))))).all()}
        assert now_recorded == recorded  # nothing recorded before the kill was touched
        assert await session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.state != AttemptState.done)) == 0  # the drain finished or closed everything
        runs = (await session.scalars(select(EngineRun).order_by(EngineRun.id))).all()
        assert len(runs) == 2 and all(r.stopped_at is not None for r in runs)
        assert await session.scalar(select(func.count()).select_from(OperatorStateLog).where(
            OperatorStateLog.ended_at.is_(None))) == 0
        every = (await session.scalars(select(Attempt).where(Attempt.campaign_id == world.campaign_id))).all()
        assert all(a.outcome is not None and a.completion_code_id is not None for a in every)
