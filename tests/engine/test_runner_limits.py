"""The engine's limits on a call: the longest conversation, the longest hold, an operator who does not pick up."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.models.enums import AttemptState, DialMode, OperatorState, OutcomeCategory
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import Harness, engine_world, scenario


async def test_a_call_longer_than_the_maximum_is_cut(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive, max_attempts_per_contact=1,
                               max_call_duration_s=60, contacts=2)
    await world.start()
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(600.0)))
    async with h.running():
        await h.advance(600)
    attempts = await world.attempts()
    assert len(attempts) == 2
    own_codes = {world.codes[n] for n in ("Согласен", "Отказ", "Перезвонить")}
    for a in attempts:
        assert a.state is AttemptState.done and a.outcome is OutcomeCategory.answered
        assert (a.hangup_side, a.hangup_cause) == ("dialer", "max duration")
        assert a.connected_at is not None and a.hung_up_at is not None
        assert 59.9 <= (a.hung_up_at - a.connected_at).total_seconds() <= 60.5
        # the operator's code flow is unchanged: he wrapped up and set his code
        assert a.completion_code_id in own_codes and a.wrap_up_ended_at is not None
    states = [p.state for p in await world.periods(world.operator_ids[0])]
    assert states.count(OperatorState.wrap_up) == 2


async def test_a_customer_waits_at_most_max_hold(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.fixed_lines, dial_params={"max_lines": 3},
                               max_attempts_per_contact=1, max_hold_s=30, contacts=6)
    await world.start()
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(900.0)),
                patience=Constant(10_000.0))
    async with h.running():
        await h.advance(600)
    abandoned = [a for a in await world.attempts() if a.outcome is OutcomeCategory.abandoned]
    assert abandoned
    for a in abandoned:
        assert (a.hangup_side, a.hangup_cause, a.completion_code_id) == ("dialer", "no operator",
                                                                         world.codes["abandoned"])
        assert a.connected_at is None and a.answered_at is not None and a.hung_up_at is not None
        assert 29.9 <= (a.hung_up_at - a.answered_at).total_seconds() <= 30.5
    finished = [e for e in h.drain_events() if isinstance(e, ev.AttemptFinished) and e.category == "abandoned"]
    assert finished and all(e.abandoned for e in finished)


async def test_an_offer_not_picked_up_goes_to_another_operator(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               auto_pause_after_missed=1, contacts=1)
    slow, other = world.operator_ids
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(60.0)),
                patience=Constant(120.0))
    async with h.running():
        h.sim.register_endpoint("sip-op1", answer_after_s=10_000.0)  # the first operator never picks up
        await world.start()
        h.engine.wake()
        await h.advance(300)
        op = h.engine.operators[slow]
        assert (op.state, op.reason, op.missed_total) == (OperatorState.paused, "missed call", 1)
    [attempt] = await world.attempts()
    assert attempt.outcome is OutcomeCategory.answered and attempt.operator_id == other
    assert attempt.connected_at is not None and attempt.answered_at is not None
    # offered to the first for the offer timeout (15 s), then to the second
    assert 15.0 <= (attempt.connected_at - attempt.answered_at).total_seconds() <= 16.5
    events = h.drain_events()
    missed = [e for e in events if isinstance(e, ev.OperatorMissedCall)]
    assert [(e.operator_id, e.attempt_id, e.missed_in_row, e.paused, e.withdrawn) for e in missed] == [
        (slow, attempt.id, 1, True, True)]
    paused = [p for p in await world.periods(slow) if p.state is OperatorState.paused]
    assert [p.reason for p in paused] == ["missed call"]


async def test_a_missed_offer_below_the_limit_leaves_the_operator_ready(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               auto_pause_after_missed=2, contacts=1)
    slow, other = world.operator_ids
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(60.0)),
                patience=Constant(120.0))
    async with h.running():
        h.sim.register_endpoint("sip-op1", answer_after_s=10_000.0)
        await world.start()
        h.engine.wake()
        await h.advance(300)
        op = h.engine.operators[slow]
        assert (op.state, op.missed_in_row, op.missed_total) == (OperatorState.ready, 1, 1)
    [attempt] = await world.attempts()
    assert attempt.operator_id == other and attempt.outcome is OutcomeCategory.answered
    [missed] = [e for e in h.drain_events() if isinstance(e, ev.OperatorMissedCall)]
    assert (missed.operator_id, missed.paused, missed.withdrawn) == (slow, False, True)


async def test_a_driver_that_cannot_withdraw_an_offer(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               auto_pause_after_missed=1, max_hold_s=60, contacts=1)
    slow, _ = world.operator_ids
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(60.0)),
                patience=Constant(1000.0))
    h.sim.withdraw = None  # type: ignore[assignment,method-assign]  # like a driver without the operation
    async with h.running():
        h.sim.register_endpoint("sip-op1", answer_after_s=10_000.0)
        await world.start()
        h.engine.wake()
        await h.advance(300)
        op = h.engine.operators[slow]
        # the offer kept ringing until the hold limit hung the customer up; then the due pause applied
        assert (op.state, op.reason, op.missed_total) == (OperatorState.paused, "missed call", 1)
    [attempt] = await world.attempts()
    assert (attempt.outcome, attempt.hangup_cause) == (OutcomeCategory.abandoned, "no operator")
    [missed] = [e for e in h.drain_events() if isinstance(e, ev.OperatorMissedCall)]
    assert (missed.operator_id, missed.paused, missed.withdrawn) == (slow, True, False)
