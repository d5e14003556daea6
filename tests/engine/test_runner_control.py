"""Control of running campaigns: pause, stop (operators released), the safety auto-stop, the schedule, and the
wrap-up timeout that applies the strategy's default code."""

from __future__ import annotations

import dataclasses
from datetime import time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.campaign.status import Action
from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.engine.runner import EngineConfig
from dialer.models import AuditEntry, Campaign, Strategy
from dialer.models.enums import AttemptState, CampaignStatus, DialMode, OperatorState, OutcomeCategory
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import NOW, Harness, engine_world, scenario


async def test_pause_and_stop(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=4, mode=DialMode.predictive, max_attempts_per_contact=1)
    for _ in range(300):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.3, timeout=20, answer_after=Constant(8.0), talk=Constant(60.0)))
    async with h.running():
        await h.advance(120)
        assert h.engine.placed > 0
        await world.act(Action.pause)
        h.engine.wake()
        await h.advance(1)
        placed = h.engine.placed
        await h.advance(300)
        assert h.engine.placed == placed  # paused: nothing new; the calls in flight ended by themselves
        assert await world.count(AttemptState.done != AttemptState.done) == 0
        assert not h.engine.attempts
        await world.act(Action.resume)
        h.engine.wake()
        await h.advance(20)
        assert h.engine.placed > placed
        # stop while calls ring: they are cancelled, reserved operators are let go, nothing new
        await h.advance(5)
        ringing = [x for x in h.engine.attempts.values() if x.state in (AttemptState.dialing, AttemptState.ringing)]
        assert ringing
        await world.act(Action.stop)
        h.engine.wake()
        await h.advance(1)
        placed = h.engine.placed
        for call in ringing:
            assert call.finished and call.hangup_cause == "cancelled"
        await h.advance(200)
        assert h.engine.placed == placed
        assert world.campaign_id not in h.engine.campaigns
        states = {op.state for op in h.engine.operators.values()}
        assert states <= {OperatorState.ready, OperatorState.paused}
        assert all(op.campaign_id is None for op in h.engine.operators.values())
    events = h.drain_events()
    assert [e.status for e in events if isinstance(e, ev.CampaignStatusChanged)] == \
        ["running", "paused", "running", "stopped"]
    assert all(a.state is AttemptState.done for a in await world.attempts())


async def test_auto_stop_after_five_errors_in_thirty_seconds(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive)
    for _ in range(30):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.0, machine=0.0, busy=0.0, failed=1.0))
    async with h.running():
        await h.advance(60)
        await h.settle()
        assert await world.status() is CampaignStatus.auto_paused
        placed = h.engine.placed
        await h.advance(120)
        # two operators: the fifth failure stops it; the other operator's call was already ringing
        assert h.engine.placed == placed <= 6
        campaign = h.engine.campaigns[world.campaign_id]
        assert campaign.status is CampaignStatus.auto_paused
        # acknowledged by a supervisor: it dials again
        await world.act(Action.acknowledge, "the trunk is fixed")
        h.engine.wake()
        await h.advance(3)
        assert h.engine.placed > placed
    events = h.drain_events()
    paused = [e for e in events if isinstance(e, ev.CampaignAutoPaused)]
    assert len(paused) >= 1 and "5 errors in a row" in paused[0].reason
    attempts = await world.attempts()
    assert {a.outcome for a in attempts} == {OutcomeCategory.error}
    # calls still ringing when the test stops the engine are closed by its drain
    assert {a.hangup_cause for a in attempts} <= {"503 Service Unavailable", "engine stopped"}
    assert sum(1 for a in attempts if a.sip_code == 503) >= 5


async def test_errors_spread_over_more_than_thirty_seconds_do_not_stop(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive)
    for _ in range(10):
        await world.contact()
    await world.start()
    # one operator, each failure signalled after 8 s: five in a row take 40 s
    traffic = dataclasses.replace(scenario(human=0.0, machine=0.0, busy=0.0, failed=1.0), busy_after_s=Constant(8.0))
    h = Harness(sessionmaker, traffic)
    async with h.running():
        await h.advance(80)
        await h.settle()
        assert await world.status() is CampaignStatus.running
        assert h.engine.placed >= 9


