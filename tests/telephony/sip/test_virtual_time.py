"""The SIP driver under a :class:`VirtualClock`: real UDP on loopback to a small carrier written here, every timer of
the driver on virtual time, so that minutes of SIP timers take milliseconds.

* a call that rings and is answered after 40 s is answered (timer B used to end it as a trunk error at 32 s);
* a trunk that never answers still fails at timer B (64·T1) after timer A's retransmissions;
* a re-INVITE from the carrier, or from the operator's phone, whose 200 is never ACKed (timer H) ends the call with
  a BYE on both legs;
* trunk OPTIONS pings run on the clock: a trunk that stops answering goes down, and up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest

from dialer.core.clock import VirtualClock
from dialer.telephony.base import CallEventKind, Originate, Side, TrunkEvent
from dialer.telephony.sip import SipTelephony
from dialer.telephony.sip.auth import Credentials, pick_challenge
from dialer.telephony.sip.message import Address, Message, new_branch
from dialer.telephony.sip.transaction import InviteServerState, InviteServerTransaction
from tests.telephony.contract import Recorder
from tests.telephony.sip.harness import LOGIN, PASSWORD, accounts, settings, trunk
from tests.telephony.sip.sipp import free_port

SDP = (b"v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


class Carrier(asyncio.DatagramProtocol):
    """A carrier the test drives: it records what it receives and answers only what it is told to, except that
    it ACKs nothing by itself and answers a BYE with 200."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[Message] = []
        self.addr: tuple[str, int] | None = None
        self.answer_options = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = Message.parse(data)
        self.received.append(msg)
        self.addr = addr
        if msg.method == "BYE" or (msg.method == "OPTIONS" and self.answer_options):
            self.send(msg.response(200))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, msg: Message) -> None:
        assert self.transport is not None and self.addr is not None
        self.transport.sendto(msg.encode(), self.addr)

    def got(self, what: str) -> list[Message]:
        return [m for m in self.received if (m.method or str(m.status)) == what]

    def invite(self) -> Message:
        return self.got("INVITE")[0]

    def answer(self, status: int, *, body: bytes = b"", to: Message | None = None) -> None:
        """Answer the first INVITE received (or ``to``)."""
        headers = [("Contact", f"<sip:carrier@127.0.0.1:{self.port}>")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        self.send((to or self.invite()).response(status, to_tag="carrier1", headers=headers, body=body))

    async def register(self, driver: SipTelephony, login: str, password: str) -> None:
        """REGISTER with the driver as an operator's phone, answering its digest challenge."""
        host, port = driver.local_address()
        self.addr = (host, port)
        uri = f"sip:{host}:{port}"

        def register(cseq: int, *extra: tuple[str, str]) -> None:
            self.send(Message.request("REGISTER", uri, [
                ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={new_branch()}"), ("Max-Forwards", "70"),
                ("From", f"<sip:{login}@dialer>;tag=ph1"), ("To", f"<sip:{login}@dialer>"), ("Call-ID", "reg-1"),
                ("CSeq", f"{cseq} REGISTER"), ("Contact", f"<sip:{login}@127.0.0.1:{self.port}>"),
                ("Expires", "300"), *extra]))

        register(1)
        await until(lambda: bool(self.got("401")))
        challenge = pick_challenge(self.got("401")[0].all("WWW-Authenticate"))
        register(2, ("Authorization", Credentials(login, password).authorization(challenge, "REGISTER", uri)))
        await until(lambda: bool(self.got("200")))

    def reinvite(self) -> Message:
        """An in-dialog INVITE from the carrier after the call was answered (a session refresh)."""
        invite = self.invite()
        ours = Address.parse(invite["From"])
        contact = invite.contact()
        assert contact is not None
        msg = Message.request("INVITE", str(contact.uri), [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={new_branch()}"), ("Max-Forwards", "70"),
            ("From", f"{invite['To']};tag=carrier1"), ("To", str(ours)), ("Call-ID", invite.call_id),
            ("CSeq", "1 INVITE"), ("Contact", f"<sip:carrier@127.0.0.1:{self.port}>"),
            ("Content-Type", "application/sdp")], SDP)
        self.send(msg)
        return msg

    def ack(self, response: Message) -> None:
        invite = self.invite()
        self.send(Message.request("ACK", "sip:dialer@127.0.0.1", [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={new_branch()}"), ("Max-Forwards", "70"),
            ("From", response["From"]), ("To", response["To"]), ("Call-ID", invite.call_id), ("CSeq", "1 ACK")]))


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait in real time for packets to cross the loopback (virtual time stands still meanwhile)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(**trunk_settings: object) -> AsyncIterator[tuple[SipTelephony, Recorder, Carrier, VirtualClock]]:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    sock, carrier = await loop.create_datagram_endpoint(Carrier, local_addr=("127.0.0.1", free_port()))
    driver = SipTelephony(settings(tcp=False), [trunk(carrier.port, **trunk_settings)], accounts, clock=clock)
    await driver.start()
    rec = Recorder(driver)
    try:
        yield driver, rec, carrier, clock
    finally:
        closing = asyncio.ensure_future(driver.close())
        while not closing.done():  # its wait for the last BYEs runs on the virtual clock
            await clock.run_for(0.1)
            await asyncio.sleep(0.001)
        await closing
        await rec.stop()
        sock.close()


async def test_a_ringing_call_answered_after_40_s_is_answered() -> None:
    """RFC 3261 §17.1.1.2: timer B only runs in Calling. With an answer timeout of 60 s, a call that rings at once
    and is answered at 40 s is answered — it used to fail at 32 s as 'no response from the trunk'."""
    async with running() as (driver, rec, carrier, clock):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=60))
        await until(lambda: bool(carrier.got("INVITE")))
        carrier.answer(180)
        await until(lambda: CallEventKind.ringing in rec.kinds(call))
        await clock.run_for(40)
        assert rec.kinds(call) == [CallEventKind.trying, CallEventKind.ringing]
        assert len(carrier.got("INVITE")) == 1  # no retransmission once it rang
        carrier.answer(200, body=SDP)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        answered = rec.calls(call)[-1]
        assert answered.at == pytest.approx(40.0) and answered.code == 200
        await until(lambda: bool(carrier.got("ACK")))
        await driver.hangup(call)
        await until(lambda: bool(carrier.got("BYE")))
        await until(lambda: CallEventKind.hung_up in rec.kinds(call))


