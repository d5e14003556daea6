"""Campaigns' and operators' media settings in calls (issue #16 via #12's leftovers; engine/media.py), on the simulated
driver in virtual time: recording drawn per call and the operator's override, the consent message before the
operator, machine detection with a message left (never a live answer in the abandon rate), and the abandon message
with its callback."""

from __future__ import annotations

import random
import wave
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.engine.media import audio_length_s, record_drawn
from dialer.engine.runner import Engine, EngineConfig
from dialer.models import Attempt, Callback, Campaign, Operator
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from dialer.models.media import RecordMode, RecordOverride
from dialer.telephony.base import CallId, Originate
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Constant, Scenario
from dialer.workplace import repository as workplace_repo
from tests.engine.engine_world import NOW, EngineWorld, Harness, engine_world, scenario


class MediaSim(SimTelephony):
    """The simulator, keeping what the engine asked of it: the calls placed, what was played, and recording started
    and stopped (the simulator has no media plane: :class:`~dialer.telephony.base.Records` is only noted)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.placed: list[Originate] = []
        self.played: list[tuple[CallId, str | None, float]] = []
        self.recording: list[tuple[CallId, str]] = []

    async def originate(self, request: Originate) -> CallId:
        self.placed.append(request)
        return await super().originate(request)

    async def play(self, call_id: CallId, audio: str | None) -> None:
        self.played.append((call_id, audio, self.clock.now()))
        await super().play(call_id, audio)

    async def start_recording(self, call_id: CallId) -> None:
        self.recording.append((call_id, "start"))

    async def stop_recording(self, call_id: CallId) -> None:
        self.recording.append((call_id, "stop"))


def _harness(maker: async_sessionmaker[AsyncSession], traffic: Scenario, world: EngineWorld, *,
             config: EngineConfig) -> tuple[Harness, MediaSim]:
    h = Harness(maker, traffic, human_operators=tuple(world.operator_ids), config=config)
    sim = MediaSim(h.clock, traffic, seed=1, patience_s=Constant(300.0))
    h.sim = sim
    h.engine = Engine(maker, sim, clock=h.clock, config=config)
    h.operators = None
    h.events = h.engine.bus.subscribe(maxsize=100_000)
    for i in range(len(world.operator_ids)):  # the operators' phones (engine_world's extensions)
        sim.register_endpoint(f"sip-op{i + 1}")
    return h, sim


def _wav(folder: Path, name: str, seconds: float) -> None:
    with wave.open(str(folder / f"{name}.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


async def _campaign(maker: async_sessionmaker[AsyncSession], world: EngineWorld, **media: Any) -> None:
    async with maker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(**media))


async def _attempts(maker: async_sessionmaker[AsyncSession], world: EngineWorld) -> list[Attempt]:
    return await world.attempts()


def _human(answer_after: float = 2.0, talk: float = 30.0) -> Scenario:
    return scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(answer_after), talk=Constant(talk))


def test_recording_is_drawn_per_call_and_wav_lengths_are_read(tmp_path: Path) -> None:
    rng = random.Random(5)
    assert record_drawn("all", None, rng) and not record_drawn("none", 50, rng)
    drawn = sum(record_drawn("percent", 30, rng) for _ in range(2000))
    assert 500 < drawn < 700  # about 30 %
    _wav(tmp_path, "consent", 2.5)
    assert audio_length_s("consent", tmp_path) == 2.5
    assert audio_length_s("missing", tmp_path) is None
    assert audio_length_s("../etc/passwd", tmp_path) is None  # only files of the directory


async def test_a_recorded_call_plays_the_consent_before_the_operator_and_the_override_records_or_not(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=2, contacts=2, wrap_up_s=120, operator_wait_s=5)
    op1, op2 = world.operator_ids
    await _campaign(maker, world, record_mode=RecordMode.all, record_consent_audio="consent")
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == op2).values(record_override=RecordOverride.never))
    await world.start()
    _wav(tmp_path, "consent", 3.0)
    h, sim = _harness(maker, _human(), world, config=EngineConfig(drain_s=0, seed=1, audio_dir=str(tmp_path)))
    async with h.running():
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await h.advance(3.5)  # answered after 2 s: the consent message plays
        await h.settle()
        assert sim.placed and sim.placed[0].record and not sim.placed[0].detect_machine
        assert [p[1] for p in sim.played] == ["consent"]
        assert h.engine.operators[op1].state is OperatorState.reserved  # not connected during the message
        await h.advance(3)
        await h.settle()
        assert h.engine.operators[op1].state is OperatorState.in_call
        connected = [e for e in h.drain_events() if isinstance(e, ev.CallConnected)]
        assert connected and connected[0].waited_s >= 3.0  # after the whole message
        # the second operator never records: his call's recording is stopped when he is connected
        assert (await h.engine.submit(CommandKind.ready, op2))["ok"]
        await h.advance(8)
        await h.settle()
        assert h.engine.operators[op2].state is OperatorState.in_call
        second = h.engine.operators[op2].call
        assert second is not None and second.call_id is not None
        assert sim.recording == [(second.call_id, "stop")]


async def test_an_operator_who_always_records_starts_it_on_an_unrecorded_call(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120)
    op1 = world.operator_ids[0]
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == op1).values(record_override=RecordOverride.always))
    await world.start()
    h, sim = _harness(maker, _human(), world, config=EngineConfig(drain_s=0, seed=1))
    async with h.running():
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await h.advance(4)
        await h.settle()
        call = h.engine.operators[op1].call
        assert call is not None and call.call_id is not None and h.engine.operators[op1].state is OperatorState.in_call
        assert not sim.placed[0].record and call.recorded
        assert sim.recording == [(call.call_id, "start")]
        assert not [p for p in sim.played if p[1] == "consent"]


async def test_a_machine_gets_the_message_and_is_no_live_answer(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120)
    op1 = world.operator_ids[0]
    await _campaign(maker, world, amd_enabled=True, amd_message="leave-message")
    await world.start()
    traffic = scenario(human=0.0, machine=1.0, busy=0.0, answer_after=Constant(2.0))
    h, sim = _harness(maker, traffic, world, config=EngineConfig(drain_s=0, seed=1))
    async with h.running():
        pacer = h.engine.campaigns[world.campaign_id].pacer
        abandons: list[Any] = []
        original = pacer.on_abandon
        pacer.on_abandon = lambda *a: (abandons.append(a), original(*a))[1]  # type: ignore[method-assign]
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await h.advance(5)  # answered, recognised as a machine; the driver leaves the message (10 s)
        await h.settle()
        assert sim.placed[0].detect_machine and sim.placed[0].machine_message == "leave-message"
        [attempt] = await _attempts(maker, world)
        assert attempt.state is not AttemptState.done  # the engine did not hang up on the machine
        await h.advance(15)
        await h.settle()
        events = h.drain_events()
    [attempt] = await _attempts(maker, world)
    assert attempt.state is AttemptState.done and attempt.answered_by == "machine"
    assert (attempt.outcome, attempt.completion_code_id) == (OutcomeCategory.no_answer,
                                                             world.codes["answering_machine"])
    assert attempt.hangup_cause == "machine message left"
    assert abandons == []
    finished = [e for e in events if isinstance(e, ev.AttemptFinished)]
    assert finished and not finished[0].abandoned and finished[0].waited_s is None
    # the floor's abandon rate: no live answer, nothing abandoned
    async with maker() as session:
        today = await workplace_repo.today(session, world.campaign_id, NOW.replace(hour=0), 2.0)
    assert (today["live"], today["abandoned"]) == (0, 0)


async def test_nobody_free_the_customer_hears_the_abandon_message_and_gets_a_callback(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    maker = sessionmaker
    from dialer.models.enums import DialMode

    world = await engine_world(maker, operators=1, contacts=1, wrap_up_s=120, mode=DialMode.predictive)
    op1 = world.operator_ids[0]
    await _campaign(maker, world, abandon_message="all-busy")
    await world.start()
    _wav(tmp_path, "all-busy", 4.0)
    h, sim = _harness(maker, _human(), world, config=EngineConfig(drain_s=0, seed=1, audio_dir=str(tmp_path),
                                                                  abandon_callback_after_s=7200.0))
    async with h.running():
        # a predictive call for a ready operator who leaves on a break before the customer answers
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        await h.advance(0.5)
        await h.settle()
        assert h.engine.placed >= 1
        assert (await h.engine.submit(CommandKind.pause, op1, reason="lunch"))["ok"]
        await h.advance(4.5)  # answered at 2 s, the 2-second wait is over at 4 s: the message
        await h.settle()
        assert [p[1] for p in sim.played] == ["all-busy"]
        await h.advance(5)
        await h.settle()
        events = h.drain_events()
    attempts = [a for a in await _attempts(maker, world) if a.answered_at is not None]
    [attempt] = attempts
    assert attempt.state is AttemptState.done and attempt.outcome is OutcomeCategory.abandoned
    assert attempt.hangup_cause == "no operator within the grace time: message played, callback booked"
    async with maker() as session:
        [callback] = (await session.scalars(select(Callback).where(Callback.contact_id == attempt.contact_id))).all()
    assert callback.window_start >= attempt.hung_up_at  # type: ignore[operator]
    assert (callback.window_start - attempt.hung_up_at).total_seconds() >= 7190  # type: ignore[operator]
    assert next(e for e in events if isinstance(e, ev.AttemptFinished)).abandoned
