"""Inbound calls end to end (#12 §3): a SIPp customer calls the caller ID back through the trunk, the engine (as
``dialer engine`` runs it, real time) matches him to his contact and its campaign and connects him to the operator's
SIPp phone by 3PCC; with nobody free he hears the message, a callback is booked and he is hung up; an INVITE from an
address that is no trunk's is still refused (403)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.commands import CommandKind
from dialer.models import Attempt, Callback, CompletionCode, Contact, OperatorStateLog, SipDevice
from dialer.models.enums import (
    AttemptState,
    CallbackStatus,
    CampaignKind,
    ContactStatus,
    DialMode,
    OperatorState,
    OutcomeCategory,
)
from tests.engine.engine_world import EngineWorld, engine_world
from tests.telephony.sip.harness import start_caller
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available
from tests.telephony.sip.test_e2e_campaign import FAST, add_trunk, command, engine, engine_settings, register, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")]

CALLER = "+79165550001"
LOGIN, PASSWORD = "op-inbound", "phone-pass-inbound"
CONFIG = dataclasses.replace(FAST, inbound_queue_s=2.0, inbound_message_s=2.0, inbound_callback_after_s=120.0)


async def _world(maker: async_sessionmaker[AsyncSession]) -> tuple[EngineWorld, int]:
    """An infinite progressive campaign with one operator and the customer it called an hour ago (nothing left to
    dial: his contact is done, so no outbound call competes)."""
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, kind=CampaignKind.infinite,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60)
    contact_id = await world.contact(phones=[CALLER])
    at = datetime.now(UTC) - timedelta(hours=1)
    async with maker() as session, session.begin():
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        contact.status = ContactStatus.done
        session.add(Attempt(campaign_id=world.campaign_id, contact_id=contact_id, number=CALLER,
                            state=AttemptState.done, outcome=OutcomeCategory.no_answer, queued_at=at, dialed_at=at,
                            hung_up_at=at))
    return world, contact_id


async def _inbound(maker: async_sessionmaker[AsyncSession]) -> list[Attempt]:
    async with maker() as session:
        return list((await session.scalars(select(Attempt).where(Attempt.direction == "inbound")
                                           .order_by(Attempt.id))).all())


async def test_an_inbound_call_is_answered_by_a_free_operator(sessionmaker: async_sessionmaker[AsyncSession],
                                                            db_url: str, tmp_path: Path) -> None:
    maker = sessionmaker
    world, contact_id = await _world(maker)
    op_id = world.operator_ids[0]
    sip_port, caller_rtp, phone_rtp = free_port(), free_port(), free_port()
    # the operator's phone answers by itself; its ACK brings the caller's answer (3PCC flow I through re-INVITE)
    phone = await Sipp("phone_answer", {"invite_regexp": "Call-Info: .*answer-after=0",
                                        "ack_regexp": f"m=audio {caller_rtp} ", "talk_ms": 60000,
                                        "rtp_port": phone_rtp}, tmp_path).start()
    await add_trunk(maker, free_port())  # the carrier's address is 127.0.0.1: the caller comes from there
    async with maker() as session, session.begin():
        session.add(SipDevice(login=LOGIN, password=PASSWORD, operator_id=op_id))
    await world.start()
    caller: Sipp | None = None
    try:
        async with engine(engine_settings(tmp_path, sip_port), db_url, CONFIG) as running:
            await register(maker, tmp_path, sip_port, LOGIN, PASSWORD, phone.port)
            await command(maker, CommandKind.ready, op_id)
            # he calls back: re-INVITEd with the phone's offer when connected, talks 1.5 s, hangs up
            caller = await start_caller(tmp_path, sip_port, "inbound_talk", caller=CALLER.removeprefix("+"),
                                        dialled="74950000000", talk_ms=1500,
                                        reinvite_regexp=f"m=audio {phone_rtp} ", rtp_port=caller_rtp)

            async def in_wrap_up() -> bool:
                return any(a.state is AttemptState.wrap_up for a in await _inbound(maker))

            await wait_for(in_wrap_up, 40, "the inbound conversation to end in wrap-up")
            assert not running.done()
            await command(maker, CommandKind.complete, op_id, completion_code_id=world.codes["Согласен"],
                          comment="called us back")

            async def done() -> bool:
                return any(a.state is AttemptState.done for a in await _inbound(maker))

            await wait_for(done, 20, "the inbound attempt to be done")
        assert await caller.wait(15) == 0, caller.errors()
        assert await phone.wait(15) == 0, phone.errors()
    finally:
        await phone.stop()
        if caller is not None:
            await caller.stop()
    [attempt] = await _inbound(maker)
    assert (attempt.campaign_id, attempt.contact_id, attempt.number) == (world.campaign_id, contact_id, CALLER)
    assert (attempt.outcome, attempt.operator_id, attempt.sip_code) == (OutcomeCategory.answered, op_id, 200)
    assert attempt.answered_by == "human" and attempt.connected_at is not None and attempt.call_id
    assert attempt.hangup_side == "customer" and attempt.completion_code_id == world.codes["Согласен"]
    assert attempt.comment == "called us back" and attempt.caller_id == "+74950000000"  # the number he dialled, E.164
    async with maker() as session:
        states = [r.state for r in (await session.scalars(
            select(OperatorStateLog).where(OperatorStateLog.operator_id == op_id)
            .order_by(OperatorStateLog.id))).all()]
        contact = await session.get(Contact, contact_id)
    talk = [OperatorState.reserved, OperatorState.ringing, OperatorState.in_call, OperatorState.wrap_up,
            OperatorState.ready]
    assert any(states[i:i + len(talk)] == talk for i in range(len(states))), states
    assert contact is not None and contact.attempts_total == 1  # the normal completion path counted it
    # the wire: the caller's INVITE answered 180 then 200, his ACK; our re-INVITE, his 200, our ACK; his BYE
    assert caller.total("INVITE", "Sent") == 1 and caller.total("INVITE", "Recv") == 1
    assert caller.total("BYE", "Sent") == 1 and caller.total("ACK", "Recv") == 1
    assert phone.total("INVITE", "Recv") == 1 and phone.total("BYE", "Recv") == 1


async def test_nobody_free_message_and_callback_and_strangers_are_refused(
        sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> None:
    maker = sessionmaker
    world, contact_id = await _world(maker)  # its operator never logs in
    sip_port = free_port()
    await add_trunk(maker, free_port())
    await world.start()
    callers: list[Sipp] = []
    try:
        async with engine(engine_settings(tmp_path, sip_port), db_url, CONFIG):
            # an INVITE from an address that is no trunk's: 403 (again and again until the driver listens)
            async def refused() -> bool:
                stranger = await start_caller(tmp_path, sip_port, "inbound_refused", caller=CALLER.removeprefix("+"),
                                              local_ip="127.0.0.2", code=403, wait_ms=3000)
                callers.append(stranger)
                return await stranger.wait(10) == 0

            await wait_for(refused, 30, "a stranger's INVITE to be refused with 403")
            assert await _inbound(maker) == []
            # the customer calls back while nobody is free: queue 2 s, the message 2 s, then our BYE
            caller = await start_caller(tmp_path, sip_port, "inbound_talk", caller=CALLER.removeprefix("+"),
                                        dialled="74950000000", wait_ms=30000)
            callers.append(caller)

            async def done() -> bool:
                return any(a.state is AttemptState.done for a in await _inbound(maker))

            await wait_for(done, 40, "the inbound attempt to be done")
            assert await caller.wait(15) == 0, caller.errors()
    finally:
        for proc in callers:
            await proc.stop()
    [attempt] = await _inbound(maker)
    async with maker() as session:
        code = await session.scalar(select(CompletionCode.id).where(CompletionCode.system_key == "inbound_callback"))
        callbacks = (await session.scalars(select(Callback).where(Callback.contact_id == contact_id))).all()
    assert (attempt.contact_id, attempt.outcome, attempt.completion_code_id) == (contact_id, OutcomeCategory.abandoned,
                                                                                code)
    assert attempt.operator_id is None and attempt.connected_at is None and attempt.answered_at is not None
    assert attempt.hangup_side == "dialer" and "message played, callback booked" in attempt.hangup_cause
    [callback] = callbacks
    assert callback.campaign_id == world.campaign_id and callback.status is CallbackStatus.pending
    assert callback.window_start > datetime.now(UTC) + timedelta(seconds=60)
    assert caller.total("BYE", "Recv") == 1 and caller.total("INVITE", "Recv") == 0  # never connected
    assert (tmp_path / "var" / "audio" / "callback-message.wav").stat().st_size > 40_000  # what he heard
