"""The RTP receive tap (RtpPorts.listen) and G.711 decoding, on real UDP sockets; and end to end: SIPp plays a
generated greeting from a pcap (as the SIP driver's carrier will), the tap decodes it and the detector decides."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import struct
from pathlib import Path

import pytest

from dialer.media.amd import AmdDecision, AmdDetector, AmdResult
from dialer.media.samples import SampleClass, generate, missing_tools, write_rtp_pcap
from dialer.telephony.sip.rtp import (
    PT_PCMA,
    PT_PCMU,
    RtpPorts,
    RtpSender,
    decode,
    decode_g711,
    encode,
    encode_g711,
    rtp_payload,
)


def free_even_udp_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port % 2 == 0 and port < 60000:
            return port
    raise RuntimeError("no free even UDP port")


def rtp(payload_type: int, payload: bytes, seq: int = 1) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq, seq * 160, 0xABCDEF) + payload


class Arrivals:
    """What listeners received, and a wait for it (the callbacks run in the event loop)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self._changed = asyncio.Event()

    def __call__(self, payload_type: int, payload: bytes) -> None:
        self.items.append((payload_type, payload))
        self._changed.set()

    async def until(self, count: int, within: float = 10.0) -> None:
        async def wait() -> None:
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), within)


# --- G.711 --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload_type", [PT_PCMU, PT_PCMA])
def test_decode_g711_matches_the_reference_tables(payload_type: int) -> None:
    every_byte = bytes(range(256))
    pcm = decode_g711(payload_type, every_byte)
    assert len(pcm) == 512
    assert list(struct.unpack("<256h", pcm)) == list(decode(every_byte, payload_type))
    samples = list(range(-32768, 32768, 7))
    assert encode_g711(payload_type, struct.pack(f"<{len(samples)}h", *samples)) == encode(samples, payload_type)
    assert encode_g711(payload_type, b"\x01\x02\x03") == encode([0x0201], payload_type)  # odd byte dropped
    assert decode_g711(payload_type, b"") == b""


def test_decode_g711_refuses_other_codecs() -> None:
    with pytest.raises(ValueError, match=r"payload type 18 is not G\.711"):
        decode_g711(18, b"\x00" * 20)
    with pytest.raises(ValueError, match=r"not G\.711"):
        encode_g711(9, b"\x00\x00")


def test_rtp_payload_parsing() -> None:
    body = bytes(range(160))
    assert rtp_payload(rtp(PT_PCMA, body)) == (PT_PCMA, body)
    assert rtp_payload(rtp(0x80 | PT_PCMU, body)) == (PT_PCMU, body)  # the marker bit is not the type
    # two CSRCs, a header extension of one word and three bytes of padding
    packet = (struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, PT_PCMA, 5, 800, 1) + b"\0" * 8
              + b"\xbe\xde\x00\x01" + b"\x01\x02\x03\x04" + body + b"\0\0\x03")
    assert rtp_payload(packet) == (PT_PCMA, body)
    assert rtp_payload(b"\x80\x08") is None  # too short
    assert rtp_payload(b"\x40" + bytes(30)) is None  # version 1
    assert rtp_payload(struct.pack("!BBHI", 0x80, 200, 6, 1) + bytes(20)) is None  # an RTCP sender report


# --- the tap on real sockets ---------------------------------------------------------------------------------------
async def test_listen_delivers_from_the_given_source_only_and_unsubscribes() -> None:
    port = free_even_udp_port()
    ports = RtpPorts("127.0.0.1", port, port)
    loop = asyncio.get_running_loop()
    a, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    b, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        got_a, got_any = Arrivals(), Arrivals()
        # a listener registered before the port is bound gets packets from when it is
        stop_a = ports.listen(port, a.get_extra_info("sockname")[:2], got_a)
        sock = await ports.socket(port)
        stop_any = ports.listen(port, None, got_any)
        a.sendto(rtp(PT_PCMA, b"from a"), ("127.0.0.1", port))
        b.sendto(rtp(PT_PCMU, b"from b"), ("127.0.0.1", port))
        b.sendto(b"not rtp", ("127.0.0.1", port))
        await got_any.until(2)
        assert got_a.items == [(PT_PCMA, b"from a")]
        assert sorted(got_any.items) == [(PT_PCMU, b"from b"), (PT_PCMA, b"from a")]

        stop_a()
        stop_a()  # harmless twice
        a.sendto(rtp(PT_PCMA, b"again", 2), ("127.0.0.1", port))
        await got_any.until(3)
        assert got_a.items == [(PT_PCMA, b"from a")]
        stop_any()

        # sending from the port is as before: a hold-audio sender's packets reach their destination
        received = Arrivals()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                parsed = rtp_payload(data)
                assert parsed is not None
                received(*parsed)

        dest, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        sender = RtpSender(sock, dest.get_extra_info("sockname")[:2], PT_PCMA, bytes(800))
        sender.start()
        await received.until(3)
        sender.stop()
        dest.close()
        assert received.items[0] == (PT_PCMA, bytes(160))
    finally:
        a.close()
        b.close()
        ports.close()


