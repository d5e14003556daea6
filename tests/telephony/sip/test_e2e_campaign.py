"""A whole campaign on the SIP driver: engine → SIP → SIPp carrier → 3PCC → SIPp operator phone, results in the
database; and the engine's safety with SIP errors (503s auto-stop a campaign; a trunk that is down places nothing
and loses no contact).

The engine runs as ``dialer engine`` runs it (:func:`dialer.tools.engine.run_engine` with ``DIALER_TELEPHONY=sip``:
trunks and devices from the database through :func:`dialer.voip.runtime.configured_telephony`), in real time; the
operator is a person at the SIPp phone, driven through the command API (``engine_commands``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings
from dialer.engine.commands import CommandKind, enqueue, wait_result
from dialer.engine.runner import EngineConfig
from dialer.models import (
    Attempt,
    Campaign,
    Contact,
    OperatorStateLog,
    SipDevice,
    SipRegistration,
    SipTrunk,
    SipTrunkState,
)
from dialer.models.enums import AttemptState, CampaignStatus, DialMode, OperatorState, OutcomeCategory
from dialer.tools.engine import run_engine
from tests.engine.engine_world import EngineWorld, engine_world
from tests.telephony.sip.harness import reply_params
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available

pytestmark = pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")

ANSWERS, BUSY = "+79160000001", "+79160000002"
LOGIN, PASSWORD = "op-e2e", "phone-pass-e2e"
FAST = EngineConfig(tick_s=0.2, control_poll_s=0.2, heartbeat_s=0.5, drain_s=3.0, finish_check_s=0.5,
                    offer_timeout_s=10.0)


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def campaign(maker: async_sessionmaker[AsyncSession], numbers: list[str]) -> EngineWorld:
    """A progressive campaign dialling around the clock, one operator, one attempt per contact."""
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, max_attempts_per_contact=1,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60,
                               answer_timeout_s=10)
    for number in numbers:
        await world.contact(phones=[number])
    return world


async def add_trunk(maker: async_sessionmaker[AsyncSession], port: int, **columns: Any) -> int:
    async with maker() as session, session.begin():
        row = SipTrunk(name="sipp carrier", host="127.0.0.1", port=port, transport="udp",
                       caller_id="+74950000000", **{"options_interval_s": 0.0, **columns})
        session.add(row)
        await session.flush()
        return row.id


def engine_settings(tmp_path: Path, sip_port: int) -> Settings:
    rtp = free_port()
    return Settings(database_url="", data_dir=tmp_path / "var", telephony="sip", sip_bind_host="127.0.0.1",
                    sip_port=sip_port, sip_tcp=False, rtp_port_min=rtp, rtp_port_max=rtp + 1)


@contextlib.asynccontextmanager
async def engine(settings: Settings, db_url: str, config: EngineConfig = FAST) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_engine(settings, database_url=db_url, config=config, stop=stop, prepare=False))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def register(maker: async_sessionmaker[AsyncSession], tmp_path: Path, sip_port: int, login: str, password: str,
                   phone_port: int) -> None:
    """A SIPp UAC registers ``login`` (digest) with its Contact at ``phone_port``, once the engine's driver listens;
    returns when the engine has recorded the registration."""
    reg = Sipp("phone_register", {"phone_port": phone_port, "expires": 300, "realm": "dialer", "expect": 200,
                                  "ruri_params": "",
                                  "path_header": ""}, tmp_path, remote=f"127.0.0.1:{sip_port}",
               extra=["-s", login, "-au", login, "-ap", password])

    async def registered() -> bool:
        if reg.proc is None or reg.proc.returncode is not None:
            await reg.start()  # again until the engine's driver listens
            with contextlib.suppress(TimeoutError):
                await reg.wait(3)
        async with maker() as session:
            row = await session.get(SipRegistration, login)
        return row is not None and row.online

    await wait_for(registered, 15, f"{login} to register")
    assert reg.proc is not None and reg.proc.returncode == 0, reg.errors()


async def command(maker: async_sessionmaker[AsyncSession], kind: CommandKind, operator_id: int,
                  **payload: Any) -> dict[str, Any]:
    result = await wait_result(maker, await enqueue(maker, kind, operator_id, payload), timeout_s=5)
    assert result is not None and result.get("ok"), result
    return result


@pytest.mark.slow
async def test_a_campaign_over_sip_end_to_end(sessionmaker: async_sessionmaker[AsyncSession], db_url: str,
                                             tmp_path: Path) -> None:
    maker = sessionmaker
    world = await campaign(maker, [ANSWERS, BUSY])
    op_id = world.operator_ids[0]
    sip_port, carrier_rtp, phone_rtp = free_port(), free_port(), free_port()
    # the carrier: ANSWERS answers and is connected to the phone (its re-INVITE carries the phone's offer, the ACK
    # our answer), the customer hangs up after 1.5 s; BUSY gets 486
    carrier = await Sipp("carrier_by_number", {
        "busy_user": BUSY.removeprefix("+"), "busy_ms": 300, "answer_ms": 400, "rtp_port": carrier_rtp,
        "reinvite_regexp": f"m=audio {phone_rtp} ", "ack_regexp": "Content-Length: 0", "talk_ms": 1500,
        "wait_ms": 20000}, tmp_path, calls=2).start()
    # the operator's phone: asked to answer by itself (Call-Info answer-after), it does; the ACK brings the
    # carrier's answer (3PCC flow I)
    phone = await Sipp("phone_answer", {"invite_regexp": "Call-Info: .*answer-after=0",
                                        "ack_regexp": f"m=audio {carrier_rtp} ", "talk_ms": 60000,
                                        "rtp_port": phone_rtp}, tmp_path).start()
    await add_trunk(maker, carrier.port)
    async with maker() as session, session.begin():
        session.add(SipDevice(login=LOGIN, password=PASSWORD, operator_id=op_id))
    await world.start()
    settings = engine_settings(tmp_path, sip_port)
    try:
        async with engine(settings, db_url) as running:
            await register(maker, tmp_path, sip_port, LOGIN, PASSWORD, phone.port)
            await command(maker, CommandKind.ready, op_id)

            async def in_wrap_up() -> bool:
                async with maker() as session:
                    return bool(await session.scalar(select(Attempt.id).where(
                        Attempt.campaign_id == world.campaign_id, Attempt.state == AttemptState.wrap_up)))

            await wait_for(in_wrap_up, 20, "the answered call to end in wrap-up")
            assert not running.done()
            await command(maker, CommandKind.complete, op_id, completion_code_id=world.codes["Отказ"],
                          comment="not interested")

            async def both_done() -> bool:
                rows = await world.attempts()
                return len(rows) == 2 and all(a.state is AttemptState.done for a in rows)

            await wait_for(both_done, 20, "both attempts to be done")
            await wait_for(lambda: _status_is(maker, world.campaign_id, CampaignStatus.finished), 10,
                           "the finite campaign to finish")
        assert await carrier.wait(10) == 0, carrier.errors()
        assert await phone.wait(10) == 0, phone.errors()
    finally:
        for proc in (carrier, phone):
            await proc.stop()

    by_number = {a.number: a for a in await world.attempts()}
    answered, busy = by_number[ANSWERS], by_number[BUSY]
    assert (answered.outcome, answered.operator_id, answered.sip_code) == (OutcomeCategory.answered, op_id, 200)
    assert answered.answered_by == "human" and answered.connected_at is not None and answered.call_id
    assert answered.hangup_side == "customer" and answered.completion_code_id == world.codes["Отказ"]
    assert answered.comment == "not interested"
    assert (busy.outcome, busy.sip_code, busy.hangup_cause) == (OutcomeCategory.busy, 486, "486 Busy Here")
    assert busy.connected_at is None and busy.completion_code_id is not None
    async with maker() as session:
        states = [r.state for r in (await session.scalars(
            select(OperatorStateLog).where(OperatorStateLog.operator_id == op_id)
            .order_by(OperatorStateLog.id))).all()]
        reg = await session.get(SipRegistration, LOGIN)
        contacts = (await session.scalars(select(Contact).where(Contact.id.in_(
            [answered.contact_id, busy.contact_id])))).all()
    # reserved for each call in turn (progressive); the phone rang, he talked, wrapped up, completed
    talk = [OperatorState.reserved, OperatorState.ringing, OperatorState.in_call, OperatorState.wrap_up,
            OperatorState.ready]
    assert states[0] is OperatorState.ready
    assert any(states[i:i + len(talk)] == talk for i in range(len(states))), states
    assert states.count(OperatorState.reserved) == 2 and states.count(OperatorState.in_call) == 1
    assert reg is not None and reg.online and reg.reachable and f":{phone.port}" in reg.contact
    assert reg.user_agent == "SIPp phone" and reg.source.startswith("udp:127.0.0.1:")
    assert all(c.attempts_total == 1 for c in contacts)
    assert (tmp_path / "var" / "audio" / "hold-music.wav").stat().st_size > 40_000  # the default hold audio
    # what crossed the wire: two INVITEs and the re-INVITE, their ACKs, the customer's BYE; the phone's INVITE,
    # ACK and our BYE after the customer hung up
    assert carrier.total("INVITE", "Recv") == 3 and carrier.total("ACK", "Recv") == 3
    assert carrier.total("486", "Sent") == 1 and carrier.total("BYE", "Sent") == 1
    assert phone.total("INVITE", "Recv") == 1 and phone.total("ACK", "Recv") == 1
    assert phone.total("BYE", "Recv") == 1


async def _status_is(maker: async_sessionmaker[AsyncSession], campaign_id: int, status: CampaignStatus) -> bool:
    async with maker() as session:
        row = await session.get(Campaign, campaign_id)
        return row is not None and row.status is status


async def test_consecutive_503s_auto_stop_the_campaign(sessionmaker: async_sessionmaker[AsyncSession], db_url: str,
                                                       tmp_path: Path) -> None:
    maker = sessionmaker
    numbers = [f"+7916100000{i}" for i in range(8)]
    world = await campaign(maker, numbers)
    op_id = world.operator_ids[0]
    carrier = await Sipp("carrier_reply", reply_params(503, "Service Unavailable", answer_ms=50), tmp_path,
                         calls=5).start()
    await add_trunk(maker, carrier.port)
    await world.start()
    try:
        async with engine(engine_settings(tmp_path, free_port()), db_url):
            await command(maker, CommandKind.ready, op_id)  # no phone needed: nobody answers
            await wait_for(lambda: _status_is(maker, world.campaign_id, CampaignStatus.auto_paused), 20,
                           "the campaign to be auto-paused")
            await asyncio.sleep(0.5)  # nothing more is dialled
        assert await carrier.wait(5) == 0, carrier.errors()  # five INVITEs, each answered 503 and ACKed
    finally:
        await carrier.stop()
    rows = await world.attempts()
    assert len(rows) == 5 and all(a.state is AttemptState.done for a in rows)
    assert {(a.outcome, a.sip_code, a.hangup_cause) for a in rows} == {
        (OutcomeCategory.error, 503, "503 Service Unavailable")}
    async with maker() as session:
        row = await session.get(Campaign, world.campaign_id)
    assert row is not None and row.status_reason.startswith("auto-stop: 5 errors in a row")
    assert "503 Service Unavailable" in row.status_reason


async def test_a_trunk_that_is_down_places_nothing_and_loses_no_contact(
        sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> None:
    maker = sessionmaker
    world = await campaign(maker, ["+79162000001", "+79162000002"])
    op_id = world.operator_ids[0]
    # nothing listens there: the first OPTIONS ping goes unanswered and marks the trunk down
    trunk_id = await add_trunk(maker, free_port(), options_interval_s=30.0)
    await world.start()
    async with engine(engine_settings(tmp_path, free_port()), db_url):
        async def trunk_down() -> bool:
            async with maker() as session:
                row = await session.get(SipTrunkState, trunk_id)
                return row is not None and not row.up

        await wait_for(trunk_down, 15, "the trunk to be marked down")
        await command(maker, CommandKind.ready, op_id)
        await asyncio.sleep(2.0)  # the engine tries, the driver refuses: TrunkUnavailable
        async with maker() as session:
            periods = [r.state for r in (await session.scalars(
                select(OperatorStateLog).where(OperatorStateLog.operator_id == op_id)
                .order_by(OperatorStateLog.id))).all()]
    # the engine knows the only trunk is down (TrunkEvent): nothing is placed, the operator is never reserved and
    # let go in a loop, no attempt row is written and deleted
    assert periods == [OperatorState.ready]
    assert await world.attempts() == []  # no attempt stays live, none is recorded for a call never placed
    async with maker() as session:
        contacts = (await session.scalars(select(Contact).where(Contact.list_id == world.list_id))).all()
        status = (await session.get(Campaign, world.campaign_id))
    assert len(contacts) == 2 and all(c.attempts_total == 0 and c.last_outcome is None for c in contacts)
    assert status is not None and status.status is CampaignStatus.running  # it dials again once a trunk is up


@pytest.mark.slow
async def test_an_offer_the_operator_lets_ring_goes_to_another_operator(
        sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> None:
    maker = sessionmaker
    world = await engine_world(maker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               call_window_start=clock_time(0), call_window_end=clock_time(0), wrap_up_s=60,
                               answer_timeout_s=10)
    await world.contact(phones=[ANSWERS])
    deaf, other = world.operator_ids
    sip_port, phone_rtp = free_port(), free_port()
    carrier = await Sipp("carrier_by_number", {
        "busy_user": "0", "busy_ms": 0, "answer_ms": 200, "rtp_port": free_port(),
        "reinvite_regexp": f"m=audio {phone_rtp} ", "ack_regexp": ".*", "talk_ms": 1000, "wait_ms": 20000},
        tmp_path).start()
    ringing = await Sipp("carrier_ring", {"on_cancel": 487}, tmp_path).start()  # rings, never answers
    phone = await Sipp("phone_answer", {"invite_regexp": ".*", "ack_regexp": ".*", "talk_ms": 60000,
                                        "rtp_port": phone_rtp}, tmp_path).start()
    await add_trunk(maker, carrier.port)
    async with maker() as session, session.begin():
        session.add_all([SipDevice(login="op-deaf", password="pw-deaf-1", operator_id=deaf),
                         SipDevice(login="op-other", password="pw-other-1", operator_id=other)])
    await world.start()
    config = EngineConfig(tick_s=0.2, control_poll_s=0.2, heartbeat_s=0.5, drain_s=3.0, finish_check_s=0.5,
                          offer_timeout_s=2.0)
    try:
        async with engine(engine_settings(tmp_path, sip_port), db_url, config):
            await register(maker, tmp_path, sip_port, "op-deaf", "pw-deaf-1", ringing.port)
            await register(maker, tmp_path, sip_port, "op-other", "pw-other-1", phone.port)
            await command(maker, CommandKind.ready, deaf)  # alone: the call is reserved for him
            await wait_for(lambda: _has_attempt(maker, world.campaign_id), 10, "the call to be placed")
            await command(maker, CommandKind.ready, other)

            async def in_wrap_up() -> bool:
                rows = await world.attempts()
                return bool(rows) and rows[0].state is AttemptState.wrap_up

            await wait_for(in_wrap_up, 20, "the call to be talked and hung up")
            await command(maker, CommandKind.complete, other, completion_code_id=world.codes["Согласен"])
            await wait_for(lambda: _status_is(maker, world.campaign_id, CampaignStatus.finished), 10,
                           "the campaign to finish")
        assert await ringing.wait(5) == 0, ringing.errors()  # the offer was CANCELled: 487, ACK
        assert await carrier.wait(5) == 0, carrier.errors()
        assert await phone.wait(5) == 0, phone.errors()
    finally:
        for proc in (carrier, ringing, phone):
            await proc.stop()
    assert ringing.total("CANCEL", "Recv") == 1 and phone.total("INVITE", "Recv") == 1
    [attempt] = await world.attempts()
    assert (attempt.outcome, attempt.operator_id, attempt.completion_code_id) == (
        OutcomeCategory.answered, other, world.codes["Согласен"])
    async with maker() as session:
        periods = [r.state for r in (await session.scalars(
            select(OperatorStateLog).where(OperatorStateLog.operator_id == deaf).order_by(OperatorStateLog.id))).all()]
    assert periods[:4] == [OperatorState.ready, OperatorState.reserved, OperatorState.ringing, OperatorState.ready]
    assert OperatorState.in_call not in periods


async def _has_attempt(maker: async_sessionmaker[AsyncSession], campaign_id: int) -> bool:
    async with maker() as session:
        return bool(await session.scalar(select(Attempt.id).where(Attempt.campaign_id == campaign_id)))
