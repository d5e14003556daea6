"""RtpEngineAnchor in the real SIP driver: a SIPp carrier and a SIPp phone (their media played by Python RTP
endpoints at the addresses of their SDP — SIPp sends none of its own here), the driver's hold audio and then the
conversation relayed by a real rtpengine, and the recorded call's capture spooled with both parties' audio. Also:
the WebRTC flags rtpengine 10.5 accepts, which calls the anchor wants, and the runtime's wiring."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
from pathlib import Path
from typing import cast

import pytest

from dialer.config import Settings
from dialer.core.clock import SystemClock
from dialer.media.rtpengine import RtpEngineAnchor, RtpEngineProcess
from dialer.media.settings import MediaSettings
from dialer.telephony.base import CallEventKind, Originate
from dialer.telephony.sip import SipTelephony
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG, MediaAnchor
from dialer.voip.runtime import close_media, hang_up_lost, media_anchor
from tests.media.rtpengine_support import (
    RtpEndpoint,
    free_udp_port,
    port_range,
    read_pcap,
    running_rtpengine,
    sdp,
)
from tests.telephony.contract import Recorder
from tests.telephony.sip.harness import accounts, answer_params, phone_params, register_phone, settings, trunk
from tests.telephony.sip.sipp import Sipp, sipp_available, stop_all

CARRIER_FILL, PHONE_FILL = 0x33, 0x44
#: SIPp's own G.711 A-law recording (236 packets, 7 s), played by the SIPp carrier and phone.
G711A_PCAP = Path("/usr/share/sip-tester/g711a.pcap")


def recording_ssrc() -> bytes:
    """The RTP synchronisation source of SIPp's recording (its first packet: pcap and record headers, Ethernet, IPv4,
    UDP, then 8 bytes of RTP before it)."""
    return G711A_PCAP.read_bytes()[24 + 16 + 14 + 20 + 8 + 8:][:4]


def play_pcap_after_ack(sipp: Sipp, template: str) -> None:
    """Make a rendered SIPp scenario play SIPp's G.711 recording as its RTP once its INVITE was ACKed."""
    path = sipp.workdir / f"{template}.xml"
    text = path.read_text()
    ack = text.index('<recv request="ACK"')
    end = text.index("</recv>", ack) + len("</recv>")
    path.write_text(text[:end] + f'\n  <nop><action><exec play_pcap_audio="{G711A_PCAP}"/></action></nop>'
                    + text[end:])


async def until(check: object, what: str, within: float = 15.0) -> None:
    for _ in range(int(within / 0.05)):
        if callable(check) and check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")
async def test_a_recorded_call_through_the_driver_relayed_and_spooled(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    carrier_media = await RtpEndpoint.for_sipp(CARRIER_FILL)
    phone_media = await RtpEndpoint.for_sipp(PHONE_FILL)
    sipps: list[Sipp] = []
    async with running_rtpengine(recordings / "rtpengine") as engine:
        anchor = RtpEngineAnchor(engine, recordings)
        assert isinstance(anchor, MediaAnchor)
        driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [], accounts, anchor=anchor)
        rec = Recorder(driver)
        try:
            carrier = await Sipp("carrier_answer", answer_params(rtp_port=carrier_media.port, answer_ms=300),
                                 tmp_path).start()
            sipps.append(carrier)
            phone = await Sipp("phone_answer", phone_params(rtp_port=phone_media.port), tmp_path).start()
            sipps.append(phone)
            await driver.start()
            await driver.set_trunks([trunk(carrier.port)])
            await register_phone(driver, tmp_path, phone.port)
            call = await driver.originate(Originate(number="+79120000001", caller_id="+74950000000", record=True))
            await until(lambda: CallEventKind.answered in rec.kinds(call), "the answer")
            # hold audio: the driver's RTP → rtpengine → the carrier
            await driver.play(call, "hold-music")
            await until(lambda: len(carrier_media.received) >= 20, "hold audio through rtpengine")
            await driver.connect(call, "op-1")
            await until(lambda: CallEventKind.connected in rec.kinds(call), "the connection")
            await driver.play(call, None)
            customer_side = anchor.relay_address(call, CUSTOMER_TAG)
            dialer_side = anchor.relay_address(call, DIALER_TAG)
            assert customer_side is not None and dialer_side is not None
            assert customer_side[1] != carrier_media.port and dialer_side[1] != phone_media.port
            for seq in range(40):
                carrier_media.send(seq, customer_side)
                phone_media.send(seq, dialer_side)
                await asyncio.sleep(0.02)
            await until(lambda: phone_media.payloads_from(CARRIER_FILL) >= 40, "the customer's audio at the phone")
            await until(lambda: carrier_media.payloads_from(PHONE_FILL) >= 40, "the phone's audio at the customer")
            await driver.hangup(call)
            await until(lambda: CallEventKind.hung_up in rec.kinds(call), "the hang-up")
            await until(lambda: list((recordings / "spool").glob("*.json")), "the spooled recording")
        finally:
            await rec.stop()
            await driver.close()
            await stop_all(*sipps)
            carrier_media.close()
            phone_media.close()
    [sidecar_path] = (recordings / "spool").glob("*.json")
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["call_id"] == call
    customer, dialer = sidecar["customer"], sidecar["dialer"]
    assert customer["port"] == carrier_media.port and dialer["port"] == phone_media.port
    packets = read_pcap(sidecar_path.with_suffix(".pcap"))
    from_customer = [p for (_, (_, dst), p) in packets if dst == customer["relay_port"]]
    from_dialer = [p for (_, (_, dst), p) in packets if dst == dialer["relay_port"]]
    assert sum(1 for p in from_customer if p[12] == CARRIER_FILL) == 40
    assert sum(1 for p in from_dialer if p[12] == PHONE_FILL) == 40
    assert len(from_dialer) >= 60  # the hold audio before the phone's voice, recorded on the same side


@pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")
@pytest.mark.skipif(not sipp_available() or not G711A_PCAP.exists(), reason="SIPp (sip-tester) is not installed")
async def test_sipp_carrier_and_phone_playing_audio_through_rtpengine(tmp_path: Path) -> None:
    """SIPp's own RTP (pcap play) from the carrier and from the phone, through the driver and rtpengine, both in the
    spooled capture, each on its side."""
    recordings = tmp_path / "recordings"
    sipps: list[Sipp] = []
    async with running_rtpengine(recordings / "rtpengine") as engine:
        anchor = RtpEngineAnchor(engine, recordings)
        driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [], accounts, anchor=anchor)
        rec = Recorder(driver)
        try:
            carrier = Sipp("carrier_answer", answer_params(answer_ms=300), tmp_path)
            play_pcap_after_ack(carrier, "carrier_answer")
            sipps.append(await carrier.start())
            phone = Sipp("phone_answer", phone_params(), tmp_path)
            play_pcap_after_ack(phone, "phone_answer")
            sipps.append(await phone.start())
            await driver.start()
            await driver.set_trunks([trunk(carrier.port)])
            await register_phone(driver, tmp_path, phone.port)
            call = await driver.originate(Originate(number="+79120000001", caller_id="+74950000000", record=True))
            await until(lambda: CallEventKind.answered in rec.kinds(call), "the answer")
            await driver.connect(call, "op-1")
            await until(lambda: CallEventKind.connected in rec.kinds(call), "the connection")
            await asyncio.sleep(3.0)  # both recordings play on (7 s each)
            await driver.hangup(call)
            await until(lambda: list((recordings / "spool").glob("*.json")), "the spooled recording")
        finally:
            await rec.stop()
            await driver.close()
            await stop_all(*sipps)
    [sidecar_path] = (recordings / "spool").glob("*.json")
    sidecar = json.loads(sidecar_path.read_text())
    packets = read_pcap(sidecar_path.with_suffix(".pcap"))
    customer, dialer = sidecar["customer"], sidecar["dialer"]
    # SIPp plays the capture's packets through a raw socket (source port 0 as rtpengine records them): the side is
    # told by the relay port each arrived on, as the capture contract says
    # (the recording's own synchronisation source tells its packets from any the driver sent itself)
    ssrc = recording_ssrc()
    from_carrier = [p for (_, (_, dst), p) in packets if dst == customer["relay_port"] and p[8:12] == ssrc]
    from_phone = [p for (_, (_, dst), p) in packets if dst == dialer["relay_port"] and p[8:12] == ssrc]
    assert len(from_carrier) >= 50, len(from_carrier)  # > 1.5 s of the carrier's recording
    assert len(from_phone) >= 50, len(from_phone)  # > 1.5 s of the phone's