async def test_outside_the_schedule_nothing_is_dialled(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2)
    for _ in range(5):
        await world.contact()
    # NOW is Wednesday 13:00 in Moscow: the schedule opens at 13:10
    await world.schedule(2, time(13, 10), time(18, 0))
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(590)
        assert h.engine.placed == 0
        await h.advance(30)
        assert h.engine.placed > 0
    changes = [e for e in h.drain_events() if isinstance(e, ev.CampaignScheduleChanged)]
    assert [e.open for e in changes] == [True]


async def test_wrap_up_timeout_applies_the_default_code(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, wrap_up_s=30)
    op_id = world.operator_ids[0]
    await world.contact()
    await world.start()
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(20.0))
    # a human operator who never sets a code (his phone is simulated; he does nothing else)
    h = Harness(sessionmaker, traffic, human_operators=(op_id,), config=EngineConfig(drain_s=0, seed=1))
    async with h.running():
        assert (await h.engine.submit(CommandKind.ready, op_id))["state"] == "ready"
        await h.advance(25)  # answered at 2 s, connected at 2.2 s, the customer hangs up at 22.2 s
        assert h.engine.operators[op_id].state is OperatorState.wrap_up
        await h.advance(27)  # 52 s: the 30 s of wrap-up are not over
        assert h.engine.operators[op_id].state is OperatorState.wrap_up
        await h.advance(1)
        assert h.engine.operators[op_id].state is OperatorState.ready
    (attempt,) = await world.attempts()
    assert attempt.completion_code_id == world.default_code_id and attempt.outcome is OutcomeCategory.answered
    assert 29.9 <= (attempt.wrap_up_ended_at - attempt.hung_up_at).total_seconds() <= 30.1
    states = [p.state for p in await world.periods(op_id)]
    assert states == [OperatorState.ready, OperatorState.reserved, OperatorState.ringing, OperatorState.in_call,
                      OperatorState.wrap_up, OperatorState.ready, OperatorState.offline][:len(states)]


async def test_operator_asks_for_a_pause_during_a_call(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1)
    op_id = world.operator_ids[0]
    await world.contact()
    await world.contact()
    await world.start()
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(20.0))
    h = Harness(sessionmaker, traffic, human_operators=(op_id,))
    async with h.running():
        await h.engine.submit(CommandKind.ready, op_id)
        await h.advance(10)
        result = await h.engine.submit(CommandKind.pause, op_id, reason="lunch")
        assert result == {"ok": True, "pending": "paused", "state": "in_call", "reason": ""}
        # completing during the conversation is kept until it ends
        result = await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Отказ"])
        assert result["applied"] == "at hang-up"
        await h.advance(20)
        op = h.engine.operators[op_id]
        assert (op.state, op.reason) == (OperatorState.paused, "lunch")
        await h.advance(120)
        assert len(await world.attempts()) == 1  # on a break: the second contact waits
        refused = await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Отказ"])
        assert refused["ok"] is False and "no call to complete" in refused["error"]
    (attempt,) = await world.attempts()
    assert attempt.completion_code_id == world.codes["Отказ"]


async def test_a_draft_campaign_starts_at_its_start_time(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               contacts=5)
    await world.update(Campaign, world.campaign_id, start_at=NOW + timedelta(minutes=10))
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(300)
        h.engine.wake()
        await h.advance(5)
        assert await world.status() is CampaignStatus.draft and not await world.attempts()
        await h.advance(300)
        h.engine.wake()
        await h.advance(60)
        assert await world.status() is CampaignStatus.running
        assert await world.attempts()
    assert min(a.queued_at for a in await world.attempts()) >= NOW + timedelta(minutes=10)
    async with sessionmaker() as session:
        entry = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "campaigns", AuditEntry.event == "status: draft → running"))).one()
    assert (entry.user_login, entry.changes["status_reason"]["new"]) == ("engine", "start time reached")


async def test_a_draft_that_cannot_run_stays_a_draft(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, contacts=1)
    await world.update(Campaign, world.campaign_id, start_at=NOW - timedelta(minutes=1))
    await world.update(Strategy, world.strategy_id, phone_field_id=None)  # nothing to dial: not runnable
    h = Harness(sessionmaker, scenario())
    async with h.running():
        h.engine.wake()
        await h.advance(30)
        assert await world.status() is CampaignStatus.draft
        assert h.engine.control.start_refused == {world.campaign_id: NOW - timedelta(minutes=1)}
