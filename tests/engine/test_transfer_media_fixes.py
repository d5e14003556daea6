"""Defects of transfers and media settings in calls found by review (issues #12, #16), each reproduced on the
simulated driver in virtual time: an external number ringing past the wait limit, an external leg ending after it
connected, machine detection's decision time and the 2-second rule, a transfer command for a call that is not the
operator's any more, an operator's record override the driver cannot honour, a consent message longer than the grace
time, and transfers a crashed engine left pending."""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.engine.recovery import RESTARTED_DETAIL
from dialer.engine.runner import Engine, EngineConfig
from dialer.models import Attempt, Callback, Campaign, CompletionCode, Operator
from dialer.models.enums import AttemptState, DialMode, OperatorState, OutcomeCategory
from dialer.models.media import RecordMode, RecordOverride
from dialer.models.transfer import CallTransfer
from dialer.telephony.base import CallId, EndpointEvent, EndpointEventKind, TelephonyError
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Constant, Scenario
from tests.engine.engine_world import NOW, EngineWorld, Harness, dead_run, engine_world, scenario

S = OperatorState
A = AttemptState
CONFIG = EngineConfig(drain_s=0, seed=1, inbound_queue_s=30.0, inbound_message_s=3.0, inbound_callback_after_s=60.0)


def _human(talk: float = 300.0) -> Scenario:
    return scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(talk))


async def _run(h: Harness, seconds: float) -> None:
    await h.advance(seconds)
    await h.settle()


async def _talking(h: Harness, op_id: int) -> Any:
    assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
    await _run(h, 5)
    op = h.engine.operators[op_id]
    assert op.state is S.in_call and op.call is not None
    return op.call


async def _transfers(maker: async_sessionmaker[AsyncSession]) -> list[CallTransfer]:
    async with maker() as session:
        return list((await session.scalars(select(CallTransfer).order_by(CallTransfer.id))).all())


async def _campaign(maker: async_sessionmaker[AsyncSession], world: EngineWorld, **values: Any) -> None:
    async with maker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(**values))


