"""rtpengine's ``ng`` control protocol: bencode and an asyncio UDP client.

A message is ``<cookie> <bencoded dictionary>`` in one UDP datagram; the reply carries the same cookie
(rtpengine's ``docs/ng_control_protocol.md``). Every request has a ``command``; every reply a ``result`` —
``ok`` (optionally with a ``warning``), ``pong`` for ``ping``, or ``error`` with an ``error-reason``.

:class:`NgClient` keeps many requests in flight on one socket: each gets a fresh cookie, is resent on a timer of the
injected :class:`~dialer.core.clock.Clock` until its reply arrives (rtpengine remembers cookies for a while and
answers a retransmission with the cached reply, so a resent ``offer`` is not applied twice), and fails with
:class:`NgTimeout` after its last try. A reply whose cookie is unknown (a duplicate of one already answered, or one
arriving after its request gave up) is dropped. ``"result": "error"`` raises :class:`NgError` with the reason.

Bencode (BitTorrent's format, which rtpengine speaks natively): integers ``i42e``, byte strings ``4:spam``, lists
``l…e`` and dictionaries ``d…e`` with byte-string keys, written in sorted key order. ``str`` is encoded as UTF-8;
:func:`bdecode` returns ``bytes`` for every string (``NgClient`` decodes replies' strings to ``str`` where they are
valid UTF-8, so an SDP comes back as text).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dialer.core.clock import Cancellable, Clock, SystemClock

__all__ = ["BencodeError", "NgClient", "NgError", "NgTimeout", "Value", "bdecode", "bencode", "parse_ng_url"]

log = logging.getLogger(__name__)

#: What bencode carries: ``int``, ``bytes``/``str``, lists of values and dictionaries with string keys.
Value = Any


class BencodeError(ValueError):
    """Malformed bencode, or a value bencode cannot carry."""


class NgError(Exception):
    """rtpengine answered ``"result": "error"``; ``reason`` is its ``error-reason``."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"rtpengine refused {command!r}: {reason}")
        self.command = command
        self.reason = reason


class NgTimeout(NgError):
    """No reply from rtpengine after every retransmission."""

    def __init__(self, command: str, tries: int, address: tuple[str, int]) -> None:
        super().__init__(command, f"no reply from {address[0]}:{address[1]} after {tries} tries")


# --- bencode ---------------------------------------------------------------------------------------------------


def bencode(value: Value) -> bytes:
    """``value`` in bencode. Dictionary keys must be ``str`` or ``bytes``; ``bool`` and ``float`` are refused (the
    format has neither)."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Value, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise BencodeError("bencode has no booleans: send 'yes'/'no' or 1/0")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, str):
        raw = value.encode()
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, Mapping):
        items: list[tuple[bytes, Value]] = []
        for key, item in value.items():
            if isinstance(key, str):
                items.append((key.encode(), item))
            elif isinstance(key, bytes):
                items.append((key, item))
            else:
                raise BencodeError(f"dictionary key {key!r} is not a string")
        items.sort(key=lambda kv: kv[0])
        for (a, _), (b, _) in itertools.pairwise(items):
            if a == b:
                raise BencodeError(f"dictionary key {a!r} twice")
        out.append(b"d")
        for key, item in items:
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Value:
    """The value ``data`` holds (strings as ``bytes``, dictionary keys as ``str`` when UTF-8, else ``bytes``); the
    whole input must be one value. Unsorted dictionary keys are accepted (rtpengine does not sort its own)."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


_MAX_DEPTH = 64
_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")


def _decode(data: bytes, pos: int, depth: int) -> tuple[Value, int]:
    if depth > _MAX_DEPTH:
        raise BencodeError("nested too deeply")
    if pos >= len(data):
        raise BencodeError("unexpected end of data")
    head = data[pos:pos + 1]
    if head == b"i":
        end = data.find(b"e", pos + 1)
        if end < 0:
            raise BencodeError(f"unterminated integer at offset {pos}")
        digits = data[pos + 1:end]
        if _INTEGER.fullmatch(digits) is None:
            raise BencodeError(f"bad integer {digits!r} at offset {pos}")
        return int(digits), end + 1
    if head.isdigit():
        colon = data.find(b":", pos)
        if colon < 0 or not data[pos:colon].isdigit():
            raise BencodeError(f"bad string length at offset {pos}")
        length = int(data[pos:colon])
        start = colon + 1
        if start + length > len(data):
            raise BencodeError(f"string at offset {pos} runs past the end")
        return data[start:start + length], start + length
    if head == b"l":
        items: list[Value] = []
        pos += 1
        while data[pos:pos + 1] != b"e":
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos + 1
    if head == b"d":
        result: dict[str | bytes, Value] = {}
        pos += 1
        while data[pos:pos + 1] != b"e":
            if not data[pos:pos + 1].isdigit():
                raise BencodeError(f"dictionary key at offset {pos} is not a string")
            raw_key, pos = _decode(data, pos, depth + 1)
            key: str | bytes
            try:
                key = raw_key.decode()
            except UnicodeDecodeError:
                key = raw_key
            result[key], pos = _decode(data, pos, depth + 1)
        return result, pos + 1
    raise BencodeError(f"unexpected byte {head!r} at offset {pos}")


