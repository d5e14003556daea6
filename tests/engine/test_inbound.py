"""Inbound calls (#12 §3) on the simulated driver, in virtual time: a caller matched to the contact of his most recent
attempt and its campaign, taken by a free operator before outbound customers, the message and a callback when
nobody is free, callers routed by the dialled caller ID, refusals, and outbound pacing left alone."""

from __future__ import annotations

import dataclasses
from datetime import time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.campaign import service as campaign_service
from dialer.campaign.status import Action
from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.engine.inbound import normalise
from dialer.engine.runner import EngineConfig
from dialer.models import (
    Attempt,
    Callback,
    CallerId,
    CallerIdGroup,
    Campaign,
    CompletionCode,
    Contact,
    ContactList,
)
from dialer.models.campaign import caller_id_group_members, campaign_lists, campaign_pools
from dialer.models.enums import AttemptState, CallbackStatus, CampaignKind, DialMode, OperatorState, OutcomeCategory
from dialer.telephony.traffic import Constant, Scenario
from tests.engine.engine_world import NOW, EngineWorld, Harness, engine_world, scenario

CONFIG = EngineConfig(drain_s=0, seed=1, inbound_queue_s=10.0, inbound_message_s=3.0, inbound_callback_after_s=60.0)
OUR_NUMBER = "+74950001122"


def _traffic() -> Scenario:
    return scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(20.0))


async def _world(maker: async_sessionmaker[AsyncSession], *, contacts: int = 0, caller_ids: tuple[str, ...] = (),
                 priority: int | None = None) -> EngineWorld:
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, wrap_up_s=120,
                               kind=CampaignKind.infinite, contacts=contacts)
    if caller_ids or priority is not None:
        async with maker() as session, session.begin():
            campaign = await session.get(Campaign, world.campaign_id)
            assert campaign is not None
            if caller_ids:
                group = CallerIdGroup(name=f"numbers of {world.campaign_id}")
                session.add(group)
                await session.flush()
                for n in caller_ids:
                    row = CallerId(number=n)
                    session.add(row)
                    await session.flush()
                    await session.execute(caller_id_group_members.insert().values(group_id=group.id,
                                                                                  caller_id_id=row.id))
                campaign.caller_id_group_id = group.id
            if priority is not None:
                campaign.priority = priority
    await world.start()
    return world


async def _past_attempt(maker: async_sessionmaker[AsyncSession], world: EngineWorld, contact_id: int, number: str,
                        hours_ago: float) -> int:
    """An outbound attempt of the campaign to ``number`` that ended ``hours_ago``."""
    at = NOW - timedelta(hours=hours_ago)
    async with maker() as session, session.begin():
        row = Attempt(campaign_id=world.campaign_id, contact_id=contact_id, number=number, state=AttemptState.done,
                      outcome=OutcomeCategory.no_answer, queued_at=at, dialed_at=at, hung_up_at=at)
        session.add(row)
        await session.flush()
        return int(row.id)


