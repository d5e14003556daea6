"""Transfers, a phone's own REFER and the rescue of a customer whose operator's phone died, in the SIP driver: the
transfer contract (shared with the simulator) against real SIPp peers — a carrier that takes any number of
re-INVITEs, operators' phones that do too — plus what only SIP has: REFER answers and NOTIFYs, and where the
customer's re-INVITEs point his media."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dialer.telephony.base import CallEventKind, EndpointEvent, Telephony, TransferRequested, UnknownCall
from dialer.telephony.sip import SipTelephony
from tests.telephony.contract import Recorder, TransferContract, connected_call, recording
from tests.telephony.sip.harness import accounts, register_phone, reply_params, settings, trunk
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available, stop_all

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")]

EXTERNAL, BUSY = "+79990000001", "+79990000002"

REFER_BLOCK = """
  <pause milliseconds="{refer_ms}"/>
  <send retrans="500"><![CDATA[
REFER [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$our_to]
To: [$their_from]
[last_Call-ID:]
CSeq: 800 REFER
Max-Forwards: 70
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
Refer-To: <sip:{target}@[remote_ip]:[remote_port]{replaces}>
Referred-By: <sip:phone@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <recv response="{expect}"/>
"""

NOTIFY_TRYING = """
  <recv request="NOTIFY">
    <action><ereg regexp="SIP/2.0 100 Trying" search_in="body" check_it="true" assign_to="trying"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="NOTIFY">
    <action><ereg regexp="{final}" search_in="body" check_it="true" assign_to="final"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <nop hide="true"><action><log message="notified: [$trying] [$final]"/></action></nop>
"""


def refer_block(target: str, *, expect: int = 202, replaces: str = "", final: str = "SIP/2.0 200 OK",
                refer_ms: int = 800) -> str:
    block = REFER_BLOCK.format(refer_ms=refer_ms, target=target, replaces=replaces, expect=expect)
    return block + (NOTIFY_TRYING.replace("{final}", final) if expect == 202 else "")


def phone(tmp_path: Path, block: str = "") -> Sipp:
    # many "calls": SIPp answers the driver's out-of-dialog OPTIONS pings (device_ping_s) as calls of their own
    return Sipp("phone_transfer", {"rtp_port": free_port(), "talk_ms": 60000, "refer_block": block}, tmp_path,
                calls=10000, extra=["-trace_msg"])


def received(sipp: Sipp) -> list[str]:
    """The messages SIPp received, from its message trace (-trace_msg, written as they come)."""
    text = "".join(p.read_text(errors="replace") for p in sipp.workdir.glob("*_messages.log"))
    return [block.split("\n", 2)[-1].lstrip() for block in text.split("UDP message received")[1:]]


def notified(sipp: Sipp) -> list[str]:
    """The status lines of the NOTIFYs (message/sipfrag) the phone received."""
    found = []
    for message in received(sipp):
        if message.startswith("NOTIFY "):
            found += re.findall(r"^(SIP/2\.0 \d{3} [^\r\n]*)", message, re.MULTILINE)[:1]
    return found


def reinvites(carrier: Sipp) -> list[str]:
    """The m= lines of the re-INVITEs (INVITEs in a dialog: a To tag) the carrier received, in order."""
    found = []
    for message in received(carrier):
        to = re.search(r"^To:.*$", message, re.MULTILINE)
        media = re.search(r"^m=audio \d+", message, re.MULTILINE)
        if message.startswith("INVITE ") and to is not None and ";tag=" in to.group(0) and media is not None:
            found.append(media.group(0))
    return found


def phone_reinvites(sipp: Sipp) -> list[str]:
    """The SDP bodies of the re-INVITEs (INVITEs with a To tag) a phone received, in order."""
    found = []
    for message in received(sipp):
        to = re.search(r"^To:.*$", message, re.MULTILINE)
        if message.startswith("INVITE ") and to is not None and ";tag=" in to.group(0):
            found.append(message.replace("\r\n", "\n").partition("\n\n")[2])
    return found


def failed_checks(sipp: Sipp) -> list[str]:
    """Calls SIPp aborted (an unexpected message, a regexp check that failed)."""
    return [line for line in sipp.errors().splitlines()
            if line.strip() and not any(noise in line for noise in (
                "Automatic response mode", "following events occurred", "There were more errors"))]


class SipTransferHarness:
    endpoint, endpoint2 = "op-1", "op-2"
    external_number, busy_number = EXTERNAL, BUSY

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.phones: dict[str, Sipp] = {}
        self.carrier: Sipp | None = None
        self.carrier_rtp = free_port()
        self.first_phone_block = ""
        #: The second operator's phone answers 486 Busy Here instead.
        self.second_phone_busy = False
        #: The second operator's phone rings for a minute (longer than any test) before it would answer 486.
        self.second_phone_rings = False

    @contextlib.asynccontextmanager
    async def driver(self, behaviour: str) -> AsyncIterator[Telephony]:
        carrier = self.carrier = await Sipp("carrier_transfer", {
            "busy_user": BUSY.removeprefix("+"), "busy_ms": 300, "answer_ms": 1000, "rtp_port": self.carrier_rtp,
            "wait_ms": 60000}, self.workdir, calls=2, extra=["-trace_msg"]).start()
        block = self.first_phone_block or (refer_block(self.endpoint2) if behaviour == "refer" else "")
        second = (Sipp("carrier_reply", reply_params(486, "Busy Here", answer_ms=60000 if self.second_phone_rings
                                                      else 300), self.workdir, calls=10000)
                  if self.second_phone_busy or self.second_phone_rings else phone(self.workdir))
        self.phones = {self.endpoint: await phone(self.workdir, block).start(), self.endpoint2: await second.start()}
        driver = SipTelephony(settings(device_ping_s=1.0, device_timeout_s=1.0), [trunk(carrier.port)], accounts)
        await driver.start()
        try:
            await register_phone(driver, self.workdir, self.phones[self.endpoint].port)
            await register_phone(driver, self.workdir, self.phones[self.endpoint2].port, "op-2", "other")
            yield driver
        finally:
            await driver.close()
            await stop_all(carrier, *self.phones.values())

    async def advance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def call_in(self, driver: Telephony, behaviour: str) -> None:
        raise NotImplementedError("the transfer contract places outbound calls only")

    async def lose_phone(self, driver: Telephony, endpoint: str) -> None:
        await self.phones[endpoint].stop()  # killed: its in-dialog OPTIONS go unanswered
        await asyncio.sleep(4.0)  # device_ping_s + device_timeout_s, with slack

    async def refer(self, driver: Telephony, endpoint: str, target: str) -> None:
        assert endpoint == self.endpoint and target == self.endpoint2  # scripted in the phone's scenario
        await asyncio.sleep(1.0)


class TestSipTransfers(TransferContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> SipTransferHarness:
        return SipTransferHarness(tmp_path)


def phone_events(rec: Recorder, endpoint: str) -> list[EndpointEvent]:
    return [e for e in rec.events if isinstance(e, EndpointEvent) and e.endpoint == endpoint]


async def test_the_customer_is_re_invited_to_each_party_in_turn(tmp_path: Path) -> None:
    """Consult then complete, then an external transfer: the customer's re-INVITEs name the first phone, our own
    media (held), the consulted phone, our media again, and the external party, in that order."""
    harness = SipTransferHarness(tmp_path)
    async with recording(harness, "answer") as (driver, rec):
        assert isinstance(driver, SipTelephony)
        call = await connected_call(harness, driver, rec)
        await driver.consult(call, harness.endpoint2)
        await asyncio.sleep(2.0)
        await driver.complete(call)
        await asyncio.sleep(1.5)
        assert rec.calls(call)[-1].endpoint == harness.endpoint2
        await driver.transfer_external(call, EXTERNAL)
        await asyncio.sleep(4.0)
        assert rec.calls(call)[-1].endpoint == f"external:{EXTERNAL}"
        await driver.hangup(call)
        await asyncio.sleep(0.5)
        assert harness.carrier is not None
        ours = f"m=audio {driver.settings.rtp_port_min}"  # the call's own RTP port (the first of the range)
        first, second = (phone_rtp(harness.phones[e]) for e in (harness.endpoint, harness.endpoint2))
        assert reinvites(harness.carrier) == [first, ours, second, ours, f"m=audio {harness.carrier_rtp}"]


async def test_a_refer_nobody_carries_out_is_declined(tmp_path: Path) -> None:
    harness = SipTransferHarness(tmp_path)
    harness.first_phone_block = refer_block("op-2", final="SIP/2.0 603 Declined")
    async with recording(harness, "answer") as (driver, rec):
        assert isinstance(driver, SipTelephony)
        driver.refer_wait_s = 2.0  # 10 s in service
        call = await connected_call(harness, driver, rec)
        await asyncio.sleep(3.5)  # the REFER (0.8 s after the phone's ACK), the wait, and slack
        assert [e for e in rec.events if isinstance(e, TransferRequested)]
        assert rec.kinds(call)[-1] == CallEventKind.connected  # the operator keeps his customer
        await driver.hangup(call)
        await asyncio.sleep(0.5)
    op1 = harness.phones["op-1"]
    assert notified(op1) == ["SIP/2.0 100 Trying", "SIP/2.0 603 Declined"] and not failed_checks(op1)


async def test_a_refer_with_replaces_is_refused_and_the_call_goes_on(tmp_path: Path) -> None:
    harness = SipTransferHarness(tmp_path)
    harness.first_phone_block = refer_block("op-2", expect=501, replaces="?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2")
    async with recording(harness, "answer") as (driver, rec):
        call = await connected_call(harness, driver, rec)
        await asyncio.sleep(1.5)
        assert not [e for e in rec.events if isinstance(e, TransferRequested)]
        assert rec.kinds(call)[-1] == CallEventKind.connected
        await driver.hangup(call)
        await asyncio.sleep(0.5)
        assert not failed_checks(harness.phones["op-1"])  # it got its 501, then our BYE


async def test_a_blind_refer_hears_its_outcome(tmp_path: Path) -> None:
    """The phone's REFER: 202, NOTIFY 100 Trying, and 200 once the consumer hands the customer on (release); the
    phone's leg then ends with our BYE."""
    harness = SipTransferHarness(tmp_path)
    async with recording(harness, "refer") as (driver, rec):
        assert isinstance(driver, SipTelephony)
        call = await connected_call(harness, driver, rec)
        await asyncio.sleep(1.5)
        [asked] = [e for e in rec.events if isinstance(e, TransferRequested)]
        assert asked.target == "op-2" and asked.call_id == call
        await driver.release(call)
        await driver.connect(call, "op-2")
        await asyncio.sleep(2.0)
        assert rec.calls(call)[-1].endpoint == "op-2"
        assert "op-1" not in driver._by_endpoint  # free for the next call
        await driver.hangup(call)
    op1 = harness.phones["op-1"]
    assert notified(op1) == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"] and not failed_checks(op1)


def phone_rtp(sipp: Sipp) -> str:
    found = re.search(r"m=audio \d+", (sipp.workdir / "phone_transfer.xml").read_text())
    assert found is not None
    return found.group(0)


async def test_a_busy_consulted_phone_fails_the_consultation_and_the_first_operator_has_the_customer_back(
        tmp_path: Path) -> None:
    harness = SipTransferHarness(tmp_path)
    harness.second_phone_busy = True
    async with recording(harness, "answer") as (driver, rec):
        assert isinstance(driver, SipTelephony)
        call = await connected_call(harness, driver, rec)
        await driver.consult(call, harness.endpoint2)
        await asyncio.sleep(2.0)
        [failed] = [e for e in phone_events(rec, harness.endpoint2) if e.kind.value == "hung_up"]
        assert failed.offer_failed and failed.call_id == call and failed.detail.startswith("486")
        last = rec.calls(call)[-1]
        assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint
        assert "hung_up" not in [e.kind.value for e in phone_events(rec, harness.endpoint)]
        with pytest.raises(UnknownCall):
            await driver.complete(call)
        assert harness.carrier is not None
        first = phone_rtp(harness.phones[harness.endpoint])
        # connected to the first phone, held on our media, then the first phone's media again
        assert reinvites(harness.carrier) == [first, f"m=audio {driver.settings.rtp_port_min}", first]
        await driver.hangup(call)


async def test_the_first_operator_is_cut_off_from_the_customer_while_the_consulted_phone_rings(
        tmp_path: Path) -> None:
    """Consultation privacy with direct media: from ``consult`` on, before the consulted phone answers, the customer
    is re-INVITEd onto our RTP (hold audio) and the first operator's phone is held (our address, a=inactive), so that
    his RTP no longer reaches the customer's address; ``cancel_consult`` joins them again."""
    harness = SipTransferHarness(tmp_path)
    harness.second_phone_rings = True
    async with recording(harness, "answer") as (driver, rec):
        assert isinstance(driver, SipTelephony)
        call = await connected_call(harness, driver, rec)
        first_phone = harness.phones[harness.endpoint]
        before = len(phone_reinvites(first_phone))
        await driver.consult(call, harness.endpoint2)
        await asyncio.sleep(1.5)
        kinds = [e.kind.value for e in phone_events(rec, harness.endpoint2)]
        assert "ringing" in kinds and "answered" not in kinds and "hung_up" not in kinds
        assert harness.carrier is not None
        host, ours = driver.local_address()[0], f"m=audio {driver.settings.rtp_port_min}"
        first = phone_rtp(first_phone)
        assert reinvites(harness.carrier) == [first, ours]
        held = phone_reinvites(first_phone)[before:]
        assert len(held) == 1
        assert f"c=IN IP4 {host}" in held[0] and ours in held[0] and "a=inactive" in held[0]
        await driver.cancel_consult(call)
        await asyncio.sleep(1.5)
        assert reinvites(harness.carrier) == [first, ours, first]
        last = rec.calls(call)[-1]
        assert last.kind == CallEventKind.connected and last.endpoint == harness.endpoint
        [cancelled] = [e for e in phone_events(rec, harness.endpoint2) if e.kind.value == "hung_up"]
        assert not cancelled.offer_failed and cancelled.detail == "consultation cancelled"
        # joined again: the first phone's last re-INVITE carries no offer (3PCC draws its offer), none is inactive
        assert len(phone_reinvites(first_phone)) == before + 2
        assert "a=inactive" not in phone_reinvites(first_phone)[-1]
        await driver.hangup(call)
