"""Who gets which call: preview, abandoned calls on hold, personal callbacks, skills, and operators shared by
campaigns of different priorities (000 §2.17)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.models import Callback, Campaign, ContactList, OperatorSkill, Strategy, campaign_lists, campaign_pools
from dialer.models.enums import (
    AttemptState,
    CallbackKind,
    CallbackStatus,
    CampaignKind,
    DialMode,
    OperatorState,
    OutcomeCategory,
)
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import NOW, Harness, engine_world, scenario
from tests.engine.selection_data import number


async def test_preview_confirm_skip_and_timeout(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.preview, wrap_up_s=5,
                               dial_params={"preview_seconds": 10})
    op_id = world.operator_ids[0]
    contacts = [await world.contact(data={str(world.city_field_id): f"Город {i}"}) for i in range(3)]
    await world.start()
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(5.0))
    h = Harness(sessionmaker, traffic, human_operators=(op_id,))
    async with h.running():
        await h.engine.submit(CommandKind.ready, op_id)
        await h.advance(1)
        started = [e for e in h.drain_events() if isinstance(e, ev.PreviewStarted)]
        assert len(started) == 1 and started[0].operator_id == op_id and started[0].card["fields"]
        first = started[0]
        assert h.engine.operators[op_id].state is OperatorState.reserved and h.engine.placed == 0
        # skipped: never dialled, and the next contact is previewed
        assert (await h.engine.submit(CommandKind.preview_skip, op_id))["ok"]
        await h.advance(1)
        events = h.drain_events()
        assert any(isinstance(e, ev.PreviewEnded) and e.how == "skipped" for e in events)
        second = next(e for e in events if isinstance(e, ev.PreviewStarted))
        assert second.contact_id != first.contact_id and h.engine.placed == 0
        # confirmed: placed at once
        assert (await h.engine.submit(CommandKind.preview_confirm, op_id))["ok"]
        assert h.engine.placed == 1
        # answered at 4 s, talk 5 s, the 5 s wrap-up runs out (default code) at 14.2 s: the next preview
        await h.advance(13)
        third = next(e for e in h.drain_events() if isinstance(e, ev.PreviewStarted))
        # nobody acts: after preview_seconds (10) the call is placed anyway, at 24.2 s
        await h.advance(8)
        assert h.engine.placed == 1
        await h.advance(2)
        assert h.engine.placed == 2
        assert any(isinstance(e, ev.PreviewEnded) and e.how == "timeout" for e in h.drain_events())
    attempts = {a.contact_id: a for a in await world.attempts()}
    assert first.contact_id not in attempts  # the skipped preview left no attempt behind
    assert set(attempts) == {second.contact_id, third.contact_id}
    assert all(a.operator_id == op_id for a in attempts.values())
    assert set(contacts) == {first.contact_id, second.contact_id, third.contact_id}


async def test_live_answer_without_operator_hears_hold_audio_and_counts_as_abandoned(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.fixed_lines, dial_params={"max_lines": 2},
                               max_attempts_per_contact=1)
    for _ in range(6):
        await world.contact()
    await world.start()
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(20.0))
    h = Harness(sessionmaker, traffic, patience=Constant(10.0), wrap_up=Constant(1.0))
    played: list[tuple[str, str | None]] = []
    original = h.sim.play

    async def play(call_id: Any, audio: str | None) -> None:
        played.append((call_id, audio))
        await original(call_id, audio)

    h.sim.play = play  # type: ignore[method-assign]
    async with h.running():
        await h.advance(120)
    attempts = await world.attempts()
    lost = [a for a in attempts if a.outcome is OutcomeCategory.abandoned]
    late = [a for a in attempts if a.outcome is OutcomeCategory.answered
            and (a.connected_at - a.answered_at).total_seconds() > 2]
    assert lost and all(a.completion_code_id == world.codes["abandoned"] and a.connected_at is None for a in lost)
    assert all(a.hangup_side == "customer" for a in lost)
    assert late  # an operator came, after the threshold: answered, and abandoned for the statistics
    events = h.drain_events()
    holds = [e for e in events if isinstance(e, ev.CallOnHold)]
    assert holds and all(e.waited_s >= 2.0 for e in holds) and ("sim-2", "hold-music") in played
    finished = {e.attempt_id: e for e in events if isinstance(e, ev.AttemptFinished)}
    assert all(finished[a.id].abandoned for a in lost + late)
    assert not any(finished[a.id].abandoned for a in attempts if a not in lost + late)


async def test_personal_callback_goes_to_its_operator(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=3, max_attempts_per_contact=1)
    for _ in range(15):
        await world.contact()
    phone = number()
    contact = await world.contact(phones=[phone])
    chosen = world.operator_ids[2]
    cb = await world.callback(contact, phone, NOW - timedelta(minutes=1), NOW + timedelta(hours=1),
                              kind=CallbackKind.personal, operator_id=chosen)
    await world.start()
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(30.0)))
    async with h.running():
        await h.advance(600)
    (attempt,) = [a for a in await world.attempts() if a.contact_id == contact]
    assert attempt.callback_id == cb and attempt.operator_id == chosen
    async with sessionmaker() as session:
        assert (await session.get(Callback, cb)).status is CallbackStatus.done  # type: ignore[union-attr]


async def test_skill_level_decides_who_takes_the_call(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=0, max_attempts_per_contact=1)
    junior = await world.add_operator("junior", skill_level=30)
    senior = await world.add_operator("senior", skill_level=80)
    await world.add_operator("no-skill")
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Strategy).where(Strategy.id == world.strategy_id)
                              .values(skill_id=world.skill_id))
    await world.selection("Все", min_skill_level=50)
    for _ in range(8):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(20.0)))
    async with h.running():
        await h.advance(900)
    attempts = await world.attempts()
    assert len(attempts) == 8 and {a.operator_id for a in attempts} == {senior}
    assert not [p for p in await world.periods(junior) if p.state is OperatorState.reserved]
    async with sessionmaker() as session:
        levels = (await session.scalars(select(OperatorSkill.level))).all()
    assert sorted(levels) == [30, 80]


async def test_shared_operators_serve_the_higher_priority_campaign_first(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, max_attempts_per_contact=1, kind=CampaignKind.finite)
    for _ in range(6):
        await world.contact()
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(priority=80))
        other_list = ContactList(name="Осенний список")
        session.add(other_list)
        await session.flush()
        base = await session.get(Campaign, world.campaign_id)
        assert base is not None
        other = Campaign(name="Осень", strategy_id=base.strategy_id, priority=20, dial_params={},
                         completion_code_group_id=base.completion_code_group_id, kind=CampaignKind.finite)
        session.add(other)
        await session.flush()
        await session.execute(campaign_lists.insert().values(campaign_id=other.id, list_id=other_list.id))
        await session.execute(campaign_pools.insert().values(campaign_id=other.id, pool_id=world.pool_id))
        other_id, other_list_id = other.id, other_list.id
    for _ in range(6):
        await world.contact(list_id=other_list_id)
    await world.start()
    from dialer.campaign import service as campaign_service
    from dialer.campaign.status import Action

    async with sessionmaker() as session, session.begin():
        await campaign_service.change_status(session, other_id, Action.start)
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(30.0)))
    async with h.running():
        await h.advance(1800)
    async with sessionmaker() as session:
        from dialer.models import Attempt

        rows = (await session.execute(select(Attempt.campaign_id, Attempt.queued_at).order_by(Attempt.queued_at))).all()
    high = [t for c, t in rows if c == world.campaign_id]
    low = [t for c, t in rows if c == other_id]
    assert len(high) == 6 and len(low) == 6
    # the low-priority campaign got operators only once the high-priority one had nothing left to dial
    assert min(low) >= max(high)
    assert all(a.state is AttemptState.done for a in await world.attempts())