def _texts(value: Value) -> Value:
    """Byte strings decoded to ``str`` where they are UTF-8 (replies are text: SDP, tags, reasons)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [_texts(v) for v in value]
    if isinstance(value, dict):
        return {k: _texts(v) for k, v in value.items()}
    return value


# --- the client ------------------------------------------------------------------------------------------------


def parse_ng_url(url: str) -> tuple[str, int]:
    """``udp:HOST:PORT``, ``udp://HOST:PORT`` or ``HOST:PORT`` (IPv6 in brackets) → (host, port)."""
    rest = url.strip()
    for prefix in ("udp://", "udp:"):
        if rest.lower().startswith(prefix):
            rest = rest[len(prefix):]
            break
    if rest.startswith("["):
        host, sep, port_text = rest[1:].partition("]:")
    else:
        host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"rtpengine ng address {url!r}: expected udp:HOST:PORT, e.g. udp:127.0.0.1:2223")
    return host, int(port_text)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while rtpengine (re)starts: the retransmission timer carries on
        log.debug("ng socket error: %s", exc)


class _Pending:
    __slots__ = ("command", "future", "packet", "timer", "tries")

    def __init__(self, command: str, packet: bytes, future: asyncio.Future[dict[str, Value]]) -> None:
        self.command = command
        self.packet = packet
        self.future = future
        self.tries = 0
        self.timer: Cancellable | None = None


class NgClient:
    """An ng client on one UDP socket; ``await client.request({"command": ...})`` → the reply dictionary.

    ``retransmit_s`` is the first wait for a reply, doubled after each try (``tries`` in all; defaults: 0.5 s, 4
    tries → gives up after 7.5 s). Safe for any number of concurrent requests.
    """

    def __init__(self, host: str, port: int, *, clock: Clock | None = None, retransmit_s: float = 0.5,
                 tries: int = 4) -> None:
        if tries < 1 or retransmit_s <= 0:
            raise ValueError("tries must be >= 1 and retransmit_s > 0")
        self.address = (host, port)
        self.clock: Clock = clock or SystemClock()
        self.retransmit_s = retransmit_s
        self.tries = tries
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[bytes, _Pending] = {}
        self._prefix = os.urandom(4).hex().encode()
        self._counter = itertools.count(1)
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        async with self._opening:
            if self._transport is not None:
                return
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), remote_addr=self.address)
            self._transport = transport

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        for pending in list(self._pending.values()):
            if pending.timer is not None:
                pending.timer.cancel()
            if not pending.future.done():
                pending.future.set_exception(NgError(pending.command, "the ng client was closed"))
        self._pending.clear()

    async def __aenter__(self) -> NgClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def request(self, message: Mapping[str, Value]) -> dict[str, Value]:
        """Send ``message`` (it must name its ``command``) and return rtpengine's reply with strings as ``str``.
        Raises :class:`NgError` on ``"result": "error"``, :class:`NgTimeout` when no reply comes."""
        command = message.get("command")
        if not isinstance(command, str) or not command:
            raise ValueError("an ng message needs a 'command'")
        if self._transport is None:
            await self.open()
        cookie = self._prefix + b"_%d" % next(self._counter)
        future: asyncio.Future[dict[str, Value]] = asyncio.get_running_loop().create_future()
        pending = _Pending(command, cookie + b" " + bencode(message), future)
        self._pending[cookie] = pending
        self._send(cookie)
        try:
            reply = await future
        finally:
            done = self._pending.pop(cookie, None)
            if done is not None and done.timer is not None:
                done.timer.cancel()
        result = reply.get("result")
        if result == "error":
            raise NgError(command, str(reply.get("error-reason") or "no reason given"))
        if result not in ("ok", "pong"):
            raise NgError(command, f"unexpected result {result!r}")
        if "warning" in reply:
            log.info("rtpengine %s: warning %s", command, reply["warning"])
        return reply

    async def ping(self) -> None:
        reply = await self.request({"command": "ping"})
        if reply.get("result") != "pong":
            raise NgError("ping", f"answered {reply.get('result')!r} instead of 'pong'")

    def _send(self, cookie: bytes) -> None:
        pending = self._pending.get(cookie)
        if pending is None or pending.future.done():
            return
        if pending.tries >= self.tries:
            pending.future.set_exception(NgTimeout(pending.command, pending.tries, self.address))
            return
        wait = self.retransmit_s * (2 ** pending.tries)
        pending.tries += 1
        if self._transport is None:
            pending.future.set_exception(NgError(pending.command, "the ng client is closed"))
            return
        if pending.tries > 1:
            log.debug("ng %s: no reply, try %d", pending.command, pending.tries)
        self._transport.sendto(pending.packet)
        pending.timer = self.clock.call_later(wait, self._send, cookie)

    def _received(self, data: bytes) -> None:
        cookie, sep, body = data.partition(b" ")
        pending = self._pending.get(cookie)
        if not sep or pending is None or pending.future.done():
            return  # a duplicate, a late reply to a request that gave up, or garbage
        try:
            reply = bdecode(body)
        except BencodeError as err:
            log.warning("rtpengine sent a malformed reply to %s: %s", pending.command, err)
            return
        if not isinstance(reply, dict):
            log.warning("rtpengine's reply to %s is no dictionary", pending.command)
            return
        if pending.timer is not None:
            pending.timer.cancel()
        pending.future.set_result(_texts(reply))
