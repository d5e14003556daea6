"""A recorded call's pcap → a stereo WAV (left: the customer, right: the operator's side) → a compressed file.

rtpengine's pcap recording (``--recording-method=pcap``) leaves one capture per call with the RTP of both
directions (issue #16 §1). This module reads such a capture — classic pcap, micro- or nanosecond, either byte order;
links Ethernet (VLAN tags skipped), Linux cooked (SLL and SLL2), raw IP and BSD loopback; IPv4 (unfragmented) and
IPv6 without extension headers; UDP; RTP version 2 — and tells the two parties apart by the addresses of the
recording's sidecar (:func:`side_of`; the contract is in :mod:`dialer.media.rtpengine`): a packet that arrived on
rtpengine's port facing the customer, or *from* the customer's address, is the customer's audio; one that arrived on
the port facing the dialer's side, or *from* that side's address, is the operator's. G.711 (PCMU 0, PCMA 8) is
decoded with the numpy tables of :mod:`dialer.telephony.sip.rtp`; comfort noise and DTMF events become silence.

Each party's packets are laid on one timeline, per synchronisation source (SSRC): sequence numbers and timestamps are
unwrapped, duplicates dropped, packets put back in sequence order, and the RTP timestamp places the audio — anchored
to the earliest arrival it implies (network delay only ever makes a packet late), so the two parties stay in step
with each other and a gap in the stream (lost packets, silence suppression, a hold) becomes silence of its real
length. A timestamp that jumps away from the arrival times by more than :data:`MAX_SKEW_S` (a source that restarted
its clock) starts a new anchor. :class:`PcapWriter` writes captures of the same shapes (the tests' synthetic calls).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import shutil
import struct
import subprocess
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from dialer.telephony.sip.rtp import decode_g711

#: Sample rate of G.711 and of the WAV made from it.
RATE = 8000
#: Payload types decoded; others (comfort noise 13, telephone-event 96–127 …) are left as silence.
G711 = {0: "PCMU", 8: "PCMA"}
#: A source whose timestamps drift this far from the arrival times gets a new anchor.
MAX_SKEW_S = 1.0

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_RAW_LINKS = {LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6}

Side = Literal["customer", "operator"]
Endpoint = tuple[str, int]


class ConversionError(Exception):
    """The capture cannot be turned into a recording (unreadable, no audio of the call, too long, ffmpeg failed);
    the message says why."""


@dataclasses.dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Datagram:
    """One UDP datagram of the capture, with its arrival time (seconds since the epoch)."""

    at: float
    src: Endpoint
    dst: Endpoint
    payload: bytes


@dataclasses.dataclass
class StereoAudio:
    """16-bit samples, shape ``(n, 2)``: column 0 the customer, column 1 the operator's side."""

    samples: np.ndarray
    #: Where sample 0 is (seconds since the epoch): the earliest moment a packet's audio is placed at.
    start: float
    #: Packets laid on the timeline per side, and the duplicates dropped.
    packets: dict[str, int]
    duplicates: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / RATE


# --- reading ------------------------------------------------------------------------------------------------------


