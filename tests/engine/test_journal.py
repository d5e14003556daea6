"""The write-behind journal: ordered units, one row per operator period, done attempts never touched again, and a
failing follow-up of one attempt that loses nothing else."""

from __future__ import annotations

import asyncio
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


async def test_rows_deleted_meanwhile_never_sink_a_unit(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The deletion finding: a campaign deleted with its attempts while the engine still had their records queued
    made every unit fail on foreign keys until the journal gave whole batches up (results of other calls included).
    A period naming a vanished campaign or attempt keeps its time without them; the rest of the unit is written."""
    world = await engine_world(sessionmaker, operators=2)
    plan = await world.plan()
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    attempt_id = await world.live_attempt(contact, number, AttemptState.ringing)
    op_a, op_b = world.operator_ids
    journal = Journal(sessionmaker, retry_s=0.01)
    async with running(journal):
        journal.period(repo.OperatorPeriod(op_a, OperatorState.in_call, "", 987_654, 987_655, NOW))
        journal.period(repo.OperatorPeriod(987_656, OperatorState.ready, "", None, None, NOW))  # operator deleted
        journal.period(repo.OperatorPeriod(op_b, OperatorState.ready, "", world.campaign_id, None, NOW))
        journal.finish(attempt_id, {"outcome": OutcomeCategory.busy, "completion_code_id": world.codes["busy"],
                                    "hung_up_at": NOW + timedelta(seconds=5)},
                       _result(attempt_id, contact, number, world.campaign_id, world.codes["busy"]), plan, NOW)
    assert journal.failures == 1  # the first, optimistic try; the careful one drops the vanished references
    async with sessionmaker() as session:
        periods = {p.operator_id: p for p in (await session.scalars(select(OperatorStateLog))).all()}
        attempt = await session.get(Attempt, attempt_id)
    assert attempt is not None and attempt.state is AttemptState.done
    assert (periods[op_a].state, periods[op_a].campaign_id, periods[op_a].attempt_id) == (OperatorState.in_call,
                                                                                          None, None)
    assert periods[op_b].campaign_id == world.campaign_id


async def test_a_refused_part_costs_only_itself(sessionmaker: async_sessionmaker[AsyncSession],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever else the database refuses in a unit (here: the processed commands), the results are committed on
    the careful retry instead of the batch being given up."""
    world = await engine_world(sessionmaker, operators=1)
    plan = await world.plan()
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    attempt_id = await world.live_attempt(contact, number, AttemptState.ringing)

    async def refuse(session: AsyncSession, commands: Any) -> None:
        raise RuntimeError("refused")

    monkeypatch.setattr(repo, "mark_commands", refuse)
    journal = Journal(sessionmaker, retry_s=0.01)
    async with running(journal):
        journal.command_done(1, {"ok": True})
        journal.finish(attempt_id, {"outcome": OutcomeCategory.busy, "completion_code_id": world.codes["busy"],
                                    "hung_up_at": NOW + timedelta(seconds=5)},
                       _result(attempt_id, contact, number, world.campaign_id, world.codes["busy"]), plan, NOW)
    async with sessionmaker() as session:
        attempt = await session.get(Attempt, attempt_id)
        stored = await session.get(Contact, contact)
    assert attempt is not None and attempt.state is AttemptState.done
    assert stored is not None and stored.attempts_total == 1


async def test_a_stop_does_not_hang_on_an_unreachable_database() -> None:
    """The outage finding: with the database gone the journal retried for ever and SIGTERM never ended the process.
    Closing gives an unreachable database ``close_grace_s`` and then gives up what is left (recovery's job)."""
    from dialer.db import make_engine, make_sessionmaker

    engine = make_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1)
    journal = Journal(make_sessionmaker(engine), retry_s=0.01, close_grace_s=0.5)
    task = asyncio.create_task(journal.run())
    try:
        journal.period(repo.OperatorPeriod(1, OperatorState.ready, "", None, None, NOW))
        await asyncio.sleep(0.2)  # it is retrying by now
        journal.close()
        await asyncio.wait_for(task, 60)  # a bound for a hang, not a speed: the grace is half a second
        assert journal.failures >= 1 and journal.pending() == 0
    finally:
        task.cancel()
        await engine.dispose()