async def test_the_ring_timeout_still_ends_a_call_that_rings_too_long() -> None:
    async with running() as (driver, rec, carrier, clock):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=45))
        await until(lambda: bool(carrier.got("INVITE")))
        carrier.answer(180)
        await until(lambda: CallEventKind.ringing in rec.kinds(call))
        await clock.run_for(44.9)
        assert CallEventKind.no_answer not in rec.kinds(call)
        await clock.run_for(0.2)
        await until(lambda: bool(carrier.got("CANCEL")))
        assert rec.kinds(call)[-1] == CallEventKind.ringing  # the result waits for the INVITE's final response
        carrier.send(carrier.got("CANCEL")[0].response(200))
        carrier.answer(487)
        await until(lambda: bool(carrier.got("ACK")))
        await until(lambda: rec.kinds(call)[-1] == CallEventKind.no_answer)
        last = rec.calls(call)[-1]
        assert (last.cause, last.code, last.at) == ("ring timeout (45 s)", 487, pytest.approx(45.0, abs=0.2))


async def test_a_cancel_the_trunk_never_answers_ends_the_call_after_64_t1() -> None:
    async with running() as (driver, rec, carrier, clock):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10))
        await until(lambda: bool(carrier.got("INVITE")))
        carrier.answer(180)
        await until(lambda: CallEventKind.ringing in rec.kinds(call))
        await clock.run_for(10.1)
        await until(lambda: bool(carrier.got("CANCEL")))
        await clock.run_for(31.8)
        assert rec.kinds(call)[-1] == CallEventKind.ringing
        await clock.run_for(0.3)
        await until(lambda: rec.kinds(call)[-1] == CallEventKind.no_answer)
        assert rec.calls(call)[-1].cause == "ring timeout (10 s)"


async def test_a_silent_trunk_fails_at_timer_b_after_timer_a() -> None:
    async with running() as (driver, rec, carrier, clock):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=60))
        await clock.run_for(31.9)
        assert rec.kinds(call) == [CallEventKind.trying]
        await clock.run_for(0.2)
        await until(lambda: len(rec.kinds(call)) == 2)
        last = rec.calls(call)[-1]
        assert last.kind == CallEventKind.failed and last.cause == "no response from the trunk"
        assert last.at == pytest.approx(32.0)
        await until(lambda: len(carrier.got("INVITE")) == 7)  # at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5
        assert driver.live_calls() == 0