def read_frames(stream: BinaryIO) -> Iterator[tuple[float, int, bytes]]:
    """``(arrival time, link type, frame)`` of every record of a classic pcap file; a record cut short by a crash
    ends the capture (what came before it is kept). The file is read whole (a call's capture is ~20 KB/s)."""
    data = stream.read()
    if len(data) < 24:
        raise ConversionError("not a pcap file: shorter than its 24-byte header")
    magic = data[:4]
    formats = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
    if magic not in formats:
        if magic == b"\x0a\x0d\x0d\x0a":
            raise ConversionError("pcapng captures are not supported; write classic pcap")
        raise ConversionError(f"not a pcap file (magic {magic.hex()})")
    order, unit = formats[magic]
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    offset, end = 24, len(data)
    while offset + 16 <= end:
        seconds, fraction, captured, _original = record.unpack_from(data, offset)
        if captured > 262144:
            raise ConversionError(f"corrupt pcap record of {captured} bytes at offset {offset}")
        offset += 16
        if offset + captured > end:
            return
        yield seconds + fraction * unit, linktype, data[offset:offset + captured]
        offset += captured


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, or None for anything else (ARP, unknown links)."""
    if linktype == LINKTYPE_ETHERNET:
        offset, ethertype = 14, int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:
            ethertype = int.from_bytes(frame[offset + 2:offset + 4], "big")
            offset += 4
        return frame[offset:] if ethertype in (0x0800, 0x86DD) else None
    if linktype == LINKTYPE_LINUX_SLL:
        return frame[16:] if len(frame) >= 16 and frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == LINKTYPE_LINUX_SLL2:
        return frame[20:] if len(frame) >= 20 and frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == LINKTYPE_NULL:
        return frame[4:] if len(frame) >= 4 else None
    if linktype in _RAW_LINKS:
        return frame
    return None


def parse_udp(linktype: int, frame: bytes) -> tuple[Endpoint, Endpoint, bytes] | None:
    """``(source, destination, UDP payload)`` of a frame carrying UDP over IPv4 or IPv6, else None. IPv4 fragments
    are skipped (RTP never needs them)."""
    ip = _ip_payload(linktype, frame)
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4:
        if len(ip) < 20:
            return None
        ihl = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        flags_fragment = int.from_bytes(ip[6:8], "big")
        if ip[9] != 17 or flags_fragment & 0x3FFF or ihl < 20:
            return None
        src_host, dst_host = _host(ip[12:16]), _host(ip[16:20])
        udp = ip[ihl:total] if total else ip[ihl:]
    elif version == 6:
        if len(ip) < 40 or ip[6] != 17:
            return None
        src_host, dst_host = _host(ip[8:24]), _host(ip[24:40])
        udp = ip[40:40 + int.from_bytes(ip[4:6], "big")]
    else:
        return None
    if len(udp) < 8:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    return (src_host, sport), (dst_host, dport), udp[8:length] if length >= 8 else udp[8:]


def parse_rtp(data: bytes) -> RtpPacket | None:
    """An RTP version 2 packet (CSRCs, header extension and padding removed), or None for anything else (RTCP
    included: its payload types 200–204 fall in the marker-bit range 72–76)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    payload_type = data[1] & 0x7F
    if 72 <= payload_type <= 76:
        return None
    offset = 12 + (data[0] & 0x0F) * 4
    if data[0] & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + int.from_bytes(data[offset + 2:offset + 4], "big") * 4
    end = len(data)
    if data[0] & 0x20 and end > offset:
        end -= data[-1]
    if end < offset:
        return None
    seq, timestamp, ssrc = struct.unpack("!HII", data[2:12])
    return RtpPacket(payload_type, seq, timestamp, ssrc, bool(data[1] & 0x80), data[offset:end])


def read_datagrams(path: Path) -> Iterator[Datagram]:
    with path.open("rb") as stream:
        for at, linktype, frame in read_frames(stream):
            parsed = parse_udp(linktype, frame)
            if parsed is not None:
                yield Datagram(at, *parsed)


# --- splitting and laying out ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _host(packed: bytes) -> str:
    """A packed IPv4 or IPv6 address as text (cached: a call has a handful of addresses and many packets)."""
    return str(ipaddress.IPv4Address(packed) if len(packed) == 4 else ipaddress.IPv6Address(packed))


@functools.lru_cache(maxsize=4096)
def _canonical(host: str) -> str:
    """One spelling per address: ``::ffff:1.2.3.4`` is ``1.2.3.4``, IPv6 compressed; a name stays as written."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _matches(address: Endpoint, wanted: Endpoint) -> bool:
    """Same host (written any way) and, unless ``wanted``'s port is 0, the same port."""
    return (not wanted[1] or address[1] == wanted[1]) and _canonical(address[0]) == _canonical(wanted[0])


def side_of(datagram: Datagram, customer: Endpoint | None, dialer: Endpoint | None, *,
            customer_relay: Endpoint | None = None, dialer_relay: Endpoint | None = None) -> Side | None:
    """Whose voice a datagram carries. rtpengine captures packets as it receives them, so the relay port a packet
    arrived on decides first (``*_relay``: rtpengine's own address facing each party); then the party's own address
    as the packet's source; last, a capture of packets *sent to* a party (other recorders) by the destination."""
    if customer_relay is not None and _matches(datagram.dst, customer_relay):
        return "customer"
    if dialer_relay is not None and _matches(datagram.dst, dialer_relay):
        return "operator"
    if customer is not None and _matches(datagram.src, customer):
        return "customer"
    if dialer is not None and _matches(datagram.src, dialer):
        return "operator"
    if customer is not None and _matches(datagram.dst, customer):
        return "operator"
    if dialer is not None and _matches(datagram.dst, dialer):
        return "customer"
    return None


