"""Answering-machine detection in the SIP driver (issue #16 §3) against a SIPp carrier that plays generated speech as
RTP (dialer/media/samples.py): a voicemail greeting is reported ``answered`` machine — stamped with the moment of the
answer — and hears the message after its greeting before the dialer hangs up; a person's short "Алло?" is
``answered`` human at once after his pause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dialer.media.samples import SampleClass, generate, missing_tools, write_rtp_pcap
from dialer.telephony.base import AnsweredBy, CallEventKind, Originate, Side
from dialer.telephony.sip import SipTelephony
from dialer.telephony.sip.rtp import PT_PCMA
from tests.telephony.contract import Recorder
from tests.telephony.sip.harness import accounts, settings, trunk
from tests.telephony.sip.sipp import Sipp, sipp_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")]

MESSAGE_S = 4.0  # the driver's generated default message (holdaudio.message_samples)


async def until(check: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("kind", "index", "answered_by"), [
    (SampleClass.machine, 0, AnsweredBy.machine),
    (SampleClass.human_short, 1, AnsweredBy.human),
])
async def test_the_detector_hears_the_carriers_rtp(tmp_path: Path, kind: SampleClass, index: int,
                                                   answered_by: AnsweredBy) -> None:
    assert not missing_tools(), "the test command installs espeak-ng and sox"
    sample = generate(kind, index, codec=PT_PCMA)
    pcap = write_rtp_pcap(tmp_path / "greeting.pcap", sample.pcm, payload_type=PT_PCMA)
    spoken_s = len(sample.pcm) / 2 / 8000
    carrier = await Sipp("carrier_greeting", {"answer_ms": 300, "pcap": pcap, "wait_ms": 40000}, tmp_path).start()
    driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [trunk(carrier.port)], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0, detect_machine=True,
                                                machine_message="callback-message"))
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        [answered] = [e for e in rec.calls(call) if e.kind == CallEventKind.answered]
        assert answered.answered_by is answered_by, answered.cause
        assert "AMD " in answered.cause  # the detector's cause (app_amd's AMDCAUSE) beside the SIP status
        if answered_by is AnsweredBy.human:
            assert "HUMAN" in answered.cause
            await driver.hangup(call)
            await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)
            assert rec.calls(call)[-1].side == Side.dialer
        else:
            await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)
            ended = rec.calls(call)[-1]
            assert ended.side == Side.dialer and ended.cause == "machine message left"
            # the message waited for the end of the greeting, then played in full (its length, on the clock)
            assert ended.at - answered.at >= spoken_s + MESSAGE_S - 0.5
        assert await carrier.wait(10) == 0, carrier.errors()  # our BYE
    finally:
        await rec.stop()
        await driver.close()
        await carrier.stop()


async def test_a_customer_who_hangs_up_while_the_detector_listens_is_a_person_who_hung_up(tmp_path: Path) -> None:
    """A long greeting, but the line hangs up 600 ms after the answer, before any decision: ``answered`` (human, at
    the moment of the answer), then ``hung_up`` by the customer."""
    assert not missing_tools(), "the test command installs espeak-ng and sox"
    sample = generate(SampleClass.machine, 0, codec=PT_PCMA)
    pcap = write_rtp_pcap(tmp_path / "greeting.pcap", sample.pcm, payload_type=PT_PCMA)
    carrier = await Sipp("carrier_greeting", {"answer_ms": 300, "pcap": pcap, "wait_ms": 600}, tmp_path).start()
    driver = SipTelephony(settings(), [trunk(carrier.port)], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0, detect_machine=True))
        await until(lambda: CallEventKind.hung_up in rec.kinds(call))
        events = rec.calls(call)
        assert [e.kind for e in events][-2:] == [CallEventKind.answered, CallEventKind.hung_up]
        answered, ended = events[-2:]
        assert answered.answered_by is AnsweredBy.human and ended.side == Side.customer
        assert ended.at - answered.at >= 0.5  # stamped with the answer, not with the hang-up
        assert await carrier.wait(10) == 0, carrier.errors()
    finally:
        await rec.stop()
        await driver.close()
        await carrier.stop()