@pytest.mark.parametrize("acked", [False, True])
async def test_a_reinvite_whose_200_is_never_acked_ends_the_call(acked: bool) -> None:
    """RFC 3261 §13.3.1.4: our 200 to the carrier's re-INVITE is retransmitted (timer G) and, with no ACK within
    64·T1 (timer H), the dialog is dead: the driver BYEs it and reports the call hung up by the dialer."""
    async with running() as (driver, rec, carrier, clock):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=60))
        await until(lambda: bool(carrier.got("INVITE")))
        carrier.answer(200, body=SDP)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await until(lambda: bool(carrier.got("ACK")))
        reinvite = carrier.reinvite()
        await until(lambda: bool(carrier.got("200")))
        ok = carrier.got("200")[0]
        assert ok.cseq == (1, "INVITE") and ok.body  # answered with our description
        server = driver.layer.find_invite_server(reinvite.via.branch)
        assert isinstance(server, InviteServerTransaction) and server.state is InviteServerState.completed
        if acked:
            carrier.ack(ok)
            await until(lambda: server.state is InviteServerState.confirmed)
        await clock.run_for(31.9)
        await asyncio.sleep(0.05)
        if acked:
            assert len(carrier.got("200")) == 1
        else:  # timer G: 0.5, 1.5, 3.5, 7.5, 11.5, ... 31.5
            await until(lambda: len(carrier.got("200")) == 11)
        assert rec.kinds(call)[-1] == CallEventKind.answered and not carrier.got("BYE")
        await clock.run_for(0.2)
        if acked:
            await clock.run_for(60)
            await asyncio.sleep(0.05)
            assert rec.kinds(call)[-1] == CallEventKind.answered and not carrier.got("BYE")
            await driver.hangup(call)
            await until(lambda: bool(carrier.got("BYE")))
            return
        await until(lambda: bool(carrier.got("BYE")))
        await until(lambda: CallEventKind.hung_up in rec.kinds(call))
        hung_up = rec.calls(call)[-1]
        assert hung_up.side == Side.dialer and hung_up.at == pytest.approx(32.0)
        assert hung_up.cause is not None and "no ACK" in hung_up.cause
        assert driver.live_calls() == 0 and not driver._legs


async def test_trunk_pings_run_on_the_clock() -> None:
    async with running(options_interval_s=30, options_timeout_s=5) as (driver, rec, carrier, clock):
        def trunk_events() -> list[TrunkEvent]:
            return [e for e in rec.events if isinstance(e, TrunkEvent)]

        await until(lambda: len(carrier.got("OPTIONS")) == 1)
        await clock.run_for(4.9)
        assert trunk_events() == [] and driver.trunk_states() == {1: True}
        await clock.run_for(0.2)
        await until(lambda: len(trunk_events()) == 1)
        down = trunk_events()[0]
        assert not down.up and down.at == pytest.approx(5.0) and "no answer to OPTIONS within 5 s" in down.detail
        carrier.answer_options = True
        await clock.run_for(29.8)  # the next ping goes 30 s after the last one's result
        assert driver.trunk_states() == {1: False}
        await clock.run_for(0.2)
        await until(lambda: len(trunk_events()) == 2)
        up = trunk_events()[1]
        assert up.up and 35.0 <= up.at <= 35.2 and driver.trunk_states() == {1: True}


async def test_a_phone_reinvite_whose_200_is_never_acked_ends_the_call() -> None:
    """The same from the operator's phone, on a connected call (RFC 3725 flow I): both legs get a BYE."""
    async with running() as (driver, rec, carrier, clock):
        loop = asyncio.get_running_loop()
        sock, phone = await loop.create_datagram_endpoint(Carrier, local_addr=("127.0.0.1", free_port()))
        try:
            phone.answer_options = True
            await phone.register(driver, LOGIN, PASSWORD)
            call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=60))
            await until(lambda: bool(carrier.got("INVITE")))
            carrier.answer(200, body=SDP)
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.connect(call, LOGIN)
            await until(lambda: bool(phone.got("INVITE")))
            phone.answer(200, body=SDP)  # the phone's offer goes to the customer in a re-INVITE
            await until(lambda: len(carrier.got("INVITE")) == 2)
            carrier.answer(200, body=SDP, to=carrier.got("INVITE")[1])
            await until(lambda: CallEventKind.connected in rec.kinds(call))
            assert phone.got("ACK") and len(carrier.got("ACK")) == 2
            phone.reinvite()
            await until(lambda: bool(phone.got("200")) and phone.got("200")[-1].cseq == (1, "INVITE"))
            await clock.run_for(31.9)
            assert rec.kinds(call)[-1] == CallEventKind.connected
            await clock.run_for(0.2)
            await until(lambda: bool(phone.got("BYE")) and bool(carrier.got("BYE")))
            await until(lambda: CallEventKind.hung_up in rec.kinds(call))
            hung_up = rec.calls(call)[-1]
            assert hung_up.side == Side.dialer and hung_up.endpoint == LOGIN and hung_up.at == pytest.approx(32.0)
            assert hung_up.cause is not None and "no ACK from the operator's phone" in hung_up.cause
            assert driver.live_calls() == 0 and not driver._legs and not driver._by_endpoint
        finally:
            sock.close()
