"""Operators' phones that fail, with the whole engine on the SIP driver (as ``dialer engine`` runs it): a phone that
refuses an offered call hands the customer to another operator at once, and a phone that dies mid-call puts the
customer back on hold audio (rescued, not hung up on) and keeps its operator out of "ready" until it is back."""

from __future__ import annotations

import time
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.commands import CommandKind
from dialer.engine.runner import EngineConfig
from dialer.models import OperatorStateLog, SipDevice, SipRegistration
from dialer.models.enums import AttemptState, DialMode, OperatorState, OutcomeCategory
from tests.engine.engine_world import engine_world
from tests.telephony.sip.harness import reply_params
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available
from tests.telephony.sip.test_e2e_campaign import (
    ANSWERS,
    _has_attempt,
    add_trunk,
    command,
    engine,
    engine_settings,
    register,
    wait_for,
)
from tests.telephony.sip.test_transfers import reinvites

pytestmark = pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")


async def _periods(maker: async_sessionmaker[AsyncSession], op_id: int) -> list[tuple[OperatorState, str]]:
    async with maker() as session:
        rows = (await session.scalars(select(OperatorStateLog).where(OperatorStateLog.operator_id == op_id)
                                      .order_by(OperatorStateLog.id))).all()
    return [(r.state, r.reason or "") for r in rows]


