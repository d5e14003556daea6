"""The media relay's hook points (sip/anchor.py) with a small relay of the test's own: it rewrites c=/m= lines to a
Python UDP forwarder (real sockets) between the real SIPp carrier and the real SIPp phone, and the test checks that
RTP passes it both ways — the driver's hold audio, then the conversation — and that a failing relay fails the call
cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dialer.telephony.base import CallEventKind, IncomingCall, Originate, Side, TelephonyError, UnknownCall
from dialer.telephony.sip import SipTelephony
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG, DirectMedia, MediaAnchor
from dialer.telephony.sip.sdp import audio_media
from tests.telephony.contract import Recorder
from tests.telephony.sip.harness import (
    accounts,
    answer_params,
    phone_params,
    register_phone,
    settings,
    start_caller,
    trunk,
)
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available, stop_all
from tests.telephony.sip.test_transfers import reinvites

pytestmark = pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")

CALL = Originate(number="+79120000001", caller_id="+74950000000", answer_timeout_s=10.0)


def other(tag: str) -> str:
    return DIALER_TAG if tag == CUSTOMER_TAG else CUSTOMER_TAG


class _Side(asyncio.DatagramProtocol):
    """The forwarder's socket facing one side: what arrives goes to the other side's address."""

    def __init__(self, relay: FakeRelay, tag: str) -> None:
        self.relay, self.tag = relay, tag
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        target = self.relay.targets.get(other(self.tag))
        if target is None:
            return
        self.relay.forwarded[self.tag] += 1
        out = self.relay.sides[other(self.tag)].transport
        assert out is not None
        out.sendto(data, target)


class FakeRelay:
    """One call's relay (the test places one call): a socket facing each side; ``offer``/``answer`` learn a side's
    address from its SDP and hand the other side an SDP naming the socket that faces it."""

    def __init__(self) -> None:
        self.targets: dict[str, tuple[str, int]] = {}
        self.sides: dict[str, _Side] = {}
        self.ports: dict[str, int] = {}
        self.forwarded = {CUSTOMER_TAG: 0, DIALER_TAG: 0}
        self.ops: list[tuple[str, str, str | None]] = []
        self.fail: set[str] = set()
        self.wanted = True

    async def start(self) -> FakeRelay:
        loop = asyncio.get_running_loop()
        for tag in (CUSTOMER_TAG, DIALER_TAG):
            _, proto = await loop.create_datagram_endpoint(lambda t=tag: _Side(self, t),  # type: ignore[misc]
                                                           local_addr=("127.0.0.1", 0))
            assert proto.transport is not None
            self.sides[tag] = proto
            self.ports[tag] = proto.transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        for side in self.sides.values():
            if side.transport is not None:
                side.transport.close()

    def _learn(self, tag: str, body: bytes) -> None:
        media = audio_media(body)
        assert media is not None, body
        self.targets[tag] = (media.host, media.port)

    def _facing(self, tag: str, body: bytes) -> bytes:
        text = body.decode()
        text = re.sub(r"c=IN IP4 \S+", "c=IN IP4 127.0.0.1", text)
        text = re.sub(r"m=audio \d+", f"m=audio {self.ports[tag]}", text)
        return text.encode()

    def wants(self, request: Originate) -> bool:
        return self.wanted

    async def offer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str | None,
                    webrtc: bool = False) -> bytes:
        self.ops.append(("offer", from_tag, to_tag))
        if "offer" in self.fail:
            raise ConnectionRefusedError("the relay does not answer")
        self._learn(from_tag, sdp)
        return self._facing(other(from_tag), sdp)

    async def answer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str, webrtc: bool = False) -> bytes:
        self.ops.append(("answer", from_tag, to_tag))
        if "answer" in self.fail:
            raise ConnectionRefusedError("the relay does not answer")
        self._learn(to_tag, sdp)
        return self._facing(from_tag, sdp)

    async def delete(self, call_id: str) -> None:
        self.ops.append(("delete", "", None))

    async def start_recording(self, call_id: str) -> None:
        self.ops.append(("start recording", "", None))

    async def stop_recording(self, call_id: str) -> None:
        self.ops.append(("stop recording", "", None))


class Peer(asyncio.DatagramProtocol):
    """A Python RTP endpoint standing for the carrier's or the phone's media (SIPp sends none)."""

    def __init__(self) -> None:
        self.received = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1

    def send(self, port: int, count: int) -> None:
        assert self.transport is not None
        for seq in range(count):
            self.transport.sendto(bytes([0x80, 8, 0, seq & 0xFF]) + bytes(168), ("127.0.0.1", port))


async def rtp_peer(port: int) -> Peer:
    _, proto = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=("127.0.0.1", port),
                                                                        family=socket.AF_INET)
    return proto


async def until(check: object, what: str, within: float = 10.0) -> None:
    for _ in range(int(within / 0.05)):
        if callable(check) and check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def anchored(tmp_path: Path, anchor: MediaAnchor, *, carrier_params: dict[str, object] | None = None,
                   phone: dict[str, object] | None = None, flow: str = "flow1"
                   ) -> AsyncIterator[tuple[SipTelephony, Recorder, Sipp, Sipp]]:
    carrier = await Sipp("carrier_answer", answer_params(**(carrier_params or {})), tmp_path).start()
    phone_sipp = await Sipp("phone_answer", phone_params(**(phone or {})), tmp_path).start()
    driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [trunk(carrier.port, connect_flow=flow)],
                          accounts, anchor=anchor)
    await driver.start()
    rec = Recorder(driver)
    try:
        await register_phone(driver, tmp_path, phone_sipp.port)
        yield driver, rec, carrier, phone_sipp
    finally:
        await rec.stop()
        await driver.close()
        await stop_all(carrier, phone_sipp)


@pytest.mark.parametrize("flow", ["flow1", "delayed_offer"])
async def test_media_passes_the_relay_both_ways_from_hold_audio_to_the_conversation(tmp_path: Path, flow: str) -> None:
    relay = await FakeRelay().start()
    carrier_rtp, phone_rtp = free_port(), free_port()
    carrier_media, phone_media = await rtp_peer(carrier_rtp), await rtp_peer(phone_rtp)
    facing_phone = f"m=audio {relay.ports[DIALER_TAG]} "
    # the customer is re-INVITEd to (flow I), or answered with (delayed offer), the relay's socket facing him, never
    # the phone; the phone gets the relay's socket facing the dialer's side in its ACK (flow I) or INVITE (delayed)
    carrier_params: dict[str, object] = {"rtp_port": carrier_rtp, "answer_ms": 300}
    if flow == "flow1":
        carrier_params["reinvite_regexp"] = f"m=audio {relay.ports[CUSTOMER_TAG]} "
        phone = {"rtp_port": phone_rtp, "ack_regexp": facing_phone}
    else:
        carrier_params["ack_regexp"] = f"m=audio {relay.ports[CUSTOMER_TAG]} "
        phone = {"rtp_port": phone_rtp, "invite_regexp": facing_phone}
    try:
        async with anchored(tmp_path, relay, carrier_params=carrier_params, phone=phone, flow=flow,
                            ) as (driver, rec, carrier, phone_sipp):
            call = await driver.originate(Originate(number=CALL.number, caller_id=CALL.caller_id, record=True))
            await until(lambda: CallEventKind.answered in rec.kinds(call), "the answer")
            assert ("start recording", "", None) in relay.ops  # Originate.record: right after the answer
            # hold audio: our RTP → the relay → the carrier
            await driver.play(call, "hold-music")
            await until(lambda: carrier_media.received >= 10, "hold audio through the relay")
            assert relay.forwarded[DIALER_TAG] >= 10
            await driver.connect(call, "op-1")
            await until(lambda: CallEventKind.connected in rec.kinds(call), "the connection")
            before = carrier_media.received
            phone_media.send(relay.ports[DIALER_TAG], 20)
            carrier_media.send(relay.ports[CUSTOMER_TAG], 20)
            await until(lambda: phone_media.received >= 20, "the customer's audio at the phone")
            await until(lambda: carrier_media.received >= before + 20, "the phone's audio at the customer")
            await driver.stop_recording(call)
            await driver.hangup(call)
            await until(lambda: ("delete", "", None) in relay.ops, "the relay's delete")
            assert await carrier.wait(10) == 0, carrier.errors()
            assert await phone_sipp.wait(10) == 0, phone_sipp.errors()
        assert relay.ops[:2] == [("offer", DIALER_TAG, None), ("answer", DIALER_TAG, CUSTOMER_TAG)]
        if flow == "flow1":  # the phone's offer goes to the customer through the relay, his answer back to the phone
            assert relay.ops[3:5] == [("offer", DIALER_TAG, CUSTOMER_TAG), ("answer", DIALER_TAG, CUSTOMER_TAG)]
        else:  # the customer's offer goes to the phone through the relay, the phone's answer back to him
            assert relay.ops[3:5] == [("offer", CUSTOMER_TAG, DIALER_TAG), ("answer", CUSTOMER_TAG, DIALER_TAG)]
        assert ("stop recording", "", None) in relay.ops
    finally:
        relay.close()
        for peer in (carrier_media, phone_media):
            if peer.transport is not None:
                peer.transport.close()


async def test_a_relay_that_fails_its_offer_fails_the_call_before_anything_is_sent(tmp_path: Path) -> None:
    relay = await FakeRelay().start()
    relay.fail = {"offer"}
    try:
        async with anchored(tmp_path, relay) as (driver, rec, _carrier, _phone):
            call = await driver.originate(CALL)
            await until(lambda: rec.kinds(call)[-1:] == [CallEventKind.failed], "the failure")
            assert rec.calls(call)[-1].cause.startswith("media relay unavailable")
            assert rec.kinds(call) == [CallEventKind.trying, CallEventKind.failed]
            assert relay.ops == [("offer", DIALER_TAG, None)] and driver.live_calls() == 0
    finally:
        relay.close()


async def test_a_relay_that_fails_the_answer_hangs_up_the_answered_customer(tmp_path: Path) -> None:
    relay = await FakeRelay().start()
    relay.fail = {"answer"}
    try:
        async with anchored(tmp_path, relay, carrier_params={"answer_ms": 200}) as (driver, rec, carrier, _phone):
            call = await driver.originate(CALL)
            await until(lambda: rec.kinds(call)[-1:] == [CallEventKind.failed], "the failure")
            assert CallEventKind.answered not in rec.kinds(call)
            assert rec.calls(call)[-1].cause.startswith("media relay unavailable")
            assert await carrier.wait(10) == 0, carrier.errors()  # the customer got his BYE
    finally:
        relay.close()


async def test_records_needs_an_anchored_call(tmp_path: Path) -> None:
    async with anchored(tmp_path, DirectMedia(), carrier_params={"answer_ms": 200}) as (driver, rec, _c, _p):
        with pytest.raises(UnknownCall):
            await driver.start_recording("no-such-call")  # type: ignore[arg-type]
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call), "the answer")
        with pytest.raises(TelephonyError, match="does not pass the media relay"):
            await driver.start_recording(call)
        await driver.hangup(call)
        await until(lambda: rec.kinds(call)[-1:] == [CallEventKind.hung_up], "the hang-up")
        assert rec.calls(call)[-1].side == Side.dialer


async def test_a_customer_released_to_waiting_is_re_invited_through_the_relay(tmp_path: Path) -> None:
    """Back to hold audio (release; the rescue of a lost phone takes the same path): our offer passes the relay, the
    customer is re-INVITEd to the relay's port facing him (never to our own port), and the hold audio reaches him
    through the relay again."""
    relay = await FakeRelay().start()
    carrier_rtp = free_port()
    carrier_media = await rtp_peer(carrier_rtp)
    carrier = await Sipp("carrier_transfer", {"busy_user": "0", "busy_ms": 0, "answer_ms": 200,
                                              "rtp_port": carrier_rtp, "wait_ms": 30000},
                         tmp_path, extra=["-trace_msg"]).start()
    phone = await Sipp("phone_transfer", {"rtp_port": free_port(), "talk_ms": 30000, "refer_block": ""}, tmp_path,
                       calls=10000).start()
    driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [trunk(carrier.port)], accounts, anchor=relay)
    await driver.start()
    rec = Recorder(driver)
    try:
        await register_phone(driver, tmp_path, phone.port)
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call), "the answer")
        await driver.play(call, "hold-music")
        await driver.connect(call, "op-1")
        await until(lambda: CallEventKind.connected in rec.kinds(call), "the connection")
        await driver.play(call, None)
        ops_before = len(relay.ops)
        await driver.release(call)
        relayed = f"m=audio {relay.ports[CUSTOMER_TAG]}"
        await until(lambda: reinvites(carrier) == [relayed, relayed], "the customer's re-INVITE to the relay")
        assert relay.ops[ops_before:ops_before + 2] == [("offer", DIALER_TAG, CUSTOMER_TAG),
                                                         ("answer", DIALER_TAG, CUSTOMER_TAG)]
        before = carrier_media.received
        await until(lambda: carrier_media.received >= before + 10, "hold audio through the relay again")
        await driver.hangup(call)
        await until(lambda: ("delete", "", None) in relay.ops, "the relay's delete")
    finally:
        await rec.stop()
        await driver.close()
        await stop_all(carrier, phone)
        relay.close()
        if carrier_media.transport is not None:
            carrier_media.transport.close()



async def test_an_inbound_call_is_answered_through_the_relay(tmp_path: Path) -> None:
    """The caller's offer passes the relay (its reply is where the hold audio goes), our answer comes back through it:
    the caller hears the hold audio from the relay's port facing him."""
    relay = await FakeRelay().start()
    caller_rtp = free_port()
    caller_media = await rtp_peer(caller_rtp)
    driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [trunk(free_port())], accounts, anchor=relay)
    await driver.start()
    rec = Recorder(driver)
    caller = await start_caller(tmp_path, driver.transport.port, "inbound_talk", rtp_port=caller_rtp,
                                answer_ms=20000, talk_ms=1000)
    try:
        await until(lambda: any(isinstance(e, IncomingCall) for e in rec.events), "the inbound call")
        [incoming] = [e for e in rec.events if isinstance(e, IncomingCall)]
        await driver.answer(incoming.call_id)
        await until(lambda: CallEventKind.answered in rec.kinds(incoming.call_id), "the caller's ACK")
        assert relay.ops[:2] == [("offer", CUSTOMER_TAG, None), ("answer", CUSTOMER_TAG, DIALER_TAG)]
        await driver.play(incoming.call_id, "hold-music")
        await until(lambda: caller_media.received >= 10, "hold audio through the relay")
        assert relay.forwarded[DIALER_TAG] >= 10
        await driver.hangup(incoming.call_id)
        await until(lambda: ("delete", "", None) in relay.ops, "the relay's delete")
    finally:
        await rec.stop()
        await driver.close()
        await stop_all(caller)
        relay.close()
        if caller_media.transport is not None:
            caller_media.transport.close()
