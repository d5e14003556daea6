"""Helpers of the rtpengine tests: free ports, a started rtpengine, plain RTP endpoints that count packets."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

from dialer.media.rtpengine import RtpEngineProcess


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_range() -> tuple[int, int]:
    """A random 200-port block in 40000–59999 (another test's rtpengine may hold an earlier one a moment longer)."""
    low = 40000 + random.randrange(100) * 200
    return low, low + 199


@asynccontextmanager
async def running_rtpengine(recording_dir: Path) -> AsyncIterator[RtpEngineProcess]:
    low, high = port_range()
    process = RtpEngineProcess(interface="127.0.0.1", ng_port=free_udp_port(), port_min=low, port_max=high,
                               recording_dir=recording_dir)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


def sdp(port: int, host: str = "127.0.0.1") -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=sendrecv\r\n").encode()


class RtpEndpoint(asyncio.DatagramProtocol):
    """A plain RTP party on 127.0.0.1: sends numbered PCMA packets with its own payload byte, counts what arrives."""

    def __init__(self, fill: int) -> None:
        self.fill = fill
        self.ssrc = random.getrandbits(32)
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    @classmethod
    async def open(cls, fill: int, port: int = 0) -> RtpEndpoint:
        endpoint = cls(fill)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: endpoint, local_addr=("127.0.0.1", port))
        return endpoint

    @classmethod
    async def for_sipp(cls, fill: int) -> RtpEndpoint:
        """An endpoint at a port SIPp may name as its media port: SIPp itself binds the next three (RTCP, video)."""
        for _ in range(200):
            low = random.randrange(20000, 30000, 4)
            try:
                for port in range(low + 1, low + 4):
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                        probe.bind(("127.0.0.1", port))
                return await cls.open(fill, low)
            except OSError:
                continue
        raise RuntimeError("no free block of four UDP ports")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)

    def send(self, seq: int, to: tuple[str, int]) -> None:
        assert self.transport is not None
        header = struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, self.ssrc)
        self.transport.sendto(header + bytes([self.fill]) * 160, to)

    def payloads_from(self, fill: int) -> int:
        return sum(1 for packet in self.received if len(packet) == 172 and packet[12] == fill)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def exchange(a: RtpEndpoint, a_to: tuple[str, int], b: RtpEndpoint, b_to: tuple[str, int], packets: int) -> None:
    """``packets`` packets each way at 20 ms, then a moment for the last ones to arrive."""
    for seq in range(packets):
        a.send(seq, a_to)
        b.send(seq, b_to)
        await asyncio.sleep(0.02)
    for _ in range(100):
        if a.payloads_from(b.fill) >= packets and b.payloads_from(a.fill) >= packets:
            break
        await asyncio.sleep(0.02)


def read_pcap(path: Path) -> list[tuple[tuple[str, int], tuple[str, int], bytes]]:
    """(source, destination, UDP payload) of each IPv4 packet of a raw-IP (link type 101) capture."""
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert magic == 0xA1B2C3D4 and linktype == 101, (hex(magic), linktype)
    out = []
    position = 24
    while position + 16 <= len(data):
        length = struct.unpack_from("<I", data, position + 8)[0]
        frame = data[position + 16:position + 16 + length]
        position += 16 + length
        header = (frame[0] & 0x0F) * 4
        src = socket.inet_ntoa(frame[12:16]), struct.unpack_from("!H", frame, header)[0]
        dst = socket.inet_ntoa(frame[16:20]), struct.unpack_from("!H", frame, header + 2)[0]
        out.append((src, dst, frame[header + 8:]))
    return out
