"""dialer.media.pcap: a synthetic two-party capture → stereo audio with each party's tone on its own channel."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dialer.media import pcap
from dialer.media.pcap import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, ConversionError, convert_pcap
from dialer.media.recordings import read_sidecar
from tests.media.recording_fixtures import (
    CUSTOMER,
    DIALER,
    RELAY_C,
    RELAY_O,
    dominant_hz,
    packets,
    write_call,
)


@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW])
def test_two_tones_on_two_channels(tmp_path: Path, linktype: int) -> None:
    capture, _ = write_call(tmp_path, "call", call_id="c1", seconds=2.0, linktype=linktype)
    audio = convert_pcap(capture, CUSTOMER, DIALER)
    assert audio.samples.shape[1] == 2
    assert abs(audio.duration_s - 2.005) < 0.01
    assert dominant_hz(audio.samples[:, 0]) == pytest.approx(440, abs=2)
    assert dominant_hz(audio.samples[:, 1]) == pytest.approx(1000, abs=2)
    assert audio.packets == {"customer": 100, "operator": 100}


def test_gap_becomes_silence_of_its_length(tmp_path: Path) -> None:
    # packets 40..59 of the customer lost: 0.8 s … 1.2 s is silence, and what follows stays in place
    capture, _ = write_call(tmp_path, "gap", call_id="c2", seconds=2.0, customer_skip=range(40, 60))
    audio = convert_pcap(capture, CUSTOMER, DIALER)
    left = audio.samples[:, 0]
    assert not left[6400:9600].any()
    assert np.abs(left[9600:11200]).max() > 4000
    assert dominant_hz(left[9600:16000]) == pytest.approx(440, abs=3)
    assert np.abs(audio.samples[6400:9600, 1]).max() > 4000  # the operator went on talking


def test_duplicates_dropped_and_reordering_undone(tmp_path: Path) -> None:
    clean, _ = write_call(tmp_path / "a", "clean", call_id="c3")
    messy, _ = write_call(tmp_path / "b", "messy", call_id="c3", shuffle=True, duplicate=True)
    a = convert_pcap(clean, CUSTOMER, DIALER)
    b = convert_pcap(messy, CUSTOMER, DIALER)
    assert b.duplicates == 10
    assert np.array_equal(a.samples, b.samples)


def test_packets_to_the_parties_count_as_the_other_side(tmp_path: Path) -> None:
    # a capture of what rtpengine sent (towards the customer = the operator's voice) is split the same way
    capture = tmp_path / "out.pcap"
    with capture.open("wb") as out:
        writer = pcap.PcapWriter(out)
        for at, data in packets(1000, 1.0, pt=0):
            writer.udp(at, RELAY_C, CUSTOMER, data)
    audio = convert_pcap(capture, CUSTOMER, DIALER)
    assert not audio.samples[:, 0].any()
    assert dominant_hz(audio.samples[:, 1]) == pytest.approx(1000, abs=2)


def test_refusals_say_why(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    with empty.open("wb") as out:
        pcap.PcapWriter(out)
    with pytest.raises(ConversionError, match=r"no G\.711 RTP"):
        convert_pcap(empty, CUSTOMER, DIALER)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello world, this is not a capture")
    with pytest.raises(ConversionError, match="not a pcap"):
        convert_pcap(junk, CUSTOMER, DIALER)
    capture, _ = write_call(tmp_path, "long", call_id="c4", seconds=2.0)
    with pytest.raises(ConversionError, match="more than 1 s"):
        convert_pcap(capture, CUSTOMER, DIALER, max_s=1)


def test_truncated_capture_keeps_what_came_before(tmp_path: Path) -> None:
    capture, _ = write_call(tmp_path, "cut", call_id="c5", seconds=1.0)
    data = capture.read_bytes()
    capture.write_bytes(data[:-30])
    audio = convert_pcap(capture, CUSTOMER, DIALER)
    assert audio.packets["customer"] + audio.packets["operator"] == 99


def test_rtp_header_extensions_and_padding() -> None:
    payload = bytes(range(160))
    packet = bytearray(pcap.rtp_bytes(8, 1, 160, 7, payload))
    packet[0] |= 0x10 | 0x20 | 0x01  # extension, padding, one CSRC
    csrc, extension = b"\x00\x00\x00\x09", b"\xbe\xde\x00\x01" + b"\x01\x02\x03\x04"
    raw = bytes(packet[:12]) + csrc + extension + payload + b"\x00\x00\x03"
    parsed = pcap.parse_rtp(raw)
    assert parsed is not None and parsed.payload == payload and parsed.ssrc == 7
    assert pcap.parse_rtp(b"\x80\xc8" + bytes(30)) is None  # RTCP sender report


def test_encoded_file_is_playable_opus(tmp_path: Path) -> None:
    capture, _ = write_call(tmp_path, "enc", call_id="c6", seconds=1.0)
    wav = tmp_path / "call.wav"
    pcap.write_wav(wav, convert_pcap(capture, CUSTOMER, DIALER))
    samples, rate = pcap.read_wav(wav)
    assert rate == 8000 and samples.shape == (8040, 2)
    out = tmp_path / "call.ogg"
    pcap.encode(wav, out, "opus", 24)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels",
                            "-of", "csv=p=0", str(out)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "opus,2"
    with pytest.raises(ConversionError, match="unknown recording format"):
        pcap.encode(wav, out, "flac", 24)


def test_writer_refuses_unknown_link_type() -> None:
    with pytest.raises(ValueError, match="link type"):
        pcap.PcapWriter(io.BytesIO(), 228)


def test_the_relay_port_decides_when_the_operator_side_changes_address(tmp_path: Path) -> None:
    # rtpengine's contract: packets are captured as received; the dialer side's source changes from the hold audio
    # to the operator's phone mid-call, and the sidecar knows only the last one (or none): the relay port decides
    capture = tmp_path / "moved.pcap"
    hold, phone = ("127.0.0.1", 20002), ("10.0.0.5", 5004)
    with capture.open("wb") as out:
        writer = pcap.PcapWriter(out, LINKTYPE_RAW)
        for at, data in packets(440, 2.0, pt=8, ssrc=1):
            writer.udp(at, CUSTOMER, RELAY_C, data)
        for n, (at, data) in enumerate(packets(1000, 2.0, pt=0, ssrc=2)):
            writer.udp(at + 0.003, hold if n < 50 else phone, RELAY_O, data)
    audio = convert_pcap(capture, None, phone, customer_relay=RELAY_C, dialer_relay=RELAY_O)
    assert audio.packets == {"customer": 100, "operator": 100}
    assert dominant_hz(audio.samples[:8000, 1]) == pytest.approx(1000, abs=2)
    assert dominant_hz(audio.samples[8000:, 1]) == pytest.approx(1000, abs=2)
    assert dominant_hz(audio.samples[:, 0]) == pytest.approx(440, abs=2)


def test_sidecar_of_the_rtpengine_side(tmp_path: Path) -> None:
    _, sidecar_path = write_call(tmp_path, "s", call_id="x@y")
    sidecar = read_sidecar(sidecar_path)
    assert (sidecar.customer, sidecar.customer_relay, sidecar.dialer_relay) == (CUSTOMER, RELAY_C, RELAY_O)
    sidecar_path.write_text('{"call_id": "x", "started_at": "2026-12-08T00:00:00Z", "ended_at": '
                            '"2026-12-08T00:01:00Z", "customer": {"host": null, "port": null}, "dialer": {}}')
    with pytest.raises(ConversionError, match="each party needs its address"):
        read_sidecar(sidecar_path)