def split_streams(datagrams: Iterable[Datagram], customer: Endpoint | None, dialer: Endpoint | None, *,
                  customer_relay: Endpoint | None = None,
                  dialer_relay: Endpoint | None = None) -> dict[Side, list[tuple[float, RtpPacket]]]:
    streams: dict[Side, list[tuple[float, RtpPacket]]] = {"customer": [], "operator": []}
    for datagram in datagrams:
        side = side_of(datagram, customer, dialer, customer_relay=customer_relay, dialer_relay=dialer_relay)
        if side is None:
            continue
        rtp = parse_rtp(datagram.payload)
        if rtp is not None:
            streams[side].append((datagram.at, rtp))
    return streams


def _unwrap(previous_ext: int, previous: int, value: int, bits: int) -> int:
    half, full = 1 << (bits - 1), 1 << bits
    return previous_ext + ((value - previous + half) % full - half)


@dataclasses.dataclass
class _Placed:
    arrival: float
    ext_seq: int
    ext_ts: int
    rtp: RtpPacket


def _source_packets(packets: list[tuple[float, RtpPacket]]) -> tuple[list[_Placed], int]:
    """One SSRC's packets in sequence order, duplicates dropped (with their count)."""
    placed: list[_Placed] = []
    seen: set[int] = set()
    duplicates = 0
    last_seq = last_ts = ext_seq = ext_ts = 0
    for index, (arrival, rtp) in enumerate(packets):
        if index == 0:
            ext_seq, ext_ts = rtp.seq, rtp.timestamp
        else:
            ext_seq = _unwrap(ext_seq, last_seq, rtp.seq, 16)
            ext_ts = _unwrap(ext_ts, last_ts, rtp.timestamp, 32)
        last_seq, last_ts = rtp.seq, rtp.timestamp
        if ext_seq in seen:
            duplicates += 1
            continue
        seen.add(ext_seq)
        placed.append(_Placed(arrival, ext_seq, ext_ts, rtp))
    placed.sort(key=lambda p: p.ext_seq)
    return placed, duplicates


def _segments(placed: list[_Placed]) -> Iterator[tuple[float, int, list[_Placed]]]:
    """``(anchor, base timestamp, packets)``: runs of packets whose timestamps agree with their arrivals; the
    anchor is the earliest arrival the run implies for its base timestamp."""
    if not placed:
        return
    base = placed[0].ext_ts
    run: list[_Placed] = []
    anchor = 0.0
    for p in placed:
        implied = p.arrival - (p.ext_ts - base) / RATE
        if run and abs(implied - anchor) > MAX_SKEW_S:
            yield anchor, base, run
            base, run = p.ext_ts, []
            implied = p.arrival
        anchor = implied if not run else min(anchor, implied)
        run.append(p)
    yield anchor, base, run


def lay_out(streams: dict[Side, list[tuple[float, RtpPacket]]], max_s: float) -> StereoAudio:
    """Both parties' packets on one timeline → :class:`StereoAudio`. Raises :class:`ConversionError` when there
    is no G.711 audio at all or the timeline would be longer than ``max_s``."""
    if not any(rtp.payload_type in G711 for packets in streams.values() for _, rtp in packets):
        raise ConversionError("no G.711 RTP (PCMU/PCMA) of the call's addresses in the capture")
    timed: list[tuple[int, float, int, bytes]] = []
    counts: dict[str, int] = {}
    duplicates = 0
    sides: tuple[Side, Side] = ("customer", "operator")
    for channel, side in enumerate(sides):
        by_source: dict[int, list[tuple[float, RtpPacket]]] = {}
        for arrival, rtp in streams.get(side, []):
            by_source.setdefault(rtp.ssrc, []).append((arrival, rtp))
        counts[side] = 0
        for packets in by_source.values():
            placed, dropped = _source_packets(packets)
            duplicates += dropped
            for anchor, base, run in _segments(placed):
                for p in run:
                    if p.rtp.payload_type in G711 and p.rtp.payload:
                        timed.append((channel, anchor + (p.ext_ts - base) / RATE, p.rtp.payload_type,
                                      p.rtp.payload))
                        counts[side] += 1
    if not timed:
        # G.711 packets were there, but every payload was empty (a broken or a signalling-only capture)
        raise ConversionError("the capture's G.711 RTP packets of the call's addresses carry no audio (empty payloads)")
    # sample 0 is the earliest moment any packet's audio belongs to
    start = min(at for _, at, _, _ in timed)
    limit = int(max_s * RATE)
    positions = [round((at - start) * RATE) for _, at, _, _ in timed]
    length = max(position + len(payload) for position, (_, _, _, payload) in zip(positions, timed, strict=True))
    if length > limit:
        raise ConversionError(f"the call's audio spans more than {max_s:.0f} s ({length / RATE:.0f} s)")
    samples = np.zeros((length, 2), dtype=np.int16)
    # decoded in bulk per payload type (one table lookup for all packets), then laid out packet by packet
    for payload_type in G711:
        chosen = [i for i, piece in enumerate(timed) if piece[2] == payload_type]
        if not chosen:
            continue
        pcm = np.frombuffer(decode_g711(payload_type, b"".join(timed[i][3] for i in chosen)), dtype="<i2")
        cursor = 0
        for i in chosen:
            channel, position, size = timed[i][0], positions[i], len(timed[i][3])
            samples[position:position + size, channel] = pcm[cursor:cursor + size]
            cursor += size
    return StereoAudio(samples, start, counts, duplicates)


