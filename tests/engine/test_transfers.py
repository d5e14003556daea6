"""Transfers (#12 §2) and the rescue of a customer whose operator's phone died, on the simulated driver in virtual time:
blind to an operator, to a pool (queued, before new calls), to a skill, to an external number, attended (consult,
complete, cancel, the consulted operator hanging up), a phone's own REFER, the rescue, and their failure paths."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.engine.runner import EngineConfig
from dialer.engine.state import LiveCall
from dialer.models import Attempt, Callback, CompletionCode, OperatorPool, pool_operators
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from dialer.models.transfer import CallTransfer
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import EngineWorld, Harness, engine_world, scenario

S = OperatorState
CONFIG = EngineConfig(drain_s=0, seed=1, inbound_queue_s=30.0, inbound_message_s=3.0, inbound_callback_after_s=60.0)


async def _world(maker: async_sessionmaker[AsyncSession], *, operators: int = 3, contacts: int = 1) -> EngineWorld:
    world = await engine_world(maker, operators=operators, contacts=contacts, wrap_up_s=120)
    await world.start()
    return world


def _harness(maker: async_sessionmaker[AsyncSession], world: EngineWorld, *, talk: float = 60.0,
             patience: float = 300.0) -> Harness:
    traffic = scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(talk))
    return Harness(maker, traffic, human_operators=tuple(world.operator_ids), config=CONFIG,
                   patience=Constant(patience))


async def _talking(h: Harness, op_id: int) -> LiveCall:
    """``op_id`` goes ready and is connected to the campaign's customer."""
    assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
    await h.advance(5)
    await h.settle()
    op = h.engine.operators[op_id]
    assert op.state is S.in_call and op.call is not None
    return op.call


async def _ready(h: Harness, *op_ids: int) -> None:
    for op_id in op_ids:
        assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
    await h.advance(0.5)
    await h.settle()


async def _transfers(maker: async_sessionmaker[AsyncSession]) -> list[CallTransfer]:
    async with maker() as session:
        return list((await session.scalars(select(CallTransfer).order_by(CallTransfer.id))).all())


async def _attempt(maker: async_sessionmaker[AsyncSession], attempt_id: int) -> Attempt:
    async with maker() as session:
        found = await session.get(Attempt, attempt_id)
        assert found is not None
        return found


async def _run(h: Harness, seconds: float) -> None:
    await h.advance(seconds)
    await h.settle()


def _of(events: list[Any], kind: type[Any], attempt_id: int) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and getattr(e, "attempt_id", None) == attempt_id]


