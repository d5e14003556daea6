"""Taking back an offer (``withdraw``) and the hold audio a fresh installation plays, against real SIPp peers."""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from pathlib import Path

import pytest

from dialer.telephony.base import (
    CallEventKind,
    EndpointEvent,
    EndpointEventKind,
    TelephonyError,
    UnknownCall,
    WithdrawsOffers,
)
from dialer.telephony.sim import SimTelephony
from dialer.telephony.sip import SipTelephony
from dialer.telephony.sip.holdaudio import DEFAULT_HOLD_AUDIO, chime_samples
from dialer.telephony.sip.rtp import PT_PCMA, read_wav
from tests.telephony.contract import Recorder
from tests.telephony.sip.harness import LOGIN, accounts, answer_params, phone_params, register_phone, settings, trunk
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available
from tests.telephony.sip.test_sip import CALL, RtpCounter, forgot_everything, until

pytestmark = pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")

OTHER = "op-2"


def hung_up(rec: Recorder, login: str) -> list[EndpointEvent]:
    return [e for e in rec.events if isinstance(e, EndpointEvent) and e.endpoint == login
            and e.kind == EndpointEventKind.hung_up]


def test_both_drivers_can_withdraw_an_offer() -> None:
    assert issubclass(SipTelephony, WithdrawsOffers) and issubclass(SimTelephony, WithdrawsOffers)