async def test_a_call_whose_relay_died_is_hung_up_and_its_capture_kept(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    carrier_media = await RtpEndpoint.for_sipp(CARRIER_FILL)
    sipps: list[Sipp] = []
    async with running_rtpengine(recordings / "rtpengine") as engine:
        anchor = RtpEngineAnchor(engine, recordings)
        driver = SipTelephony(settings(hold_audio_dir=str(tmp_path)), [], accounts, anchor=anchor)
        anchor.on_lost = functools.partial(hang_up_lost, driver)  # as dialer.voip.runtime wires it
        rec = Recorder(driver)
        try:
            carrier = await Sipp("carrier_answer", answer_params(rtp_port=carrier_media.port, answer_ms=300),
                                 tmp_path).start()
            sipps.append(carrier)
            await driver.start()
            await driver.set_trunks([trunk(carrier.port)])
            call = await driver.originate(Originate(number="+79120000001", caller_id="+74950000000", record=True))
            await until(lambda: CallEventKind.answered in rec.kinds(call), "the answer")
            await driver.play(call, "hold-music")
            # rtpengine writes its capture in 4 KB blocks: a crash loses the last ~0.2 s of it
            await until(lambda: len(carrier_media.received) >= 60, "hold audio through rtpengine")
            pid = engine.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await until(lambda: CallEventKind.hung_up in rec.kinds(call), "the lost call hung up")
            await until(lambda: list((recordings / "spool").glob("*.json")), "the capture spooled")
            assert engine.restarts == 1
            assert await carrier.wait(10) == 0, carrier.errors()  # the carrier got a proper BYE
        finally:
            await rec.stop()
            await driver.close()
            await stop_all(*sipps)
            carrier_media.close()
    [sidecar_path] = (recordings / "spool").glob("*.json")
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["call_id"] == call and sidecar["recovered"] is True


async def test_webrtc_flags_toward_a_browser_and_plain_rtp_back(tmp_path: Path) -> None:
    async with running_rtpengine(tmp_path / "rec") as engine:
        anchor = RtpEngineAnchor(engine, tmp_path / "recordings")
        to_browser = (await anchor.offer("webrtc-1", sdp(5000), from_tag=CUSTOMER_TAG, to_tag=None,
                                         webrtc=True)).decode()
        assert "UDP/TLS/RTP/SAVPF" in to_browser and "a=ice-ufrag:" in to_browser
        assert "a=fingerprint:" in to_browser and "a=mid:" in to_browser and "a=rtcp-mux" in to_browser
        assert "a=crypto:" not in to_browser  # SDES off: DTLS-SRTP only
        browser_answer = to_browser.replace("a=setup:actpass", "a=setup:active").encode()
        to_carrier = (await anchor.answer("webrtc-1", browser_answer, from_tag=CUSTOMER_TAG, to_tag=DIALER_TAG))
        text = to_carrier.decode()
        assert "RTP/AVP" in text and "SAVPF" not in text and "a=ice-" not in text and "a=rtcp-mux" not in text
        await anchor.delete("webrtc-1")


async def test_the_calls_the_anchor_wants(tmp_path: Path) -> None:
    engine = RtpEngineProcess(interface="127.0.0.1", ng_port=free_udp_port(), port_min=40000, port_max=40099,
                              recording_dir=tmp_path / "rec")
    plain = Originate(number="+79120000001")
    anchor = RtpEngineAnchor(engine, tmp_path)
    assert anchor.wants(Originate(number="+79120000001", record=True))
    assert not anchor.wants(plain)
    # machine detection listens on the dialer's own RTP, which the customer reaches without the relay too
    assert not anchor.wants(Originate(number="+79120000001", detect_machine=True))
    assert RtpEngineAnchor(engine, tmp_path, relay_all=True).wants(plain)


async def test_runtime_starts_the_relay_only_when_enabled(tmp_path: Path) -> None:
    settings_ = Settings(data_dir=tmp_path)
    assert await media_anchor(settings_, SystemClock(), MediaSettings(enabled=False)) is None
    low, high = port_range()
    anchor = await media_anchor(settings_, SystemClock(), MediaSettings(
        enabled=True, ng_port=free_udp_port(), interface="127.0.0.1", port_min=low, port_max=high))
    assert anchor is not None
    try:
        assert anchor.recordings_dir == tmp_path / "recordings"
        engine = cast(RtpEngineProcess, anchor.engine)
        assert engine.pid is not None
        await engine.client.ping()
    finally:
        driver = SipTelephony(settings(), [], accounts, anchor=anchor)
        await close_media(driver)
    assert engine.pid is None