class PlayingSim(SimTelephony):
    """The simulator noting what was played, and failing to record after the answer as the SIP driver does for a call
    whose media does not pass the relay."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.played: list[tuple[CallId, str | None, float]] = []
        self.record_tries: list[CallId] = []

    async def play(self, call_id: CallId, audio: str | None) -> None:
        self.played.append((call_id, audio, self.clock.now()))
        await super().play(call_id, audio)

    async def start_recording(self, call_id: CallId) -> None:
        self.record_tries.append(call_id)
        raise TelephonyError(f"call {call_id}: its media does not pass the media relay; it cannot be recorded")

    async def stop_recording(self, call_id: CallId) -> None:
        raise TelephonyError("not anchored")


def _harness(maker: async_sessionmaker[AsyncSession], world: EngineWorld, traffic: Scenario,
             config: EngineConfig = CONFIG) -> tuple[Harness, PlayingSim]:
    h = Harness(maker, traffic, human_operators=tuple(world.operator_ids), config=config,
                patience=Constant(300.0))
    sim = PlayingSim(h.clock, traffic, seed=1, patience_s=Constant(300.0))
    h.sim = sim
    h.engine = Engine(maker, sim, clock=h.clock, config=config)
    h.operators = None
    h.events = h.engine.bus.subscribe(maxsize=100_000)
    for i in range(len(world.operator_ids)):  # the operators' phones (engine_world's extensions)
        sim.register_endpoint(f"sip-op{i + 1}")
    return h, sim


async def test_an_external_number_ringing_past_the_wait_limit_is_not_cut_by_it(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120)
    await world.start()
    op1 = world.operator_ids[0]
    h, sim = _harness(maker, world, _human())
    sim.external_answer_s = 35.0  # rings longer than the wait limit (the inbound queue time, 30 s)
    async with h.running():
        call = await _talking(h, op1)
        assert (await h.engine.submit(CommandKind.transfer, op1, to="external", number="+74951234567"))["ok"]
        await _run(h, 34)
        # ringing: no callback message, nobody hung up
        assert not call.forced_cause and call.external == "+74951234567" and not call.finished
        assert CONFIG.inbound_message not in [p[1] for p in sim.played]
        await _run(h, 10)  # it answered at 35 s: the customer talks to it, uncut
        assert call.state is A.connected and not call.finished and not call.forced_cause
    [row] = await _transfers(maker)
    assert (row.kind, row.result) == ("external", "connected")


async def test_a_customer_back_from_an_external_number_waits_within_the_limit(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120)
    await world.start()
    op1 = world.operator_ids[0]
    h, sim = _harness(maker, world, _human())
    async with h.running():
        call = await _talking(h, op1)
        assert (await h.engine.submit(CommandKind.transfer, op1, to="external", number="+74951234567"))["ok"]
        await _run(h, 3)
        assert call.state is A.connected and call.external == "+74951234567"
        # the far end leaves; the first operator is in wrap-up: nobody is free
        sim._emit(EndpointEvent("external:+74951234567", EndpointEventKind.hung_up, sim.clock.now(),
                                detail="the far end hung up", call_id=call.call_id))
        await _run(h, 1)
        assert call.requeued and call.external is None and call.state is A.answered
        await _run(h, 30)  # the wait limit: the message, then hung up with a callback (not held for ever)
        assert call.forced_cause
        await _run(h, 5)
        assert call.finished
    async with maker() as session:
        attempt = await session.get(Attempt, call.attempt_id)
        code = await session.scalar(select(CompletionCode.id).where(CompletionCode.system_key == "transfer_callback"))
        callbacks = (await session.scalars(select(Callback).where(Callback.contact_id == call.contact_id))).all()
    assert attempt is not None and attempt.state is A.done and attempt.completion_code_id == code
    assert len(callbacks) == 1
    [row] = await _transfers(maker)
    assert (row.kind, row.result) == ("external", "connected")  # it had connected: its row says so


async def test_machine_detection_time_counts_toward_the_grace_and_the_hold_limit(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120, mode=DialMode.predictive,
                               max_hold_s=5)
    await _campaign(maker, world, amd_enabled=True)
    await world.start()
    op1 = world.operator_ids[0]
    h, sim = _harness(maker, world, _human())
    sim.amd_human_s = 1.9  # the detector decides on a person 1.9 s after his answer; `at` is the answer
    async with h.running():
        # a predictive call for a ready operator who leaves on a break before the customer answers
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await _run(h, 0.5)
        assert h.engine.placed >= 1
        assert (await h.engine.submit(CommandKind.pause, op1, reason="lunch"))["ok"]
        await _run(h, 15)
        events = h.drain_events()
    [answered] = [e for e in events if isinstance(e, ev.CallAnswered)]
    [on_hold] = [e for e in events if isinstance(e, ev.CallOnHold) and e.attempt_id == answered.attempt_id]
    # abandoned 2 s after the answer (not 2 s after the detector's decision, 3.9 s)
    assert 2.0 <= on_hold.waited_s < 2.1
    async with maker() as session:
        attempt = await session.get(Attempt, answered.attempt_id)
    assert attempt is not None and attempt.hung_up_at is not None and attempt.answered_at is not None
    assert attempt.hangup_cause == "no operator" and attempt.outcome is OutcomeCategory.abandoned
    held = (attempt.hung_up_at - attempt.answered_at).total_seconds()
    assert 5.0 <= held < 5.1  # the hold limit from the answer too


async def test_a_transfer_command_for_another_call_is_refused(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=2, contacts=1, wrap_up_s=120)
    await world.start()
    op1, op2 = world.operator_ids
    h, _ = _harness(maker, world, _human())
    async with h.running():
        call = await _talking(h, op1)
        assert (await h.engine.submit(CommandKind.ready, op2))["ok"]
        await _run(h, 0.5)
        stale = call.attempt_id + 1000
        for kind, extra in ((CommandKind.transfer, {"to": "operator", "to_operator_id": op2}),
                            (CommandKind.consult, {"to_operator_id": op2})):
            refused = await h.engine.submit(kind, op1, attempt_id=stale, **extra)
            assert not refused["ok"] and f"attempt {stale} is not operator" in refused["error"], refused
        assert h.engine.operators[op1].state is S.in_call and call.operator is h.engine.operators[op1]
        assert (await h.engine.submit(CommandKind.consult, op1, to_operator_id=op2, attempt_id=call.attempt_id))["ok"]
        await _run(h, 1)
        for kind in (CommandKind.consult_complete, CommandKind.consult_cancel):
            refused = await h.engine.submit(kind, op1, attempt_id=stale)
            assert not refused["ok"] and "nothing was transferred" in refused["error"], refused
        assert call.consult is h.engine.operators[op2]
        assert (await h.engine.submit(CommandKind.consult_complete, op1, attempt_id=call.attempt_id))["ok"]
        await _run(h, 1)
        assert call.operator is h.engine.operators[op2]
    assert [(r.kind, r.result) for r in await _transfers(maker)] == [("attended", "connected")]


async def test_an_override_that_cannot_record_leaves_the_call_unrecorded_and_warns_once(
        sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=2, wrap_up_s=120)
    op1 = world.operator_ids[0]
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == op1).values(record_override=RecordOverride.always))
    await world.start()
    h, sim = _harness(maker, world, _human(talk=10.0))
    caplog.set_level(logging.WARNING, logger="dialer.engine.calls")
    async with h.running():
        first = await _talking(h, op1)
        assert sim.record_tries == [first.call_id] and not first.recorded
        await _run(h, 10)  # he hangs up
        assert (await h.engine.submit(CommandKind.complete, op1, completion_code_id=world.codes["Согласен"]))["ok"]
        await _run(h, 6)
        second = h.engine.operators[op1].call
        assert second is not None and second is not first and h.engine.operators[op1].state is S.in_call
        assert sim.record_tries == [first.call_id, second.call_id] and not second.recorded
    warnings = [r for r in caplog.records if "always records" in r.getMessage()]
    assert len(warnings) == 1 and "DIALER_MEDIA_RELAY_ALL" in warnings[0].getMessage()


def _wav(folder: Path, name: str, seconds: float) -> None:
    with wave.open(str(folder / f"{name}.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


async def _consent_world(maker: async_sessionmaker[AsyncSession], tmp_path: Path,
                         mode: DialMode) -> tuple[EngineWorld, Harness]:
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120, operator_wait_s=2, mode=mode)
    await _campaign(maker, world, record_mode=RecordMode.all, record_consent_audio="consent")
    _wav(tmp_path, "consent", 5.0)  # longer than the grace (2 s)
    await world.start()
    h, _ = _harness(maker, world, _human(talk=60.0), EngineConfig(drain_s=0, seed=1, audio_dir=str(tmp_path)))
    return world, h


def _count_abandons(h: Harness, world: EngineWorld) -> list[Any]:
    pacer = h.engine.campaigns[world.campaign_id].pacer
    abandons: list[Any] = []
    original = pacer.on_abandon

    def counted(*args: Any) -> None:
        abandons.append(args)
        return original(*args)

    pacer.on_abandon = counted  # type: ignore[method-assign,assignment]
    return abandons


async def test_a_consent_message_longer_than_the_grace_is_no_abandon(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    world, h = await _consent_world(sessionmaker, tmp_path, DialMode.progressive)
    op1 = world.operator_ids[0]
    async with h.running():
        abandons = _count_abandons(h, world)
        call = await _talking_after(h, op1, 9)  # answered at 2 s, 5 s of consent, then connected
        events = h.drain_events()
    assert not call.abandoned and abandons == []
    connected = [e for e in events if isinstance(e, ev.CallConnected) and e.attempt_id == call.attempt_id]
    assert connected and connected[0].waited_s >= 5.0
    assert not [e for e in events if isinstance(e, ev.CallOnHold)]


async def test_after_a_consent_message_the_grace_counts_the_silence_only(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    world, h = await _consent_world(sessionmaker, tmp_path, DialMode.predictive)
    op1 = world.operator_ids[0]
    async with h.running():
        abandons = _count_abandons(h, world)
        # a predictive call for a ready operator who leaves on a break before the customer answers
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await _run(h, 0.5)
        assert (await h.engine.submit(CommandKind.pause, op1, reason="lunch"))["ok"]
        await _run(h, 15)
        events = h.drain_events()
    [late] = [e for e in events if isinstance(e, ev.CallOnHold)]
    assert 7.0 <= late.waited_s < 7.1 and len(abandons) == 1  # 5 s of message, then 2 s of silence


async def _talking_after(h: Harness, op_id: int, seconds: float) -> Any:
    assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
    await _run(h, seconds)
    op = h.engine.operators[op_id]
    assert op.state is S.in_call and op.call is not None
    return op.call


async def test_pending_transfers_of_recovered_attempts_are_closed(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, mode=DialMode.progressive)
    contact = await world.contact()
    phone = (await world.phones(contact))[0].e164
    dead_id = await dead_run(maker)
    talking = await world.live_attempt(contact, phone, A.connected, engine_run_id=dead_id, connected_at=NOW,
                                       operator_id=world.operator_ids[0])
    async with maker() as session, session.begin():
        session.add(CallTransfer(attempt_id=talking, campaign_id=world.campaign_id, kind="pool", source="panel",
                                 from_operator_id=world.operator_ids[0], to_pool_id=world.pool_id, requested_at=NOW,
                                 result="pending"))
    h = Harness(maker, scenario(human=0.0, machine=0.0, busy=1.0), sim_operators=False)
    async with h.running():
        pass
    [row] = await _transfers(maker)
    assert (row.result, row.detail) == ("abandoned", RESTARTED_DETAIL) and row.ended_at is not None