async def test_a_failing_listener_does_not_starve_the_others(caplog: pytest.LogCaptureFixture) -> None:
    port = free_even_udp_port()
    ports = RtpPorts("127.0.0.1", port, port)
    await ports.socket(port)
    got = Arrivals()

    def broken(payload_type: int, payload: bytes) -> None:
        raise RuntimeError("listener bug")

    ports.listen(port, None, broken)
    ports.listen(port, None, got)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out, caplog.at_level(logging.ERROR):
        out.sendto(rtp(PT_PCMA, b"x"), ("127.0.0.1", port))
        await got.until(1)
    ports.close()
    assert got.items == [(PT_PCMA, b"x")]
    assert "RTP listener" in caplog.text and "listener bug" in caplog.text


# --- end to end with SIPp playing a pcap ---------------------------------------------------------------------------
ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer with the tap's media address">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]TapTag[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:tap@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=tap 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {tap_port} RTP/AVP {pt}

]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""

PLAY = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a carrier that plays the answered party's audio">
  <send retrans="500"><![CDATA[
INVITE sip:tap@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]:[local_port]>;tag=[pid]PlayTag[call_number]
To: <sip:tap@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:carrier@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=carrier 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt}

]]></send>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK sip:tap@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]:[local_port]>;tag=[pid]PlayTag[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{play_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:tap@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]:[local_port]>;tag=[pid]PlayTag[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


async def _sipp(workdir: Path, scenario: str, sip_port: int, media_port: int, *remote: str,
                ) -> asyncio.subprocess.Process:
    sipp = shutil.which("sipp")
    assert sipp is not None, "SIPp is not installed (the test command installs sip-tester)"
    path = workdir / f"scenario-{sip_port}.xml"
    path.write_text(scenario)
    return await asyncio.create_subprocess_exec(
        sipp, *remote, "-sf", str(path), "-i", "127.0.0.1", "-p", str(sip_port), "-mi", "127.0.0.1",
        "-mp", str(media_port), "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err",
        cwd=workdir, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


@pytest.mark.parametrize(("kind", "index", "payload_type", "expected"), [
    (SampleClass.machine, 0, PT_PCMA, AmdResult.machine),
    (SampleClass.human_short, 1, PT_PCMU, AmdResult.human),
])
async def test_sipp_plays_a_generated_greeting_and_the_tap_decides(
        tmp_path: Path, kind: SampleClass, index: int, payload_type: int, expected: AmdResult) -> None:
    assert not missing_tools(), "the test command installs espeak-ng and sox"
    sample = generate(kind, index, codec=payload_type)
    pcap = write_rtp_pcap(tmp_path / "greeting.pcap", sample.pcm, payload_type=payload_type)
    offline = AmdDetector().feed(sample.pcm)
    assert offline is not None and offline.result is expected

    tap_port = free_even_udp_port()
    ports = RtpPorts("127.0.0.1", tap_port, tap_port)
    await ports.socket(tap_port)
    detector = AmdDetector()
    decided: asyncio.Future[AmdDecision] = asyncio.get_running_loop().create_future()
    packets: list[int] = []

    def on_payload(pt: int, payload: bytes) -> None:
        packets.append(pt)
        decision = detector.feed(decode_g711(pt, payload))
        if decision is not None and not decided.done():
            decided.set_result(decision)

    uas_port, uac_port, uac_media = free_even_udp_port(), free_even_udp_port(), free_even_udp_port()
    # SIPp sends the pcap's packets from the media address of its SDP, as a carrier would: filter by it
    ports.listen(tap_port, ("127.0.0.1", uac_media), on_payload)
    # the carrier hangs up a while after the decision is due (the BYE stops the playing)
    fill = {"tap_port": tap_port, "pt": payload_type, "pcap": pcap,
            "play_ms": min(sample.duration_ms, offline.decided_after_ms + 1000)}
    uas = await _sipp(tmp_path, ANSWER.format(**fill), uas_port, free_even_udp_port())
    uac = None
    try:
        await asyncio.sleep(0.3)  # SIPp binds its port
        uac = await _sipp(tmp_path, PLAY.format(**fill), uac_port, uac_media, f"127.0.0.1:{uas_port}")
        decision = await asyncio.wait_for(decided, 30)
        assert decision.result is expected, decision
        # the decision over the network is the one from the file: RTP loses nothing on loopback
        assert decision == offline
        assert set(packets) == {payload_type} and len(packets) >= decision.decided_after_ms // 20
        _, uac_err = await asyncio.wait_for(uac.communicate(), 30)
        assert uac.returncode == 0, uac_err.decode(errors="replace")
        _, uas_err = await asyncio.wait_for(uas.communicate(), 30)
        assert uas.returncode == 0, uas_err.decode(errors="replace")
    finally:
        for proc in (uac, uas):
            if proc is not None and proc.returncode is None:
                proc.kill()
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        ports.close()
