"""Hold audio: G.711 A-law / µ-law encoding with our own tables, a small WAV reader, a paced RTP sender and a tap on
the RTP that arrives.

``audioop`` is gone from Python 3.13, so the encoders follow ITU-T G.711 directly (the segment search of
the classic Sun reference implementation); 64 Ki-entry tables are built on first use and a file is
encoded once per codec and cached. The sender emits one 20 ms packet (160 samples at 8 kHz) per tick on
an absolute schedule, so timer jitter does not accumulate into drift.

Receiving (answering-machine detection, #16 §3): :meth:`RtpPorts.listen` hands the payload of every RTP packet
arriving on a port (from one remote address, since calls share ports) to a callback, and :func:`decode_g711` turns a
PCMU/PCMA payload into 16-bit PCM with numpy lookup tables (``audioop`` is deprecated since 3.11 and gone in 3.13).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dialer.core.clock import Cancellable, Clock, SystemClock

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
PT_PCMU = 0
PT_PCMA = 8
CODECS = {PT_PCMU: "PCMU", PT_PCMA: "PCMA"}

_SEG_END = (0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _segment(value: int, table: Sequence[int]) -> int:
    for i, end in enumerate(table):
        if value <= end:
            return i
    return len(table)


def linear_to_ulaw(sample: int) -> int:
    """One 16-bit signed sample to a µ-law byte (G.711 §3, with the bias of 0x84)."""
    if sample < 0:
        sample, mask = -sample, 0x7F
    else:
        mask = 0xFF
    sample = min(sample, _ULAW_CLIP) + _ULAW_BIAS
    seg = _segment(sample, _SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((sample >> (seg + 3)) & 0x0F)) ^ mask


def linear_to_alaw(sample: int) -> int:
    """One 16-bit signed sample to an A-law byte (even bits inverted, G.711 §2)."""
    if sample >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        sample = -sample - 1
    seg = _segment(sample, (0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF))
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((sample >> 4) if seg < 2 else (sample >> (seg + 3))) & 0x0F
    return aval ^ mask


def ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    t = ((byte & 0x0F) << 3) + _ULAW_BIAS
    t <<= (byte & 0x70) >> 4
    return (_ULAW_BIAS - t) if byte & 0x80 else (t - _ULAW_BIAS)


def alaw_to_linear(byte: int) -> int:
    byte ^= 0x55
    t = (byte & 0x0F) << 4
    seg = (byte & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if byte & 0x80 else -t


@functools.cache
def encode_table(payload_type: int) -> bytes:
    """Index ``sample & 0xFFFF`` → encoded byte, for every 16-bit sample."""
    encode = linear_to_ulaw if payload_type == PT_PCMU else linear_to_alaw
    return bytes(encode(i - 0x10000 if i >= 0x8000 else i) for i in range(0x10000))


@functools.cache
def decode_table(payload_type: int) -> tuple[int, ...]:
    decode = ulaw_to_linear if payload_type == PT_PCMU else alaw_to_linear
    return tuple(decode(b) for b in range(256))


@functools.cache
def _decode_array(payload_type: int) -> np.ndarray:
    return np.array(decode_table(payload_type), dtype="<i2")


@functools.cache
def _encode_array(payload_type: int) -> np.ndarray:
    return np.frombuffer(encode_table(payload_type), dtype=np.uint8)


def _check_g711(payload_type: int) -> None:
    if payload_type not in CODECS:
        raise ValueError(f"payload type {payload_type} is not G.711 (PCMU=0, PCMA=8)")


def decode_g711(payload_type: int, payload: bytes) -> bytes:
    """A PCMU (0) or PCMA (8) payload → 16-bit little-endian PCM, two bytes per payload byte."""
    _check_g711(payload_type)
    return _decode_array(payload_type)[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def encode_g711(payload_type: int, pcm: bytes) -> bytes:
    """16-bit little-endian PCM → a PCMU (0) or PCMA (8) payload (an odd trailing byte is dropped)."""
    _check_g711(payload_type)
    samples = np.frombuffer(pcm[:len(pcm) & ~1], dtype="<i2").astype(np.uint16)
    return _encode_array(payload_type)[samples].tobytes()


def encode(samples: Sequence[int], payload_type: int) -> bytes:
    table = encode_table(payload_type)
    return bytes(table[s & 0xFFFF] for s in samples)


def decode(data: bytes, payload_type: int) -> array[int]:
    table = decode_table(payload_type)
    return array("h", (table[b] for b in data))


# --- WAV ------------------------------------------------------------------------------------------------------
class AudioError(ValueError):
    """A file that is not a WAV we can play."""


@dataclass(frozen=True, slots=True)
class Wav:
    rate: int
    samples: array[int]  # mono, 16-bit signed


def read_wav(data: bytes) -> Wav:
    """PCM 8/16/24/32-bit, IEEE float, A-law or µ-law WAV (any channels, any rate) → mono 16-bit."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    pos, fmt, payload = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunk = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = chunk
        elif cid == b"data":
            payload = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None or len(fmt) < 16:
        raise AudioError("WAV without fmt or data chunk")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels < 1 or rate < 1:
        raise AudioError("WAV with no channels or rate")
    frames = len(payload) // block if block else 0
    mono: list[int]
    if tag in (6, 7) and bits == 8:
        table = decode_table(PT_PCMA if tag == 6 else PT_PCMU)
        values = [table[b] for b in payload[:frames * block]]
    elif tag == 1 and bits == 8:
        values = [(b - 128) << 8 for b in payload[:frames * block]]
    elif tag == 1 and bits == 16:
        pcm16 = array("h")
        pcm16.frombytes(payload[:frames * block])
        if sys.byteorder == "big":
            pcm16.byteswap()
        values = list(pcm16)
    elif tag == 1 and bits in (24, 32):
        width = bits // 8
        values = [int.from_bytes(payload[i + width - 2:i + width], "little", signed=True)
                  for i in range(0, frames * block, width)]
    elif tag == 3 and bits == 32:
        floats = struct.unpack(f"<{frames * channels}f", payload[:frames * block])
        values = [max(-32768, min(32767, int(f * 32767))) for f in floats]
    else:
        raise AudioError(f"unsupported WAV encoding (format {tag}, {bits} bits)")
    if channels == 1:
        mono = values
    else:
        mono = [sum(values[i:i + channels]) // channels for i in range(0, len(values), channels)]
    return Wav(rate, array("h", mono))


def resample(samples: Sequence[int], rate: int, target: int = SAMPLE_RATE) -> array[int]:
    """Linear interpolation; good enough for music on hold."""
    if rate == target or not samples:
        return array("h", samples)
    n = int(len(samples) * target / rate)
    step = rate / target
    out = array("h", bytes(2 * n))
    last = len(samples) - 1
    for i in range(n):
        x = i * step
        j = int(x)
        frac = x - j
        a = samples[j]
        b = samples[j + 1] if j < last else a
        out[i] = int(a + (b - a) * frac)
    return out


@functools.lru_cache(maxsize=32)
def load_audio(path: str, payload_type: int, mtime: float) -> bytes:
    """A WAV file encoded for ``payload_type``, cached per file version (``mtime``)."""
    del mtime
    with open(path, "rb") as fh:
        wav = read_wav(fh.read())
    samples = resample(wav.samples, wav.rate)
    if not samples:
        raise AudioError(f"{path} holds no audio")
    return encode(samples, payload_type)


# --- RTP ------------------------------------------------------------------------------------------------------
PayloadHandler = Callable[[int, bytes], None]


@dataclass(eq=False, slots=True)
class _Listener:
    remote: tuple[str, int] | None
    on_payload: PayloadHandler


def rtp_payload(packet: bytes) -> tuple[int, bytes] | None:
    """(payload type, payload) of an RTP packet (RFC 3550 §5.1: CSRCs, header extension and padding skipped);
    None for what is not RTP (a wrong version, too short, RTCP multiplexed on the port)."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    payload_type = packet[1] & 0x7F
    if 72 <= payload_type <= 76:  # RTCP packet types 200–204 on a multiplexed port (RFC 5761 §4)
        return None
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:  # header extension: 4 bytes of profile and length, then length words
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(packet[start + 2:start + 4], "big")
    end = len(packet)
    if packet[0] & 0x20 and end > start:  # padding: its last byte counts the padding bytes
        end -= packet[-1]
    if end < start:
        return None
    return payload_type, packet[start:end]


class _Receiver(asyncio.DatagramProtocol):
    """What arrives on one of our ports goes to that port's listeners (dropped when there are none)."""

    def __init__(self, listeners: list[_Listener]) -> None:
        self.listeners = listeners

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not self.listeners:
            return
        parsed = rtp_payload(data)
        if parsed is None:
            return
        source = (addr[0], addr[1])
        for listener in tuple(self.listeners):
            if listener.remote is not None and listener.remote != source:
                continue
            try:
                listener.on_payload(*parsed)
            except Exception:  # one listener's bug must not starve the others on a shared port
                log.exception("RTP listener on %s failed", source)


class RtpPorts:
    """Even ports of the configured range, handed out round robin; each bound once, on first use, and shared
    by the calls that got it. A port sends; what arrives goes to the port's listeners (:meth:`listen`) or is
    dropped."""

    def __init__(self, host: str, low: int, high: int) -> None:
        self.host = host
        first = low + (low & 1)
        self._ports = list(range(first, high + 1, 2)) or [first]
        self._next = 0
        self._sockets: dict[int, asyncio.DatagramTransport] = {}
        self._listeners: dict[int, list[_Listener]] = {}

    def listen(self, port: int, remote: tuple[str, int] | None,
               on_payload: PayloadHandler) -> Callable[[], None]:
        """Call ``on_payload(payload_type, payload)`` for each RTP packet arriving on ``port`` — only from
        ``remote`` (the IP address and port the peer's SDP gave) when it is given, from anyone with None.

        Returns the unsubscribe (calling it twice is harmless). Packets are read once the port is bound by
        :meth:`socket` (the call's set-up does that); a listener registered before then gets them from then on.
        ``on_payload`` runs in the event loop's datagram callback: it must be quick and must not block.
        """
        listener = _Listener(remote, on_payload)
        listeners = self._listeners.setdefault(port, [])
        listeners.append(listener)

        def unsubscribe() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return unsubscribe

    def allocate(self) -> int:
        port = self._ports[self._next]
        self._next = (self._next + 1) % len(self._ports)
        return port

    async def socket(self, port: int) -> asyncio.DatagramTransport:
        sock = self._sockets.get(port)
        if sock is None or sock.is_closing():
            loop = asyncio.get_running_loop()
            listeners = self._listeners.setdefault(port, [])
            sock, _ = await loop.create_datagram_endpoint(lambda: _Receiver(listeners),
                                                          local_addr=(self.host, port))
            self._sockets[port] = sock
        return sock

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


class RtpSender:
    """Loops ``audio`` (already G.711-encoded) to ``dest`` as RTP, one packet each 20 ms."""

    def __init__(self, sock: asyncio.DatagramTransport, dest: tuple[str, int], payload_type: int,
                 audio: bytes, *, clock: Clock | None = None) -> None:
        self.sock = sock
        self.dest = dest
        self.payload_type = payload_type
        self.audio = audio
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.sent = 0
        self._offset = 0
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._handle: Cancellable | None = None
        self._start = 0.0
        self._running = False

    def start(self) -> None:
        self._running = True
        self._start = self.clock.now()
        self._tick()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def _payload(self) -> bytes:
        audio, off = self.audio, self._offset
        chunk = audio[off:off + FRAME_SAMPLES]
        while len(chunk) < FRAME_SAMPLES:  # wrap around to loop the file
            chunk += audio[:FRAME_SAMPLES - len(chunk)]
        self._offset = (off + FRAME_SAMPLES) % len(audio)
        return chunk

    def _tick(self) -> None:
        if not self._running or self.sock.is_closing():
            return
        marker = 0x80 if self.sent == 0 else 0
        header = struct.pack("!BBHII", 0x80, marker | self.payload_type, self.seq, self.timestamp, self.ssrc)
        self.sock.sendto(header + self._payload(), self.dest)
        self.sent += 1
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        due = self._start + self.sent * FRAME_S
        now = self.clock.now()
        if due < now - 1.0:  # the loop stalled for long: restart the schedule instead of bursting
            self._start = now - self.sent * FRAME_S
            due = now
        self._handle = self.clock.call_later(due - now, self._tick)