def convert_pcap(path: Path, customer: Endpoint | None, dialer: Endpoint | None, *, max_s: float = 4 * 3600,
                 customer_relay: Endpoint | None = None, dialer_relay: Endpoint | None = None) -> StereoAudio:
    """A capture file → the call's stereo audio (see the module's docstring and :func:`side_of`)."""
    try:
        datagrams = list(read_datagrams(path))
    except OSError as err:
        raise ConversionError(f"cannot read the capture: {err}") from err
    return lay_out(split_streams(datagrams, customer, dialer, customer_relay=customer_relay,
                                 dialer_relay=dialer_relay), max_s)


def write_wav(path: Path, audio: StereoAudio) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio.samples.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples ``(n, channels)`` and the rate of a 16-bit WAV."""
    with wave.open(str(path), "rb") as src:
        channels, rate = src.getnchannels(), src.getframerate()
        data = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    return data.reshape(-1, channels), rate


#: ffmpeg's encoder and container per format, and the file suffix.
FORMATS: dict[str, tuple[list[str], str, str]] = {
    # the fastest libopus settings (60 ms frames, complexity 0): 10 minutes of a call in ~2.5 s of one core instead
    # of ~12 s at the default complexity, for a file ~10% larger (docs/recordings.md)
    "opus": (["-c:a", "libopus", "-application", "voip", "-compression_level", "0", "-frame_duration", "60",
              "-f", "ogg"], ".ogg", "audio/ogg"),
    "mp3": (["-c:a", "libmp3lame", "-f", "mp3"], ".mp3", "audio/mpeg"),
}


def encode(wav: Path, out: Path, fmt: str = "opus", bitrate_kbps: int = 24, *, timeout_s: float = 600) -> None:
    """The stereo WAV → ``out`` compressed by ffmpeg (Ogg Opus or MP3) at ``bitrate_kbps``."""
    if fmt not in FORMATS:
        raise ConversionError(f"unknown recording format {fmt!r}; known: {', '.join(FORMATS)}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConversionError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    codec, _, _ = FORMATS[fmt]
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav), *codec,
               "-b:a", f"{bitrate_kbps}k", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as err:
        raise ConversionError(f"ffmpeg did not finish within {timeout_s:.0f} s") from err
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()[-500:]
        raise ConversionError(f"ffmpeg failed ({done.returncode}): {message}")


# --- writing (synthetic captures for tests and benchmarks) --------------------------------------------------------


def rtp_bytes(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, *,
              marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc) + payload


class PcapWriter:
    """Writes a classic pcap (microseconds, little-endian) of UDP datagrams over IPv4, framed as Ethernet, Linux
    cooked or raw IP."""

    def __init__(self, stream: BinaryIO, linktype: int = LINKTYPE_ETHERNET) -> None:
        if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW):
            raise ValueError(f"link type {linktype} is not written (1, 101, 113)")
        self.stream = stream
        self.linktype = linktype
        stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))

    def udp(self, at: float, src: Endpoint, dst: Endpoint, payload: bytes) -> None:
        udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         ipaddress.IPv4Address(src[0]).packed, ipaddress.IPv4Address(dst[0]).packed)
        checksum = _ip_checksum(ip)
        ip = ip[:10] + struct.pack("!H", checksum) + ip[12:]
        if self.linktype == LINKTYPE_ETHERNET:
            frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
        elif self.linktype == LINKTYPE_LINUX_SLL:
            frame = struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", 0x0800) + ip + udp
        else:
            frame = ip + udp
        seconds = int(at)
        micros = min(round((at - seconds) * 1_000_000), 999_999)
        self.stream.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