async def test_withdraw_cancels_the_ringing_phone_and_the_customer_goes_to_another(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    carrier_rtp, phone_rtp = free_port(), free_port()
    transport, counter = await loop.create_datagram_endpoint(RtpCounter, local_addr=("127.0.0.1", carrier_rtp))
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, rtp_port=carrier_rtp, talk_ms=60000,
                                                         reinvite_regexp=f"m=audio {phone_rtp} "), tmp_path).start()
    # the first operator's phone rings and never answers: it expects a CANCEL (then 487, ACK)
    silent = await Sipp("carrier_ring", {"on_cancel": 487}, tmp_path).start()
    phone = await Sipp("phone_answer", phone_params(rtp_port=phone_rtp), tmp_path).start()
    audio_dir = tmp_path / "audio"
    driver = SipTelephony(settings(hold_audio_dir=str(audio_dir)), [trunk(carrier.port)], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        await register_phone(driver, tmp_path, silent.port)
        await register_phone(driver, tmp_path, phone.port, OTHER, "other")
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.withdraw(call)  # nothing offered yet: the customer simply keeps waiting
        await driver.play(call, DEFAULT_HOLD_AUDIO)  # the generated default
        await until(lambda: len(counter.packets) >= 5)

        await driver.connect(call, LOGIN)
        await until(lambda: rec.endpoint_kinds(LOGIN)[-1] == "ringing")
        await driver.play(call, None)  # what the engine does once it has offered the call
        before = len(counter.packets)
        await driver.withdraw(call)
        await until(lambda: bool(hung_up(rec, LOGIN)))
        assert hung_up(rec, LOGIN)[-1].detail == "withdrawn"
        assert await silent.wait(5) == 0, silent.errors()  # it got the CANCEL, answered 487 and got our ACK
        assert silent.total("CANCEL", "Recv") == 1 and silent.total("ACK", "Recv") == 1
        # back on hold music, and free for another operator
        await until(lambda: len(counter.packets) >= before + 10)
        assert counter.packets[-1][1][1] & 0x7F == PT_PCMA
        with pytest.raises(UnknownCall):
            await driver.withdraw("no-such-call")  # type: ignore[arg-type]

        await driver.connect(call, OTHER)
        await until(lambda: CallEventKind.connected in rec.kinds(call))
        assert rec.calls(call)[-1].endpoint == OTHER
        with pytest.raises(UnknownCall, match="not being offered"):
            await driver.withdraw(call)  # connected: nothing to take back
        sent = len(counter.packets)
        await asyncio.sleep(0.2)
        assert len(counter.packets) <= sent + 1  # the music stopped with the connection
        await driver.hangup(call)
        assert await phone.wait(5) == 0, phone.errors()
        assert await carrier.wait(5) == 0, carrier.errors()  # one re-INVITE, to the second phone, then our BYE
        assert carrier.total("INVITE", "Recv") == 2 and carrier.total("BYE", "Recv") == 1
        assert phone.total("INVITE", "Recv") == 1
        await until(lambda: forgot_everything(driver))
    finally:
        await driver.close()
        await rec.stop()
        transport.close()
        for proc in (carrier, silent, phone):
            await proc.stop()


async def test_withdraw_during_a_delayed_offer_answers_the_carrier_with_our_media(tmp_path: Path) -> None:
    # delayed offer: the carrier's answer to our re-INVITE (his offer) waits for our ACK while the phone rings; the
    # withdrawn offer ACKs it with the dialer's own media (the ACK is checked by SIPp's regexp)
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, reinvite_regexp="Content-Length: 0",
                                                         ack_regexp="m=audio [0-9]+ RTP/AVP 8 0 101"),
                         tmp_path).start()
    silent = await Sipp("carrier_ring", {"on_cancel": 487}, tmp_path).start()
    driver = SipTelephony(settings(), [trunk(carrier.port, connect_flow="delayed_offer")], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        await register_phone(driver, tmp_path, silent.port)
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.connect(call, LOGIN)
        await until(lambda: rec.endpoint_kinds(LOGIN)[-1] == "ringing")
        await driver.withdraw(call)
        await until(lambda: bool(hung_up(rec, LOGIN)))
        assert hung_up(rec, LOGIN)[-1].detail == "withdrawn"
        assert await silent.wait(5) == 0, silent.errors()
        assert silent.total("CANCEL", "Recv") == 1
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()
        assert carrier.total("ACK", "Recv") == 2 and carrier.total("BYE", "Recv") == 1
        await until(lambda: forgot_everything(driver))
    finally:
        await driver.close()
        await rec.stop()
        for proc in (carrier, silent):
            await proc.stop()


async def test_withdraw_while_the_carrier_answers_the_delayed_offer_reinvite(tmp_path: Path) -> None:
    # withdrawn before the phone is even invited: the flow stops after the carrier's answer, which gets our media
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, reinvite_regexp="Content-Length: 0",
                                                         ack_regexp="m=audio [0-9]+ RTP/AVP 8 0 101"),
                         tmp_path).start()
    phone = await Sipp("phone_answer", phone_params(), tmp_path).start()
    driver = SipTelephony(settings(), [trunk(carrier.port, connect_flow="delayed_offer")], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        await register_phone(driver, tmp_path, phone.port)
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.connect(call, LOGIN)
        await asyncio.sleep(0)  # the flow sends its re-INVITE without SDP to the carrier
        assert driver._calls[call].customer.reinviting
        await driver.withdraw(call)
        await until(lambda: bool(hung_up(rec, LOGIN)))
        assert hung_up(rec, LOGIN)[-1].detail == "withdrawn"
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()
        assert rec.endpoint_kinds(LOGIN) == ["registered", "hung_up"]  # the phone was never invited
        await phone.stop()
        assert phone.total("INVITE", "Recv") == 0
        await until(lambda: forgot_everything(driver))
    finally:
        await driver.close()
        await rec.stop()
        for proc in (carrier, phone):
            await proc.stop()


# --- the default hold audio -------------------------------------------------------------------------------------
async def test_a_fresh_installation_gets_a_default_hold_audio(tmp_path: Path) -> None:
    audio_dir = tmp_path / "var" / "audio"  # does not exist yet
    driver = SipTelephony(settings(hold_audio_dir=str(audio_dir)), [], accounts)
    await driver.start()
    await driver.close()
    path = audio_dir / f"{DEFAULT_HOLD_AUDIO}.wav"
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert 3 <= wav.getnframes() / 8000 <= 10
    decoded = read_wav(path.read_bytes())
    samples = list(chime_samples())
    assert list(decoded.samples) == samples
    peak = max(abs(v) for v in samples)
    assert 3000 < peak < 16000  # audible, and soft: well below full scale
    assert abs(samples[0]) < 50 and abs(samples[-1]) < 50  # loops without a click
    # not rewritten when present: an administrator's own file stays
    path.write_bytes(b"RIFF-own-file")
    driver = SipTelephony(settings(hold_audio_dir=str(audio_dir)), [], accounts)
    await driver.start()
    await driver.close()
    assert path.read_bytes() == b"RIFF-own-file"


async def test_missing_hold_audio_is_silence_with_one_warning(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    rtp_port = free_port()
    transport, counter = await loop.create_datagram_endpoint(RtpCounter, local_addr=("127.0.0.1", rtp_port))
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, rtp_port=rtp_port), tmp_path).start()
    driver = SipTelephony(settings(hold_audio_dir=str(tmp_path / "audio")), [trunk(carrier.port)], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        with caplog.at_level(logging.WARNING, logger="dialer.telephony.sip.driver"):
            for _ in range(3):
                with pytest.raises(TelephonyError, match="cannot play no-such-tune"):
                    await driver.play(call, "no-such-tune")
        warnings = [r for r in caplog.records if "no-such-tune" in r.getMessage()]
        assert len(warnings) == 1 and "silence" in warnings[0].getMessage()
        await asyncio.sleep(0.2)
        assert counter.packets == []  # silence
        await driver.play(call, DEFAULT_HOLD_AUDIO)  # the call is fine: the default plays
        started = time.monotonic()
        await until(lambda: len(counter.packets) >= 3)
        assert time.monotonic() - started < 2
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()
    finally:
        await driver.close()
        await rec.stop()
        transport.close()
        await carrier.stop()