def _record_pacer(pacer: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Record what the campaign's real pacer is told (its methods still run)."""
    calls: dict[str, list[tuple[Any, ...]]] = {}
    for name in ("on_call_result", "on_abandon", "on_talk_ended", "on_wrap_up_ended"):
        calls[name] = []
        method = getattr(pacer, name)

        def recorded(*args: Any, _name: str = name, _method: Any = method) -> Any:
            calls[_name].append(args)
            return _method(*args)

        setattr(pacer, name, recorded)
    return calls


async def _inbound(maker: async_sessionmaker[AsyncSession]) -> list[Attempt]:
    async with maker() as session:
        return list((await session.scalars(select(Attempt).where(Attempt.direction == "inbound")
                                           .order_by(Attempt.id))).all())


async def _code(maker: async_sessionmaker[AsyncSession], key: str) -> int:
    async with maker() as session:
        found = await session.scalar(select(CompletionCode.id).where(CompletionCode.system_key == key))
        assert found is not None
        return int(found)


def test_numbers_as_trunks_deliver_them_are_normalised() -> None:
    assert normalise("+79165550001") == "+79165550001"
    assert normalise("79165550001") == "+79165550001"
    assert normalise("89165550001") == "+79165550001"
    assert normalise("anonymous") is None and normalise("") is None


async def test_a_known_caller_reaches_his_last_campaign_and_an_operator_before_outbound_customers(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker, contacts=3)
    op_id = world.operator_ids[0]
    # two contacts share the number; the one called most recently is the one calling back
    shared = "+79165550001"
    older = await world.contact(phones=[shared])
    newer = await world.contact(phones=[shared])
    await _past_attempt(maker, world, older, shared, hours_ago=5)
    await _past_attempt(maker, world, newer, shared, hours_ago=1)
    # the caller waits up to 60 s (within the campaign's max hold) for the operator busy with an outbound call
    config = dataclasses.replace(CONFIG, inbound_queue_s=60.0)
    h = Harness(maker, _traffic(), human_operators=(op_id,), config=config)
    async with h.running():
        ctx = h.engine.ctx
        c = ctx.campaigns[world.campaign_id]
        op = h.engine.operators[op_id]
        hooks = _record_pacer(c.pacer)
        assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
        await h.advance(3)  # progressive: reserved for an outbound customer, who answers after 2 s
        await h.settle()
        assert op.state is OperatorState.in_call and op.call is not None
        outbound_call = op.call
        placed_before = ctx.placed
        counts_before_inbound = {k: len(v) for k, v in hooks.items()}
        # the customer calls back, writing the number nationally as his phone company delivers it
        h.sim.incoming("89165550001", OUR_NUMBER, talk_s=10.0, hold_patience_s=120.0)
        await h.advance(1)
        await h.settle()
        [waiting] = await _inbound(maker)
        assert (waiting.contact_id, waiting.campaign_id, waiting.number) == (newer, world.campaign_id, shared)
        assert waiting.state is AttemptState.answered and waiting.caller_id == OUR_NUMBER
        # the pacer sees nothing of it: no placement, not a waiting outbound answer, no line dialling
        obs = h.engine.placement.observe(c)
        assert (obs.calls_waiting, obs.calls_dialling) == (0, 0) and ctx.placed == placed_before
        assert waiting.id not in c.answered and waiting.id not in c.dialling
        counts_at_answer = {k: len(v) for k, v in hooks.items()}
        await h.advance(20)  # the outbound customer hangs up; the operator wraps up
        await h.settle()
        assert op.state is OperatorState.wrap_up and op.call is outbound_call
        assert [x.attempt_id for x in h.engine.calls.waiting_calls()] == [waiting.id]
        # there are outbound contacts to dial, yet the free operator takes the waiting inbound caller first
        assert (await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Отказ"]))["ok"]
        await h.advance(1)
        await h.settle()
        assert op.call is not None and op.call.attempt_id == waiting.id
        assert op.state is OperatorState.in_call
        await h.advance(10)  # he talks 10 s and hangs up: the normal wrap-up and completion
        await h.settle()
        assert op.state is OperatorState.wrap_up
        assert (await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Согласен"],
                                      comment="called back"))["ok"]
        counts_after_inbound = {k: len(v) for k, v in hooks.items()}
        await h.advance(1)
        await h.settle()
        events = h.drain_events()
    [done] = await _inbound(maker)
    assert done.state is AttemptState.done and done.operator_id == op_id and done.connected_at is not None
    assert (done.outcome, done.completion_code_id, done.comment) == (OutcomeCategory.answered,
                                                                     world.codes["Согласен"], "called back")
    async with maker() as session:
        contact = await session.get(Contact, newer)
        outbound = (await session.scalars(select(Attempt).where(Attempt.direction == "outbound",
                                                                Attempt.dialed_at >= NOW))).all()
    assert contact is not None and contact.attempts_total == 1  # counted on the contact like any attempt
    assert len(outbound) == ctx.placed  # every placement is an outbound attempt; the inbound call is none
    # what the outbound pacer learnt: its own placements, talk and wrap-up only (the one outbound conversation)
    assert counts_at_answer == counts_before_inbound
    assert counts_after_inbound == {**counts_at_answer, "on_talk_ended": 1, "on_wrap_up_ended": 1}
    assert counts_after_inbound["on_call_result"] == 1 and hooks["on_abandon"] == []
    connected = [e for e in events if isinstance(e, ev.CallConnected) and e.attempt_id == done.id]
    assert connected and connected[0].operator_id == op_id
    # the wait of an inbound caller is no abandon of the outbound dial
    assert not any(isinstance(e, ev.CallOnHold) and e.attempt_id == done.id for e in events)


async def test_nobody_free_the_caller_hears_the_message_and_gets_a_callback(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    # a caller never called: routed by the dialled number to the campaign whose caller IDs include it
    world = await _world(maker, caller_ids=(OUR_NUMBER,))
    op_id = world.operator_ids[0]
    caller = "+79165550002"
    contact_id = await world.contact(phones=[caller])
    h = Harness(maker, _traffic(), human_operators=(op_id,), config=CONFIG)
    async with h.running():
        op = h.engine.operators[op_id]
        assert op.state is OperatorState.offline  # nobody works
        h.sim.incoming(caller, "74950001122", hold_patience_s=120.0)
        await h.advance(5)
        await h.settle()
        [waiting] = await _inbound(maker)
        assert waiting.state is AttemptState.answered and waiting.contact_id == contact_id
        await h.advance(6)  # the queue time (10 s) passes: the message plays for 3 s
        await h.settle()
        assert h.sim.live_calls() == 1
        await h.advance(4)
        await h.settle()
        assert h.sim.live_calls() == 0
    [done] = await _inbound(maker)
    assert done.state is AttemptState.done and done.operator_id is None and done.connected_at is None
    assert done.outcome is OutcomeCategory.abandoned
    assert done.completion_code_id == await _code(maker, "inbound_callback")
    assert done.hangup_side == "dialer" and "message played, callback booked" in done.hangup_cause
    assert "no operator free within 10 s" in done.hangup_cause
    async with maker() as session:
        callbacks = (await session.scalars(select(Callback).where(Callback.contact_id == contact_id))).all()
    [callback] = callbacks
    assert callback.campaign_id == world.campaign_id and callback.status is CallbackStatus.pending
    assert callback.operator_id is None and callback.number == caller
    assert NOW + timedelta(seconds=60) <= callback.window_start <= NOW + timedelta(seconds=90)


async def test_a_paused_campaign_gives_the_message_at_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    caller = "+79165550003"
    contact_id = await world.contact(phones=[caller])
    await _past_attempt(maker, world, contact_id, caller, hours_ago=2)
    h = Harness(maker, _traffic(), human_operators=tuple(world.operator_ids), config=CONFIG)
    async with h.running():
        await world.act(Action.pause)
        h.engine.wake()
        await h.advance(2)
        await h.settle()
        h.sim.incoming(caller, OUR_NUMBER, hold_patience_s=120.0)
        await h.advance(4)  # no queue: the message (3 s) at once
        await h.settle()
        assert h.sim.live_calls() == 0
    [done] = await _inbound(maker)
    assert done.completion_code_id == await _code(maker, "inbound_callback")
    assert "the campaign is paused" in done.hangup_cause
    async with maker() as session:
        assert await session.scalar(select(Callback.id).where(Callback.contact_id == contact_id)) is not None


async def test_callers_nobody_takes_are_refused_and_a_stranger_goes_to_the_highest_priority_campaign(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker, caller_ids=(OUR_NUMBER,))
    # a second running campaign of higher priority with the same caller IDs
    async with maker() as session, session.begin():
        base = await session.get(Campaign, world.campaign_id)
        assert base is not None
        other = Campaign(name="Осень", strategy_id=base.strategy_id, priority=90, dial_params={},
                         completion_code_group_id=base.completion_code_group_id, kind=CampaignKind.infinite,
                         caller_id_group_id=base.caller_id_group_id)
        session.add(other)
        await session.flush()
        other_list = ContactList(name="Осенний список")
        session.add(other_list)
        await session.flush()
        await session.execute(campaign_lists.insert().values(campaign_id=other.id, list_id=other_list.id))
        await session.execute(campaign_pools.insert().values(campaign_id=other.id, pool_id=world.pool_id))
        other_id = other.id
    async with maker() as session, session.begin():
        await campaign_service.change_status(session, other_id, Action.start)
    h = Harness(maker, _traffic(), human_operators=tuple(world.operator_ids), config=CONFIG)
    async with h.running():
        assert {world.campaign_id, other_id} <= set(h.engine.ctx.campaigns)
        # a number no running campaign calls from: refused at once, no attempt
        stray = h.sim.incoming("+79165550004", "+74950000404", ring_patience_s=60.0)
        await h.advance(1)
        await h.settle()
        assert h.sim.live_calls() == 0 and await _inbound(maker) == []
        assert stray not in h.engine.ctx.by_call_id
        # a stranger calling our number: taken by the higher-priority campaign, no contact; he gives up after 2 s
        h.sim.incoming("+79165550005", OUR_NUMBER, hold_patience_s=2.0)
        await h.advance(4)
        await h.settle()
        assert h.sim.live_calls() == 0
    [gave_up] = await _inbound(maker)
    assert gave_up.campaign_id == other_id and gave_up.contact_id is None
    assert gave_up.outcome is OutcomeCategory.abandoned and gave_up.hangup_side == "customer"
    assert gave_up.completion_code_id == await _code(maker, "abandoned")


async def test_outside_the_campaigns_hours_the_caller_gets_the_message_at_once(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    # NOW is a Wednesday 10:00 UTC; the campaign works on Mondays only
    await world.schedule(0, time(9, 0), time(18, 0))
    caller = "+79165550006"
    contact_id = await world.contact(phones=[caller])
    await _past_attempt(maker, world, contact_id, caller, hours_ago=30)
    h = Harness(maker, _traffic(), config=CONFIG)  # its simulated operator is ready: hours come first
    async with h.running():
        await h.advance(2)
        await h.settle()
        c = h.engine.ctx.campaigns[world.campaign_id]
        assert not c.open
        h.sim.incoming(caller, OUR_NUMBER, hold_patience_s=120.0)
        await h.advance(4)  # no queue: the message (3 s) at once
        await h.settle()
        assert h.sim.live_calls() == 0
    [done] = await _inbound(maker)
    assert done.completion_code_id == await _code(maker, "inbound_callback") and done.operator_id is None
    assert "outside the campaign's hours" in done.hangup_cause
    async with maker() as session:
        assert await session.scalar(select(Callback.id).where(Callback.contact_id == contact_id)) is not None


def test_the_inbound_settings_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from dialer.config import Settings
    from dialer.tools.engine import engine_config

    for name, value in (("QUEUE_S", "45"), ("MESSAGE", "after-hours"), ("MESSAGE_S", "12.5"),
                        ("CALLBACK_AFTER_S", "900")):
        monkeypatch.setenv(f"DIALER_INBOUND_{name}", value)
    config = engine_config(Settings(), seed=7)
    assert (config.inbound_queue_s, config.inbound_message, config.inbound_message_s,
            config.inbound_callback_after_s, config.seed) == (45.0, "after-hours", 12.5, 900.0, 7)
