"""SIP transports: one UDP socket, a TCP listener and a TLS listener (RFC 3261 §26, Python's ``ssl`` on asyncio
streams) with their connections, behind one ``send``.

Messages are parsed here and handed to one callback with the :class:`Peer` they came from. Over TCP and TLS a
message to a peer reuses the connection the peer opened (a phone registered over TLS gets its INVITEs on that
connection) or opens one (trunks configured for TCP or TLS). A TLS connection we open checks the certificate with
the context and the name :meth:`Transport.tls_peer` registered for that peer (a trunk: its host name); other peers
(a phone whose own connection is gone) get :attr:`Transport.tls_fallback`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from dialer.telephony.sip.message import Message, ParseError, frame_length

log = logging.getLogger(__name__)

MAX_STREAM_BUFFER = 256 * 1024


@dataclass(frozen=True, slots=True)
class Peer:
    transport: str  # "udp" | "tcp" | "tls"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


Handler = Callable[[Message, Peer], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: Transport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= 4 and not data.strip():
            return  # NAT keep-alive
        self.owner._received(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction timers report the missing answer
        log.debug("UDP error: %s", exc)


class _Stream(asyncio.Protocol):
    def __init__(self, owner: Transport, peer: Peer | None = None, kind: str = "tcp") -> None:
        self.owner = owner
        self.peer = peer
        self.kind = kind
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.peer is None:
            host, port = transport.get_extra_info("peername")[:2]
            self.peer = Peer(self.kind, host, port)
        self.owner._streams[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            while self.buffer[:2] == b"\r\n":
                del self.buffer[:2]
            try:
                size = frame_length(self.buffer)
            except ValueError:
                log.warning("bad stream framing from %s, closing", self.peer)
                self.close()
                return
            if size is None:
                if len(self.buffer) > MAX_STREAM_BUFFER:
                    self.close()
                return
            data_msg = bytes(self.buffer[:size])
            del self.buffer[:size]
            assert self.peer is not None
            self.owner._received(data_msg, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.owner._streams.get(self.peer) is self:
            del self.owner._streams[self.peer]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Transport:
    """UDP (always) and TCP (optional) on one host and port; TLS (optional) on a port of its own."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.host = "0.0.0.0"
        self.port = 0
        #: The TLS listener's port (0: none).
        self.tls_port = 0
        #: Client context for TLS connections to peers nobody registered (certificate checks off: such a peer is a
        #: phone reached at its Contact address, which no certificate names).
        self.tls_fallback: ssl.SSLContext = _unverified_client()
        self._tls_peers: dict[Peer, tuple[ssl.SSLContext, str | None]] = {}
        #: Why the last connection to a peer could not be opened (a TLS certificate refused, a port closed).
        self.last_error: dict[Peer, str] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        self._streams: dict[Peer, _Stream] = {}
        self._connecting: dict[Peer, asyncio.Task[None]] = {}
        self._pending: dict[Peer, list[bytes]] = {}

    def tls_peer(self, peer: Peer, context: ssl.SSLContext, server_name: str | None) -> None:
        """Connections opened to ``peer`` use ``context`` and check the certificate for ``server_name`` (SNI too)."""
        self._tls_peers[peer] = (context, server_name)

    async def start(self, host: str, port: int, *, tcp: bool = True, buffer_size: int = 4 * 1024 * 1024,
                    tls: ssl.SSLContext | None = None, tls_port: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, buffer_size)
        sock.bind((host, port))
        sock.setblocking(False)
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock)
        self.host, self.port = sock.getsockname()[:2]
        if tcp:
            try:
                self._server = await loop.create_server(lambda: _Stream(self), host, self.port, reuse_address=True)
            except OSError as err:
                log.warning("SIP over TCP not available on %s:%s: %s", host, self.port, err)
        if tls is not None and tls_port is not None:
            self._tls_server = await loop.create_server(lambda: _Stream(self, kind="tls"), host, tls_port, ssl=tls,
                                                        reuse_address=True, ssl_handshake_timeout=10.0)
            self.tls_port = self._tls_server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in self._connecting.values():
            task.cancel()
        for stream in list(self._streams.values()):
            stream.close()
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
                with contextlib.suppress(Exception):
                    await server.wait_closed()
        if self._udp is not None:
            self._udp.close()

    def _received(self, data: bytes, peer: Peer) -> None:
        try:
            msg = Message.parse(data)
        except (ParseError, ValueError) as err:
            log.debug("unparseable message from %s: %s", peer, err)
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("<- %s\n%s", peer, data.decode("utf-8", "replace"))
        try:
            self.handler(msg, peer)
        except Exception:
            log.exception("error handling %s from %s", msg.summary, peer)

    def connected(self, peer: Peer) -> bool:
        """Whether a TCP connection with ``peer`` is open now."""
        stream = self._streams.get(peer)
        return stream is not None and stream.transport is not None and not stream.transport.is_closing()

    def send(self, msg: Message, peer: Peer) -> None:
        data = msg.encode()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("-> %s\n%s", peer, data.decode("utf-8", "replace"))
        if peer.transport == "udp":
            if self._udp is not None and not self._udp.is_closing():
                self._udp.sendto(data, (peer.host, peer.port))
            return
        stream = self._streams.get(peer)
        if stream is not None and stream.transport is not None:
            stream.transport.write(data)
            return
        self._pending.setdefault(peer, []).append(data)
        if peer not in self._connecting:
            self._connecting[peer] = asyncio.get_running_loop().create_task(self._connect(peer))

    async def _connect(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            if peer.transport == "tls":
                context, name = self._tls_peers.get(peer, (self.tls_fallback, None))
                _, proto = await loop.create_connection(lambda: _Stream(self, peer, "tls"), peer.host, peer.port,
                                                        ssl=context, server_hostname=name or peer.host,
                                                        ssl_handshake_timeout=10.0)
            else:
                _, proto = await loop.create_connection(lambda: _Stream(self, peer), peer.host, peer.port)
            assert proto.transport is not None
            self.last_error.pop(peer, None)
            for data in self._pending.pop(peer, []):
                proto.transport.write(data)
        except (OSError, ssl.SSLError) as err:
            log.warning("cannot connect to %s: %s", peer, err)
            self.last_error[peer] = str(err)
            self._pending.pop(peer, None)
        finally:
            self._connecting.pop(peer, None)


def _unverified_client() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def server_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """The TLS listener's context: our certificate (chain) and key, TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def client_context(ca_file: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """A context for connecting to a carrier: its certificate checked against ``ca_file`` (or the system's
    authorities) and its name, unless ``verify`` is off (a carrier with a self-signed certificate)."""
    if not verify:
        return _unverified_client()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