async def test_blind_transfer_to_a_ready_operator_keeps_the_attempt_and_hands_over_the_card(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        first_connected = call.connected_at
        await _ready(h, op2)
        assert h.engine.operators[op2].state is S.ready
        result = await h.engine.submit(CommandKind.transfer, op1, to="operator", to_operator_id=op2,
                                       comment="wants a discount")
        assert result["ok"], result
        await _run(h, 2)
        one, two = h.engine.operators[op1], h.engine.operators[op2]
        # the same live call, now with the second operator; the first wraps up (a handover)
        assert two.state is S.in_call and two.call is call and call.operator is two
        assert one.state is S.wrap_up and one.handover and call.state is AttemptState.connected
        assert call.connected_at == first_connected
        # his wrap-up ends without a code: the attempt goes on
        done = await h.engine.submit(CommandKind.complete, op1, comment="handed to sales")
        assert done["ok"] and done["handover"], done
        await _run(h, 0.5)
        assert one.state is S.ready and not one.handover and call.attempt_id in h.engine.attempts
        await _run(h, 60)  # the customer's talk time (his whole conversation) runs out
        assert two.state is S.wrap_up
        assert (await h.engine.submit(CommandKind.complete, op2, completion_code_id=world.codes["Согласен"]))["ok"]
        await _run(h, 1)
        events = h.drain_events()
    attempt = await _attempt(maker, call.attempt_id)
    assert attempt.state is AttemptState.done and attempt.operator_id == op2
    assert (attempt.outcome, attempt.completion_code_id) == (OutcomeCategory.answered, world.codes["Согласен"])
    assert attempt.connected_at is not None and attempt.connected_at < attempt.hung_up_at  # type: ignore[operator]
    [row] = await _transfers(maker)
    assert (row.attempt_id, row.kind, row.source, row.from_operator_id, row.to_operator_id, row.result) == (
        call.attempt_id, "operator", "panel", op1, op2, "connected")
    assert row.comment == "wants a discount\nhanded to sales" and row.connected_at is not None
    transferred = _of(events, ev.CallTransferred, call.attempt_id)
    assert [e.result for e in transferred] == ["pending", "connected"]
    # a transfer is no abandon: the customer had an operator
    assert not _of(events, ev.CallOnHold, call.attempt_id)
    finished = _of(events, ev.AttemptFinished, call.attempt_id)
    assert finished and not finished[0].abandoned and finished[0].operator_id == op2


async def test_blind_transfer_to_a_busy_or_unknown_operator_is_refused_and_the_call_goes_on(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        busy = await h.engine.submit(CommandKind.transfer, op1, to="operator", to_operator_id=op2)
        assert not busy["ok"] and "not ready" in busy["error"]
        missing = await h.engine.submit(CommandKind.transfer, op1, to="operator", to_operator_id=10**9)
        assert not missing["ok"] and "not known" in missing["error"]
        nowhere = await h.engine.submit(CommandKind.transfer, op1, to="somewhere")
        assert not nowhere["ok"] and "operator, pool, skill or external" in nowhere["error"]
        nobody = await h.engine.submit(CommandKind.transfer, op1, to="skill", skill_id=world.skill_id)
        assert not nobody["ok"] and "no operator has skill" in nobody["error"]
        not_his = await h.engine.submit(CommandKind.transfer, op2, to="operator", to_operator_id=op1)
        assert not not_his["ok"] and "no conversation to transfer" in not_his["error"]
        await _run(h, 1)
        assert h.engine.operators[op1].state is S.in_call and call.operator is h.engine.operators[op1]
    assert await _transfers(maker) == []


async def test_transfer_to_a_pool_queues_the_customer_before_new_calls(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker, contacts=5)
    op1, op2, op3 = world.operator_ids
    async with maker() as session, session.begin():
        support = OperatorPool(name="Поддержка")
        session.add(support)
        await session.flush()
        await session.execute(pool_operators.insert().values(pool_id=support.id, operator_id=op2))
        support_id = support.id
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        result = await h.engine.submit(CommandKind.transfer, op1, to="pool", pool_id=support_id)
        assert result["ok"] and result["queued"], result
        await _run(h, 5)
        # nobody of the pool is free: the customer waits, on hold, ahead of everything else
        assert call.state is AttemptState.answered and call.operator is None and call.requeued
        assert [x.attempt_id for x in h.engine.calls.waiting_calls()][:1] == [call.attempt_id]
        # an operator outside the pool is not offered him (he gets a new outbound call instead)
        await _ready(h, op3)
        await _run(h, 5)
        assert call.operator is None and h.engine.operators[op3].call is not call
        # the pool's operator comes back: the transferred customer first, though new contacts wait to be dialled
        await _ready(h, op2)
        await _run(h, 1)
        assert h.engine.operators[op2].call is call and h.engine.operators[op2].state is S.in_call
    [row] = await _transfers(maker)
    assert (row.kind, row.to_pool_id, row.to_operator_id, row.result) == ("pool", support_id, op2, "connected")


async def test_transfer_to_a_skill_goes_to_an_operator_with_the_level(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120)
    op1 = world.operator_ids[0]
    junior = await world.add_operator("junior", skill_level=1)
    senior = await world.add_operator("senior", skill_level=3)
    await world.start()
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        await _ready(h, junior, senior)
        assert (await h.engine.submit(CommandKind.transfer, op1, to="skill", skill_id=world.skill_id,
                                      min_level=2))["ok"]
        await _run(h, 2)
        assert h.engine.operators[senior].call is call and h.engine.operators[junior].state is S.ready
    [row] = await _transfers(maker)
    assert (row.kind, row.to_skill_id, row.to_operator_id, row.result) == ("skill", world.skill_id, senior,
                                                                          "connected")


async def test_external_transfer_ends_with_the_first_operators_code(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1 = world.operator_ids[0]
    await world.dnc("+74950000000")
    h = _harness(maker, world, talk=30.0)
    async with h.running():
        call = await _talking(h, op1)
        blocked = await h.engine.submit(CommandKind.transfer, op1, to="external", number="+74950000000")
        assert not blocked["ok"] and "do-not-call" in blocked["error"]
        invalid = await h.engine.submit(CommandKind.transfer, op1, to="external", number="12")
        assert not invalid["ok"] and "not a valid phone number" in invalid["error"]
        assert (await h.engine.submit(CommandKind.transfer, op1, to="external", number="8 (495) 123-45-67",
                                      comment="to the bank"))["ok"]
        await _run(h, 3)  # the number answers after 2 s
        assert call.external == "+74951234567" and call.state is AttemptState.connected and call.operator is None
        one = h.engine.operators[op1]
        assert one.state is S.wrap_up and one.handover
        assert (await h.engine.submit(CommandKind.complete, op1, completion_code_id=world.codes["Перезвонить"]))["ok"]
        await _run(h, 1)
        assert one.state is S.ready and call.attempt_id in h.engine.attempts  # the customer still talks
        await _run(h, 40)
    attempt = await _attempt(maker, call.attempt_id)
    assert attempt.state is AttemptState.done and attempt.completion_code_id == world.codes["Перезвонить"]
    [row] = await _transfers(maker)
    assert (row.kind, row.to_number, row.result, row.comment) == ("external", "+74951234567", "connected",
                                                                  "to the bank")


async def test_an_external_number_that_does_not_answer_sends_the_customer_to_an_operator(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        h.sim.failing_numbers["+74951234567"] = "486 Busy Here"
        call = await _talking(h, op1)
        assert (await h.engine.submit(CommandKind.transfer, op1, to="external", number="+74951234567"))["ok"]
        await _run(h, 3)
        assert call.external is None and call.requeued and call.operator is None
        await _ready(h, op2)
        await _run(h, 1)
        assert h.engine.operators[op2].call is call and h.engine.operators[op2].state is S.in_call
    [row] = await _transfers(maker)
    assert (row.kind, row.result, row.detail) == ("external", "failed", "486 Busy Here")


async def test_attended_transfer_consult_then_complete(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        await _ready(h, op2)
        assert (await h.engine.submit(CommandKind.consult, op1, to_operator_id=op2, comment="VIP"))["ok"]
        early = await h.engine.submit(CommandKind.consult_complete, op1)
        one, two = h.engine.operators[op1], h.engine.operators[op2]
        assert not early["ok"] and "not answered yet" in early["error"]
        assert two.state in (S.reserved, S.ringing) and two.consulting is call
        await _run(h, 1)
        assert two.state is S.in_call and one.state is S.in_call and call.operator is one
        assert (await h.engine.submit(CommandKind.consult_complete, op1))["ok"]
        await _run(h, 1)
        assert call.operator is two and two.call is call and two.state is S.in_call
        assert one.state is S.wrap_up and one.handover and call.state is AttemptState.connected
    [row] = await _transfers(maker)
    assert (row.kind, row.to_operator_id, row.result, row.comment) == ("attended", op2, "connected", "VIP")
    attempt = await _attempt(maker, call.attempt_id)
    assert attempt.operator_id == op2


async def test_attended_transfer_cancelled_or_hung_up_by_the_consulted_operator(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        await _ready(h, op2)
        one, two = h.engine.operators[op1], h.engine.operators[op2]
        assert (await h.engine.submit(CommandKind.consult, op1, to_operator_id=op2))["ok"]
        await _run(h, 1)
        assert (await h.engine.submit(CommandKind.consult_cancel, op1))["ok"]
        await _run(h, 0.5)
        assert two.state is S.ready and two.call is None and call.consult is None
        assert one.state is S.in_call and call.operator is one
        # again, and this time the consulted operator hangs up on the consultation himself
        assert (await h.engine.submit(CommandKind.consult, op1, to_operator_id=op2))["ok"]
        await _run(h, 1)
        h.sim.operator_hangup(two.endpoint)
        await _run(h, 0.5)
        assert two.state is S.ready and call.consult is None and one.state is S.in_call
        # and once from his panel: the customer is not his to code, and his "hang up" ends only the consultation
        assert (await h.engine.submit(CommandKind.consult, op1, to_operator_id=op2))["ok"]
        await _run(h, 1)
        refused = await h.engine.submit(CommandKind.complete, op2, completion_code_id=world.codes["Отказ"])
        assert not refused["ok"] and "being consulted" in refused["error"]
        assert (await h.engine.submit(CommandKind.hangup, op2))["ok"]
        await _run(h, 0.5)
        assert two.state is S.ready and call.consult is None and one.state is S.in_call and not call.finished
    rows = await _transfers(maker)
    assert [(r.kind, r.result) for r in rows] == [("attended", "cancelled"), ("attended", "failed"),
                                                  ("attended", "cancelled")]


async def test_a_phones_own_transfer_request(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        one, two = h.engine.operators[op1], h.engine.operators[op2]
        # an unknown name, and a number the operator's user may not call outside: refused, the call goes on
        h.sim.operator_refer(one.endpoint, "nobody")
        await _run(h, 0.5)
        h.sim.operator_refer(one.endpoint, "+74951234567")
        await _run(h, 0.5)
        assert one.state is S.in_call and call.operator is one
        await _ready(h, op2)
        h.sim.operator_refer(one.endpoint, two.endpoint)  # the target as the phone knows it: his login
        await _run(h, 2)
        assert two.call is call and two.state is S.in_call and one.state is S.wrap_up
    rows = await _transfers(maker)
    assert [(r.source, r.result) for r in rows] == [("phone", "refused"), ("phone", "refused"),
                                                    ("phone", "connected")]
    assert "no operator or pool" in rows[0].detail and "transfers.external" in rows[1].detail
    assert rows[2].to_operator_id == op2


async def test_a_dead_phone_mid_call_rescues_the_customer_to_another_operator(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        await _ready(h, op2)
        one, two = h.engine.operators[op1], h.engine.operators[op2]
        h.sim.phone_lost(one.endpoint)
        await _run(h, 1)
        assert two.call is call and two.state is S.in_call
        assert one.state is S.wrap_up and one.handover
        assert (await h.engine.submit(CommandKind.complete, op1, comment="my phone died"))["ok"]
        await _run(h, 0.5)
        # his phone is dead: kept out of ready until it registers again
        assert one.state is S.paused and one.reason == "phone offline"
        events = h.drain_events()
    [row] = await _transfers(maker)
    assert (row.kind, row.source, row.from_operator_id, row.to_operator_id, row.result) == (
        "rescue", "engine", op1, op2, "connected")
    assert not _of(events, ev.CallOnHold, call.attempt_id)  # no new abandon


async def test_a_rescued_customer_nobody_takes_gets_the_message_and_a_callback(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker, operators=1)
    op1 = world.operator_ids[0]
    h = _harness(maker, world)
    async with h.running():
        call = await _talking(h, op1)
        h.sim.phone_lost(h.engine.operators[op1].endpoint)
        await _run(h, 29)
        assert call.requeued and not call.forced_cause
        await _run(h, 2)  # the queue time (30 s) is over: the message
        assert call.forced_cause
        await _run(h, 4)  # played: hung up
        events = h.drain_events()
    attempt = await _attempt(maker, call.attempt_id)
    async with maker() as session:
        code = await session.scalar(select(CompletionCode.id).where(CompletionCode.system_key == "transfer_callback"))
        callbacks = (await session.scalars(select(Callback).where(Callback.contact_id == call.contact_id))).all()
    assert attempt.state is AttemptState.done and attempt.completion_code_id == code
    assert attempt.outcome is OutcomeCategory.abandoned and len(callbacks) == 1
    [row] = await _transfers(maker)
    assert (row.kind, row.result) == ("rescue", "callback")
    assert not _of(events, ev.CallOnHold, call.attempt_id)


async def test_a_transferred_customer_who_hangs_up_while_waiting(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await _world(maker)
    op1, op2, _ = world.operator_ids
    async with maker() as session, session.begin():
        empty = OperatorPool(name="Пустой")
        session.add(empty)
        await session.flush()
        await session.execute(pool_operators.insert().values(pool_id=empty.id, operator_id=op2))
        empty_id = empty.id
    h = _harness(maker, world, patience=10.0)
    async with h.running():
        call = await _talking(h, op1)
        assert (await h.engine.submit(CommandKind.transfer, op1, to="pool", pool_id=empty_id))["ok"]
        await _run(h, 12)  # his patience (10 s) runs out before anyone of the pool is free
        events = h.drain_events()
    attempt = await _attempt(maker, call.attempt_id)
    assert attempt.state is AttemptState.done and attempt.completion_code_id == world.default_code_id
    assert attempt.outcome is OutcomeCategory.answered
    [row] = await _transfers(maker)
    assert row.result == "abandoned"
    finished = _of(events, ev.AttemptFinished, call.attempt_id)
    assert finished and not finished[0].abandoned


async def test_an_inbound_caller_is_transferred_like_any_customer(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from tests.engine.test_inbound import OUR_NUMBER
    from tests.engine.test_inbound import _world as inbound_world

    maker = sessionmaker
    world = await inbound_world(maker, caller_ids=(OUR_NUMBER,))
    op1 = world.operator_ids[0]
    op2 = await world.add_operator("op2")
    h = _harness(maker, world)
    async with h.running():
        await _ready(h, op1)
        h.sim.incoming("+79165550077", OUR_NUMBER, talk_s=60.0, hold_patience_s=120.0)
        await _run(h, 2)
        one = h.engine.operators[op1]
        assert one.state is S.in_call and one.call is not None and one.call.inbound
        call = one.call
        await _ready(h, op2)
        assert (await h.engine.submit(CommandKind.transfer, op1, to="operator", to_operator_id=op2))["ok"]
        await _run(h, 2)
        two = h.engine.operators[op2]
        assert two.call is call and two.state is S.in_call
        # an inbound caller waiting again is in no outbound pacer's sets
        assert call.attempt_id not in call.campaign.answered
    attempt = await _attempt(maker, call.attempt_id)
    assert attempt.direction == "inbound" and attempt.operator_id == op2
    [row] = await _transfers(maker)
    assert (row.kind, row.result) == ("operator", "connected")