@pytest.mark.slow
async def test_a_phone_that_refuses_hands_the_customer_to_another_operator_at_once(
        sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> None:
    """The defect: a phone answering 486 kept its operator reserved and the customer in silence for the whole offer
    time (15 s). Now the failed offer goes to the other operator at once."""
    maker = sessionmaker
    world = await engine_world(maker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60,
                               answer_timeout_s=10)
    await world.contact(phones=[ANSWERS])
    refuser, other = world.operator_ids
    sip_port, phone_rtp = free_port(), free_port()
    carrier = await Sipp("carrier_by_number", {
        "busy_user": "0", "busy_ms": 0, "answer_ms": 200, "rtp_port": free_port(),
        "reinvite_regexp": f"m=audio {phone_rtp} ", "ack_regexp": ".*", "talk_ms": 1000, "wait_ms": 30000},
        tmp_path).start()
    busy = await Sipp("carrier_reply", reply_params(486, "Busy Here", answer_ms=300), tmp_path).start()
    phone = await Sipp("phone_answer", {"invite_regexp": ".*", "ack_regexp": ".*", "talk_ms": 60000,
                                        "rtp_port": phone_rtp}, tmp_path).start()
    await add_trunk(maker, carrier.port)
    async with maker() as session, session.begin():
        session.add_all([SipDevice(login="op-busy", password="pw-busy-1", operator_id=refuser),
                         SipDevice(login="op-other", password="pw-other-1", operator_id=other)])
    await world.start()
    config = EngineConfig(tick_s=0.2, control_poll_s=0.2, heartbeat_s=0.5, drain_s=3.0, finish_check_s=0.5,
                          offer_timeout_s=15.0)
    try:
        async with engine(engine_settings(tmp_path, sip_port), db_url, config):
            await register(maker, tmp_path, sip_port, "op-busy", "pw-busy-1", busy.port)
            await register(maker, tmp_path, sip_port, "op-other", "pw-other-1", phone.port)
            await command(maker, CommandKind.ready, refuser)  # alone: the call is reserved for him
            await wait_for(lambda: _has_attempt(maker, world.campaign_id), 10, "the call to be placed")
            await command(maker, CommandKind.ready, other)

            async def in_wrap_up() -> bool:
                rows = await world.attempts()
                return bool(rows) and rows[0].state is AttemptState.wrap_up

            await wait_for(in_wrap_up, 20, "the call to be talked and hung up")
        assert await busy.wait(5) == 0, busy.errors()  # it answered 486 and got its ACK
        assert await phone.wait(5) == 0, phone.errors()
    finally:
        for proc in (carrier, busy, phone):
            await proc.stop()
    [attempt] = await world.attempts()
    assert attempt.operator_id == other and attempt.answered_at is not None and attempt.connected_at is not None
    waited = (attempt.connected_at - attempt.answered_at).total_seconds()
    assert waited < 6, f"the customer waited {waited:.1f} s: the failed offer was not handed on at once"
    states = [s for s, _ in await _periods(maker, refuser)]
    assert states[:3] == [OperatorState.ready, OperatorState.reserved, OperatorState.ready] or \
        states[:4] == [OperatorState.ready, OperatorState.reserved, OperatorState.ringing, OperatorState.ready]
    assert OperatorState.in_call not in states


@pytest.mark.slow
async def test_a_phone_that_dies_mid_call_rescues_the_customer_and_pauses_its_operator_until_it_is_back(
        sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> None:
    """The defect: a phone killed mid-call left the attempt connected for 90 s with no BYE to the carrier, and then
    its operator went back to ready and got the next call on the dead phone. Now the driver notices (in-dialog
    OPTIONS), puts the customer back on its own media (a re-INVITE, hold audio) instead of dead air or a hang-up, and
    the operator is paused with his phone offline until it registers again. (What the engine does with the rescued
    customer — another operator, the abandon message — is the engine's; here nobody else is there, and the customer
    hangs up at last.)"""
    maker = sessionmaker
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, max_attempts_per_contact=1,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60,
                               answer_timeout_s=10)
    await world.contact(phones=[ANSWERS])
    await world.contact(phones=["+79160000009"])
    [op_id] = world.operator_ids
    sip_port, phone_rtp = free_port(), free_port()
    settings = engine_settings(tmp_path, sip_port)
    # the customer takes any re-INVITE and hangs up 15 s after the last one (nobody took him)
    carrier = await Sipp("carrier_transfer", {"busy_user": "0", "busy_ms": 0, "answer_ms": 200,
                                              "rtp_port": free_port(), "wait_ms": 15000},
                         tmp_path, extra=["-trace_msg"]).start()
    phone = await Sipp("phone_answer", {"invite_regexp": ".*", "ack_regexp": ".*", "talk_ms": 60000,
                                        "rtp_port": phone_rtp}, tmp_path).start()
    await add_trunk(maker, carrier.port)
    async with maker() as session, session.begin():
        session.add(SipDevice(login="op-dies", password="pw-dies-1", operator_id=op_id))
    await world.start()
    config = EngineConfig(tick_s=0.2, control_poll_s=0.2, heartbeat_s=0.5, drain_s=3.0, finish_check_s=0.5)
    try:
        async with engine(settings, db_url, config):
            await register(maker, tmp_path, sip_port, "op-dies", "pw-dies-1", phone.port)
            await command(maker, CommandKind.ready, op_id)

            async def connected() -> bool:
                rows = await world.attempts()
                return any(a.state is AttemptState.connected for a in rows)

            await wait_for(connected, 20, "the customer to be connected")
            assert reinvites(carrier) == [f"m=audio {phone_rtp}"]
            assert phone.proc is not None
            phone.proc.kill()  # pulled from the network: no BYE, no unregistration
            await phone.proc.wait()
            killed = time.monotonic()

            async def on_hold_audio() -> bool:
                return reinvites(carrier)[-1:] == [f"m=audio {settings.rtp_port_min}"]

            # the in-dialog OPTIONS every 5 s goes unanswered for 3 s: the customer is back on our media within ~8 s
            await wait_for(on_hold_audio, 20, "the customer to be re-INVITEd onto the dialer's media")
            assert time.monotonic() - killed < 12
            assert carrier.total("BYE", "Recv") == 0  # not hung up on

            async def paused_phone_offline() -> bool:
                periods = await _periods(maker, op_id)
                return periods[-1] == (OperatorState.paused, "phone offline")

            async def call_over() -> bool:
                rows = await world.attempts()
                return bool(rows) and rows[0].state in (AttemptState.wrap_up, AttemptState.done)

            await wait_for(call_over, 30, "the rescued customer to hang up at last")
            if (await _periods(maker, op_id))[-1][0] is OperatorState.wrap_up:  # his card of the call he lost
                await command(maker, CommandKind.complete, op_id, completion_code_id=world.codes["Согласен"])
            await wait_for(paused_phone_offline, 10, "the operator to be paused with his phone offline")
            async with maker() as session:
                reg = await session.get(SipRegistration, "op-dies")
            assert reg is not None and not reg.reachable
            assert len(await world.attempts()) == 1  # the second contact was not dialled for a dead phone

            # the phone is back (a new REGISTER): he is ready again and gets the second call
            phone2 = await Sipp("phone_answer", {"invite_regexp": ".*", "ack_regexp": ".*", "talk_ms": 500,
                                                 "rtp_port": phone_rtp}, tmp_path).start()
            try:
                await register(maker, tmp_path, sip_port, "op-dies", "pw-dies-1", phone2.port)
                await wait_for(lambda: _count_attempts(world, 2), 20, "the second call after the phone is back")
            finally:
                await phone2.stop()
    finally:
        for proc in (carrier, phone):
            await proc.stop()
    first = min(await world.attempts(), key=lambda a: a.id)
    assert first.outcome is OutcomeCategory.answered


async def _count_attempts(world: object, n: int) -> bool:
    return len(await world.attempts()) >= n  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_a_200_that_crosses_the_cancel_is_an_abandoned_call(
        sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> None:
    """The defect: a 200 that crossed our CANCEL at the ring timeout was recorded as a ring timeout (no_answer),
    although a person answered and was hung up on. Now the attempt is answered and abandoned (it counts in the
    abandon rate), hung up by the dialer, and no operator is left reserved."""
    maker = sessionmaker
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, max_attempts_per_contact=1,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60,
                               answer_timeout_s=2)
    await world.contact(phones=[ANSWERS])
    [op_id] = world.operator_ids
    sip_port = free_port()
    carrier = await Sipp("carrier_ring", {"on_cancel": 200}, tmp_path).start()  # rings; the 200 crosses the CANCEL
    phone = await Sipp("phone_answer", {"invite_regexp": ".*", "ack_regexp": ".*", "talk_ms": 60000,
                                        "rtp_port": free_port()}, tmp_path).start()
    await add_trunk(maker, carrier.port)
    async with maker() as session, session.begin():
        session.add(SipDevice(login="op-cross", password="pw-cross-1", operator_id=op_id))
    await world.start()
    config = EngineConfig(tick_s=0.2, control_poll_s=0.2, heartbeat_s=0.5, drain_s=3.0, finish_check_s=0.5)
    try:
        async with engine(engine_settings(tmp_path, sip_port), db_url, config):
            await register(maker, tmp_path, sip_port, "op-cross", "pw-cross-1", phone.port)
            await command(maker, CommandKind.ready, op_id)

            async def done() -> bool:
                rows = await world.attempts()
                return bool(rows) and rows[0].state is AttemptState.done

            await wait_for(done, 20, "the attempt to be done")
            await wait_for(lambda: _last_state_is(maker, op_id, OperatorState.ready), 10, "the operator to be free")
        assert await carrier.wait(5) == 0, carrier.errors()  # CANCEL, then the 200 ACKed and BYEd
    finally:
        for proc in (carrier, phone):
            await proc.stop()
    [attempt] = await world.attempts()
    assert attempt.outcome is OutcomeCategory.abandoned
    assert attempt.answered_at is not None and attempt.connected_at is None and attempt.hangup_side == "dialer"
    assert attempt.hangup_cause is not None and attempt.hangup_cause.startswith("answered as the dialer cancelled")
    assert phone.total("INVITE", "Recv") == 0  # nobody was connected to a call already hung up


async def _last_state_is(maker: async_sessionmaker[AsyncSession], op_id: int, state: OperatorState) -> bool:
    periods = await _periods(maker, op_id)
    return bool(periods) and periods[-1][0] is state
