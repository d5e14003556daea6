"""A transfer end to end through the SIP driver (#12 §2): the engine (as ``dialer engine`` runs it, real time) calls
a SIPp customer, connects him to the first operator's SIPp phone, the operator transfers him to the second operator
through the command channel, and the customer's re-INVITEs point his media at the first phone, at the dialer's hold
audio, then at the second phone — one attempt, one ``call_transfers`` row."""

from __future__ import annotations

import re
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.commands import CommandKind
from dialer.models import Attempt, OperatorStateLog, SipDevice
from dialer.models.enums import AttemptState, CampaignKind, DialMode, OperatorState
from dialer.models.transfer import CallTransfer
from tests.engine.engine_world import engine_world
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available, stop_all
from tests.telephony.sip.test_e2e_campaign import FAST, add_trunk, command, engine, engine_settings, register, wait_for
from tests.telephony.sip.test_transfers import reinvites

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")]

CUSTOMER = "+79165550042"


async def _current(maker: async_sessionmaker[AsyncSession], operator_id: int) -> OperatorStateLog | None:
    async with maker() as session:
        return (await session.scalars(select(OperatorStateLog).where(
            OperatorStateLog.operator_id == operator_id, OperatorStateLog.ended_at.is_(None)))).one_or_none()


async def test_a_blind_transfer_between_two_sipp_phones(sessionmaker: async_sessionmaker[AsyncSession], db_url: str,
                                                        tmp_path: Path) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=2, mode=DialMode.progressive, kind=CampaignKind.infinite,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60,
                               answer_timeout_s=10)
    await world.contact(phones=[CUSTOMER])
    op1, op2 = world.operator_ids
    sip_port, carrier_rtp = free_port(), free_port()
    carrier = await Sipp("carrier_transfer", {"busy_user": "79990000002", "busy_ms": 300, "answer_ms": 500,
                                              "rtp_port": carrier_rtp, "wait_ms": 60000}, tmp_path, calls=2,
                         extra=["-trace_msg"]).start()
    phones, rtp = {}, {}
    for login in ("op-one", "op-two"):
        rtp[login] = free_port()
        phones[login] = await Sipp("phone_transfer", {"rtp_port": rtp[login], "talk_ms": 60000, "refer_block": ""},
                                   tmp_path, calls=10000, extra=["-trace_msg"]).start()
    await add_trunk(maker, carrier.port)
    async with maker() as session, session.begin():
        session.add_all([SipDevice(login="op-one", password="phone-pass-one", operator_id=op1),
                         SipDevice(login="op-two", password="phone-pass-two", operator_id=op2)])
    await world.start()
    try:
        async with engine(engine_settings(tmp_path, sip_port), db_url, FAST) as running:
            await register(maker, tmp_path, sip_port, "op-one", "phone-pass-one", phones["op-one"].port)
            await register(maker, tmp_path, sip_port, "op-two", "phone-pass-two", phones["op-two"].port)
            await command(maker, CommandKind.ready, op1)

            async def first_talks() -> bool:
                period = await _current(maker, op1)
                return period is not None and period.state is OperatorState.in_call

            await wait_for(first_talks, 30, "the first operator to talk to the customer")
            await command(maker, CommandKind.ready, op2)
            await command(maker, CommandKind.transfer, op1, to="operator", to_operator_id=op2, comment="по тарифу")

            async def second_talks() -> bool:
                period = await _current(maker, op2)
                return period is not None and period.state is OperatorState.in_call

            await wait_for(second_talks, 30, "the second operator to talk to the customer")
            first = await _current(maker, op1)
            assert first is not None and first.state is OperatorState.wrap_up
            await command(maker, CommandKind.complete, op1, comment="передал")
            await command(maker, CommandKind.hangup, op2)

            async def wrapped() -> bool:
                period = await _current(maker, op2)
                return period is not None and period.state is OperatorState.wrap_up

            await wait_for(wrapped, 20, "the second operator's wrap-up")
            await command(maker, CommandKind.complete, op2, completion_code_id=world.codes["Согласен"])

            async def done() -> bool:
                async with maker() as session:
                    states = (await session.scalars(select(Attempt.state))).all()
                return list(states) == [AttemptState.done]

            await wait_for(done, 20, "the attempt to be done")
            assert not running.done()
    finally:
        await stop_all(carrier, *phones.values())
    async with maker() as session:
        [attempt] = (await session.scalars(select(Attempt))).all()
        [row] = (await session.scalars(select(CallTransfer))).all()
    assert (attempt.operator_id, attempt.completion_code_id) == (op2, world.codes["Согласен"])
    assert (row.kind, row.from_operator_id, row.to_operator_id, row.result, row.comment) == (
        "operator", op1, op2, "connected", "по тарифу\nпередал")
    # the customer's media went to the first phone, to our hold audio, then to the second phone
    ports = [int(re.sub(r"\D", "", m)) for m in reinvites(carrier)]
    assert ports[0] == rtp["op-one"] and ports[-1] == rtp["op-two"] and len(ports) == 3, ports
