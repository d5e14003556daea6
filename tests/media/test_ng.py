"""The ng client: bencode, and requests against a real rtpengine (directly and through a lossy UDP hop)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from dialer.core.clock import VirtualClock
from dialer.media.ng import BencodeError, NgClient, NgError, NgTimeout, bdecode, bencode, parse_ng_url
from tests.media.rtpengine_support import free_udp_port, running_rtpengine, sdp

# --- bencode ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"i0e"), (42, b"i42e"), (-7, b"i-7e"), (b"spam", b"4:spam"), ("", b"0:"),
    ("тон", b"6:\xd1\x82\xd0\xbe\xd0\xbd"),
    ([1, "a", [b"b"]], b"li1e1:al1:bee"), ({}, b"de"),
    ({"b": 1, "a": {"c": []}}, b"d1:ad1:clee1:bi1ee"),
])
def test_bencode_encodes(value: object, encoded: bytes) -> None:
    assert bencode(value) == encoded


def test_bencode_sorts_keys_as_bytes_and_round_trips() -> None:
    message = {"sdp": "v=0\r\n", "command": "offer", "replace": ["origin", "session-connection"], "n": 10**20,
               "Z": -1}
    raw = bencode(message)
    assert raw.startswith(b"d1:Zi-1e7:command5:offer1:ni100000000000000000000e")
    decoded = bdecode(raw)
    assert decoded == {"Z": -1, "command": b"offer", "n": 10**20, "replace": [b"origin", b"session-connection"],
                       "sdp": b"v=0\r\n"}


def test_bdecode_accepts_unsorted_keys_and_binary() -> None:
    assert bdecode(b"d1:bi2e1:ai1e3:bin2:\xff\x00e") == {"b": 2, "a": 1, "bin": b"\xff\x00"}


@pytest.mark.parametrize("bad", [b"", b"i12", b"i-0e", b"i03e", b"ie", b"i--1e", b"5:abc", b"l1:a", b"di1ei2ee",
                                 b"x", b"i1ei2e", b"d1:ae", b"-1:a"])
def test_bdecode_refuses_malformed(bad: bytes) -> None:
    with pytest.raises(BencodeError):
        bdecode(bad)


@pytest.mark.parametrize("bad", [True, 1.5, {1: 2}, None, {"a": 1, b"a": 2}])
def test_bencode_refuses_what_it_cannot_carry(bad: object) -> None:
    with pytest.raises(BencodeError):
        bencode(bad)


def test_parse_ng_url() -> None:
    assert parse_ng_url("udp:10.0.0.5:2223") == ("10.0.0.5", 2223)
    assert parse_ng_url("udp://[::1]:2223") == ("::1", 2223)
    assert parse_ng_url("rtp.example:22222") == ("rtp.example", 22222)
    with pytest.raises(ValueError, match="udp:HOST:PORT"):
        parse_ng_url("udp:10.0.0.5")


# --- against rtpengine -----------------------------------------------------------------------------------------


class LossyHop(asyncio.DatagramProtocol):
    """A UDP hop in front of rtpengine that drops the first copy of every request and sends every reply twice."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.seen: set[bytes] = set()
        self.dropped = 0
        self.client: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.upstream is not None
        self.client = addr
        cookie = data.partition(b" ")[0]
        if cookie not in self.seen:
            self.seen.add(cookie)
            self.dropped += 1
            return
        self.upstream.sendto(data)

    def reply(self, data: bytes) -> None:
        assert self.transport is not None and self.client is not None
        self.transport.sendto(data, self.client)
        self.transport.sendto(data, self.client)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, hop: LossyHop) -> None:
        self.hop = hop

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.hop.reply(data)


async def test_ng_commands_against_rtpengine(tmp_path: Path) -> None:
    async with running_rtpengine(tmp_path / "rec") as engine:
        client = engine.client
        await client.ping()
        offer = await client.request({"command": "offer", "call-id": "ng-1", "from-tag": "a", "sdp": sdp(4000),
                                      "replace": ["origin", "session-connection"], "ICE": "remove"})
        assert "m=audio " in offer["sdp"] and " 4000 " not in offer["sdp"]
        answer = await client.request({"command": "answer", "call-id": "ng-1", "from-tag": "a", "to-tag": "b",
                                       "sdp": sdp(4002)})
        assert "m=audio " in answer["sdp"]
        # many requests in flight on the one socket, each matched to its own reply
        replies = await asyncio.gather(*(client.request({"command": "query", "call-id": "ng-1"})
                                         for _ in range(50)))
        assert all(set(r["tags"]) == {"a", "b"} for r in replies)
        assert client.in_flight == 0
        deleted = await client.request({"command": "delete", "call-id": "ng-1", "from-tag": "a"})
        assert deleted["result"] == "ok"
        with pytest.raises(NgError, match="Unknown call-id") as refused:
            await client.request({"command": "query", "call-id": "ng-1"})
        assert refused.value.reason == "Unknown call-id"
        with pytest.raises(NgError, match="Unrecognized command"):
            await client.request({"command": "no such command"})


async def until_dropped(hop: LossyHop, count: int) -> None:
    for _ in range(250):  # every first copy reaches the hop (and is dropped) in real time
        if hop.dropped >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{hop.dropped} requests reached the hop, expected {count}")


async def test_retransmission_on_the_injected_clock_and_duplicates_ignored(tmp_path: Path) -> None:
    async with running_rtpengine(tmp_path / "rec") as engine:
        loop = asyncio.get_running_loop()
        hop = LossyHop(("127.0.0.1", engine.ng_port))
        hop_transport, _ = await loop.create_datagram_endpoint(lambda: hop, local_addr=("127.0.0.1", 0))
        upstream, _ = await loop.create_datagram_endpoint(lambda: _Upstream(hop),
                                                          remote_addr=("127.0.0.1", engine.ng_port))
        hop.upstream = upstream
        clock = VirtualClock()
        client = NgClient("127.0.0.1", hop_transport.get_extra_info("sockname")[1], clock=clock, retransmit_s=1.0)
        try:
            pings = [asyncio.create_task(client.ping()) for _ in range(5)]
            await until_dropped(hop, 5)
            assert not any(p.done() for p in pings)
            clock.advance(1.0)  # the retransmission timer fires on the clock, not on the wall
            await asyncio.wait_for(asyncio.gather(*pings), 10)
            assert client.in_flight == 0
            await asyncio.sleep(0.1)  # the duplicated replies arrive after their requests were answered …
            late = asyncio.create_task(client.ping())
            await until_dropped(hop, 6)
            await asyncio.sleep(0.1)
            assert not late.done()  # … and answer nothing else
            clock.advance(1.0)
            await asyncio.wait_for(late, 10)
        finally:
            await client.close()
            hop_transport.close()
            upstream.close()


async def test_timeout_after_the_last_try() -> None:
    clock = VirtualClock()
    client = NgClient("127.0.0.1", free_udp_port(), clock=clock, retransmit_s=0.5, tries=3)
    try:
        request = asyncio.create_task(client.request({"command": "ping"}))
        await asyncio.sleep(0.05)
        clock.advance(0.5)
        await asyncio.sleep(0.01)
        clock.advance(1.0)
        await asyncio.sleep(0.01)
        assert not request.done()
        clock.advance(2.0)
        with pytest.raises(NgTimeout, match="after 3 tries"):
            await asyncio.wait_for(request, 5)
        assert client.in_flight == 0
    finally:
        await client.close()
