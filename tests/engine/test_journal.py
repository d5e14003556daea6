"""The write-behind journal: ordered units, one row per operator period, done attempts never touched again, and a
failing follow-up of one attempt that loses nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import journal as journal_module
from dialer.engine import repository as repo
from dialer.engine.journal import Journal, running
from dialer.engine.outcome import AttemptResult
from dialer.models import Attempt, Contact, OperatorStateLog
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from tests.engine.engine_world import NOW, engine_world


def _result(attempt_id: int, contact_id: int, number: str, campaign_id: int, code: int) -> AttemptResult:
    return AttemptResult(attempt_id=attempt_id, campaign_id=campaign_id, contact_id=contact_id, phone_id=None,
                         number=number, category=OutcomeCategory.busy, completion_code_id=code)


async def test_a_failing_follow_up_loses_nothing_else(sessionmaker: async_sessionmaker[AsyncSession],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    world = await engine_world(sessionmaker, operators=1)
    plan = await world.plan()
    contacts = [await world.contact() for _ in range(3)]
    numbers = [(await world.phones(c))[0].e164 for c in contacts]
    ids = [await world.live_attempt(c, n, AttemptState.ringing) for c, n in zip(contacts, numbers, strict=True)]
    real = journal_module.apply_result
    calls: list[int] = []

    async def flaky(session: AsyncSession, plan: Any, result: AttemptResult, now: Any) -> Any:
        calls.append(result.attempt_id)
        if result.attempt_id == ids[1]:
            raise RuntimeError("boom")
        return await real(session, plan, result, now)

    real_batch = journal_module.apply_results
    batches: list[list[int]] = []

    async def flaky_batch(session: AsyncSession, items: Any) -> Any:
        batches.append([r.attempt_id for _, r, _ in items])
        if ids[1] in batches[-1]:
            raise RuntimeError("boom")
        return await real_batch(session, items)

    monkeypatch.setattr(journal_module, "apply_result", flaky)
    monkeypatch.setattr(journal_module, "apply_results", flaky_batch)
    journal = Journal(sessionmaker, retry_s=0.01)
    async with running(journal):
        for attempt_id, contact_id, n in zip(ids, contacts, numbers, strict=True):
            journal.attempt(attempt_id, ringing_at=NOW)
            journal.finish(attempt_id, {"outcome": OutcomeCategory.busy, "completion_code_id": world.codes["busy"],
                                        "hung_up_at": NOW + timedelta(seconds=5), "sip_code": 486},
                           _result(attempt_id, contact_id, n, world.campaign_id, world.codes["busy"]), plan, NOW)
        await journal.drained()
    assert journal.failures == 1 and journal.finished_attempts == 3
    # the optimistic unit (the whole batch at once) failed as a whole and was redone carefully, one by one
    assert batches == [ids] and sorted(calls) == sorted(ids)
    async with sessionmaker() as session:
        attempts = {a.id: a for a in (await session.scalars(select(Attempt))).all()}
        counted = {c.id: c.attempts_total for c in (await session.scalars(select(Contact))).all()}
    assert all(a.state is AttemptState.done and a.sip_code == 486 and a.ringing_at == NOW for a in attempts.values())
    assert counted[contacts[0]] == 1 and counted[contacts[2]] == 1 and counted[contacts[1]] == 0


async def test_periods_and_done_attempts(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1)
    op = world.operator_ids[0]
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    done = await world.live_attempt(contact, number, AttemptState.done, outcome=OutcomeCategory.busy)
    journal = Journal(sessionmaker)
    async with running(journal):
        # several changes of one operator in one unit: closed rows and one open period
        for i, state in enumerate((OperatorState.ready, OperatorState.reserved, OperatorState.ready)):
            journal.period(repo.OperatorPeriod(op, state, "", world.campaign_id, None, NOW + timedelta(seconds=i)))
        journal.attempt(done, state=AttemptState.ringing, ringing_at=NOW)  # a done attempt is never revived
        await journal.drained()
        journal.period(repo.OperatorPeriod(op, OperatorState.paused, "lunch", None, None, NOW + timedelta(seconds=9)))
        journal.period(repo.OperatorPeriod(op, OperatorState.offline, "", None, None, NOW + timedelta(seconds=20)))
        await journal.drained()
    async with sessionmaker() as session:
        rows = (await session.scalars(select(OperatorStateLog).order_by(OperatorStateLog.id))).all()
        attempt = await session.get(Attempt, done)
    assert [(r.state, r.reason, (r.ended_at - r.started_at).total_seconds()) for r in rows] == [
        (OperatorState.ready, "", 1.0), (OperatorState.reserved, "", 1.0), (OperatorState.ready, "", 7.0),
        (OperatorState.paused, "lunch", 11.0)]  # offline ends the last period and opens none
    assert attempt is not None and attempt.state is AttemptState.done and attempt.ringing_at is None


async def test_a_burst_of_results_is_written_in_short_units_in_order(
        sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    world = await engine_world(sessionmaker, operators=1)
    plan = await world.plan()
    contacts = [await world.contact() for _ in range(7)]
    numbers = [(await world.phones(c))[0].e164 for c in contacts]
    ids = [await world.live_attempt(c, n, AttemptState.ringing) for c, n in zip(contacts, numbers, strict=True)]
    units: list[list[int]] = []
    real = journal_module.notify

    async def spy(session: AsyncSession, events: Any) -> None:
        units.append([e.attempt_id for e in events])
        await real(session, events)

    monkeypatch.setattr(journal_module, "notify", spy)
    journal = Journal(sessionmaker, unit_finishes=3)
    from dialer.engine.events import AttemptFinished

    for attempt_id, contact_id, n in zip(ids, contacts, numbers, strict=True):
        journal.finish(attempt_id, {"outcome": OutcomeCategory.busy, "completion_code_id": world.codes["busy"],
                                    "hung_up_at": NOW}, _result(attempt_id, contact_id, n, world.campaign_id,
                                                                world.codes["busy"]), plan, NOW)
        journal.event(AttemptFinished(at=NOW, attempt_id=attempt_id, campaign_id=world.campaign_id,
                                      contact_id=contact_id, operator_id=None, category="busy",
                                      completion_code_id=world.codes["busy"], abandoned=False, waited_s=None))
    assert journal.pending() == 14
    async with running(journal):
        await journal.drained()
    # units of 3 finishes; an event goes with the unit open when it was appended, never before its rows
    assert units == [ids[:2], ids[2:5], ids[5:]] and journal.flushes == 3 and journal.finished_attempts == 7
    async with sessionmaker() as session:
        assert all(a.state is AttemptState.done for a in (await session.scalars(select(Attempt))).all())
