"""RFC 3261 §17 transactions over the transport, with their timers; the layer the dialogs use.

Client transactions retransmit over UDP (timer A for INVITE, E for others, doubling from T1; E capped at
T2) and give up after 64·T1 (timers B and F). An INVITE client transaction ACKs a non-2xx final response
itself (same branch) and re-ACKs its retransmissions during timer D; after a 2xx it stays "accepted"
for 64·T1 (RFC 6026) so that retransmitted 2xx reach the dialog, which ACKs them end to end.

Server transactions answer a retransmitted request with the last response; a final response to an
INVITE is retransmitted (timer G) until the ACK arrives (timer H).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from dialer.telephony.sip.message import Message, ParseError, new_branch, split_values
from dialer.telephony.sip.transport import Peer, Transport

log = logging.getLogger(__name__)

T4 = 5.0
_RPORT = re.compile(r";rport(?=;|$|\s)")

ResponseHandler = Callable[[Message], None]
TimeoutHandler = Callable[[], None]
RequestHandler = Callable[[Message, Peer, "ServerTransaction"], None]
StrayHandler = Callable[[Message, Peer], None]


class ClientTransaction:
    __slots__ = ("_retransmit", "_timeout", "branch", "final", "invite", "layer", "method", "on_response",
                 "on_timeout", "peer", "request", "state")

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, on_response: ResponseHandler,
                 on_timeout: TimeoutHandler) -> None:
        self.layer = layer
        self.request = request
        self.peer = peer
        self.method = request.method or ""
        self.invite = self.method == "INVITE"
        self.branch = request.via.branch
        self.on_response = on_response
        self.on_timeout = on_timeout
        self.state = "calling"  # calling | proceeding | accepted | completed | terminated
        self.final: Message | None = None
        self._retransmit: asyncio.TimerHandle | None = None
        self._timeout: asyncio.TimerHandle | None = None

    def start(self) -> None:
        layer = self.layer
        layer.transport.send(self.request, self.peer)
        loop = layer.loop
        if not self.peer.reliable:
            self._retransmit = loop.call_later(layer.t1, self._resend, layer.t1)
        self._timeout = loop.call_later(64 * layer.t1, self._timed_out)

    def _resend(self, interval: float) -> None:
        if self.state not in ("calling", "proceeding") or (self.invite and self.state != "calling"):
            return
        self.layer.transport.send(self.request, self.peer)
        nxt = interval * 2 if self.invite else min(interval * 2, self.layer.t2)
        if not self.invite and self.state == "proceeding":
            nxt = self.layer.t2
        self._retransmit = self.layer.loop.call_later(nxt, self._resend, nxt)

    def _timed_out(self) -> None:
        if self.state in ("calling", "proceeding"):
            self._terminate()
            self.on_timeout()
        else:
            self._terminate()

    def _cancel_timers(self) -> None:
        for handle in (self._retransmit, self._timeout):
            if handle is not None:
                handle.cancel()
        self._retransmit = self._timeout = None

    def _terminate(self) -> None:
        self.state = "terminated"
        self._cancel_timers()
        self.layer._client.pop((self.branch, self.method), None)

    def _linger(self, seconds: float) -> None:
        self._cancel_timers()
        if seconds <= 0:
            self._terminate()
        else:
            self._timeout = self.layer.loop.call_later(seconds, self._terminate)

    def receive(self, response: Message) -> None:
        status = response.status or 0
        if status < 200:
            if self.state == "calling":
                self.state = "proceeding"
            if self.state == "proceeding":
                self.on_response(response)
            return
        if self.invite:
            if status < 300:
                if self.state in ("calling", "proceeding"):
                    self.state = "accepted"
                    self.final = response
                    self._linger(64 * self.layer.t1)
                self.on_response(response)  # retransmitted 2xx too: the dialog re-sends its ACK
                return
            if self.state in ("calling", "proceeding"):
                self.state = "completed"
                self.final = response
                self._send_ack(response)
                self._linger(0 if self.peer.reliable else 32.0)
                self.on_response(response)
            elif self.state == "completed":
                self._send_ack(response)
            return
        if self.state in ("calling", "proceeding"):
            self.state = "completed"
            self.final = response
            self._linger(0 if self.peer.reliable else T4)
            self.on_response(response)

    def _send_ack(self, response: Message) -> None:
        """ACK of a non-2xx final response: part of this transaction (RFC 3261 §17.1.1.3)."""
        req = self.request
        headers = [("Via", req.all("Via")[0]), *((n, v) for n, v in req.headers if n == "Route"),
                   ("Max-Forwards", "70"), ("From", req["From"]), ("To", response["To"]),
                   ("Call-ID", req.call_id), ("CSeq", f"{req.cseq[0]} ACK")]
        self.layer.transport.send(Message.request("ACK", req.uri or "", headers), self.peer)

    def cancel_request(self) -> Message:
        """The CANCEL of this INVITE (RFC 3261 §9.1): same branch, Request-URI, Call-ID, From, To, Route."""
        req = self.request
        headers = [("Via", req.all("Via")[0]), *((n, v) for n, v in req.headers if n == "Route"),
                   ("Max-Forwards", "70"), ("From", req["From"]), ("To", req["To"]),
                   ("Call-ID", req.call_id), ("CSeq", f"{req.cseq[0]} CANCEL")]
        return Message.request("CANCEL", req.uri or "", headers)


class ServerTransaction:
    __slots__ = ("_timer", "acked", "branch", "key", "last", "layer", "method", "peer", "request")

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, key: tuple[str, str]) -> None:
        self.layer = layer
        self.request = request
        self.peer = peer
        self.key = key
        self.method = request.method or ""
        self.branch = key[0]
        self.last: Message | None = None
        self.acked = False
        self._timer: asyncio.TimerHandle | None = None

    def respond(self, response: Message) -> None:
        self.last = response
        self.layer.transport.send(response, self.peer)
        status = response.status or 0
        if status < 200:
            return
        loop, t1 = self.layer.loop, self.layer.t1
        if self.method == "INVITE":
            num = self.request.cseq[0]
            self.layer._invite_acks[(self.request.call_id, num)] = self
            if not self.peer.reliable:
                self._timer = loop.call_later(t1, self._resend, t1)
            loop.call_later(64 * t1, self._end)
        else:
            loop.call_later(0 if self.peer.reliable else 64 * t1, self._end)

    def _resend(self, interval: float) -> None:
        if self.acked or self.last is None:
            return
        self.layer.transport.send(self.last, self.peer)
        nxt = min(interval * 2, self.layer.t2)
        self._timer = self.layer.loop.call_later(nxt, self._resend, nxt)

    def ack_received(self) -> None:
        self.acked = True
        if self._timer is not None:
            self._timer.cancel()

    def _end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        layer = self.layer
        layer._server.pop(self.key, None)
        if self.method == "INVITE":
            layer._invite_acks.pop((self.request.call_id, self.request.cseq[0]), None)


class TransactionLayer:
    """Matches responses to client transactions and retransmitted requests to server transactions."""

    def __init__(self, transport: Transport, *, t1: float = 0.5, t2: float = 4.0) -> None:
        self.transport = transport
        self.t1 = t1
        self.t2 = t2
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, str], ServerTransaction] = {}
        self._invite_acks: dict[tuple[str, int], ServerTransaction] = {}
        self.on_request: RequestHandler = lambda msg, peer, tx: None
        self.on_stray_response: StrayHandler = lambda msg, peer: None
        self.on_ack: StrayHandler = lambda msg, peer: None

    def bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop whose real time runs the protocol timers."""
        return self._loop if self._loop is not None else asyncio.get_running_loop()

    def send_request(self, request: Message, peer: Peer, on_response: ResponseHandler,
                     on_timeout: TimeoutHandler) -> ClientTransaction:
        tx = ClientTransaction(self, request, peer, on_response, on_timeout)
        self._client[(tx.branch, tx.method)] = tx
        tx.start()
        return tx

    async def final_response(self, request: Message, peer: Peer, within_s: float) -> Message | None:
        """Send a non-INVITE request and wait for its final response; None when none came in time."""
        fut: asyncio.Future[Message | None] = self.loop.create_future()

        def answered(resp: Message) -> None:
            if (resp.status or 0) >= 200 and not fut.done():
                fut.set_result(resp)

        def timed_out() -> None:
            if not fut.done():
                fut.set_result(None)

        self.send_request(request, peer, answered, timed_out)
        try:
            return await asyncio.wait_for(fut, within_s)
        except TimeoutError:
            return None

    def send_stateless(self, message: Message, peer: Peer) -> None:
        """An ACK of a 2xx, or anything sent outside a transaction."""
        self.transport.send(message, peer)

    def received(self, msg: Message, peer: Peer) -> None:
        try:
            if msg.is_request:
                self._request(msg, peer)
            else:
                self._response(msg, peer)
        except (ParseError, KeyError, ValueError) as err:
            log.debug("dropping malformed %s from %s: %s", msg.summary, peer, err)

    def _response(self, msg: Message, peer: Peer) -> None:
        branch = msg.via.branch
        tx = self._client.get((branch, msg.cseq[1]))
        if tx is None:
            self.on_stray_response(msg, peer)
            return
        tx.receive(msg)

    def _request(self, msg: Message, peer: Peer) -> None:
        via = msg.via
        if peer.transport == "udp":
            # RFC 3581: note where the request came from in the top Via
            idx = next(i for i, (n, _) in enumerate(msg.headers) if n == "Via")
            values = split_values(msg.headers[idx][1])
            top = values[0]
            if via.params.get("rport") == "":
                top = _RPORT.sub(f";rport={peer.port}", top, count=1)
            if "received" not in via.params:
                top += f";received={peer.host}"
            msg.headers[idx] = ("Via", ", ".join([top, *values[1:]]))
        method = msg.method or ""
        if method == "ACK":
            stx = self._server.get((via.branch, "INVITE")) or self._invite_acks.get((msg.call_id, msg.cseq[0]))
            if stx is None:
                self.on_ack(msg, peer)
                return
            stx.ack_received()
            if stx.last is not None and (stx.last.status or 0) < 300:
                self.on_ack(msg, peer)  # the ACK of a 2xx is end to end: the dialog's business
            return
        key = (via.branch, method)
        stx = self._server.get(key)
        if stx is not None:
            if stx.last is not None:
                self.transport.send(stx.last, stx.peer)
            return
        stx = ServerTransaction(self, msg, peer, key)
        self._server[key] = stx
        self.on_request(msg, peer, stx)

    def pending(self, methods: frozenset[str] = frozenset({"BYE", "CANCEL"})) -> int:
        """Client transactions of ``methods`` still waiting for their final response."""
        return sum(1 for tx in self._client.values() if tx.method in methods and tx.state in ("calling", "proceeding"))

    def close(self) -> None:
        """Stop every timer: nothing is retransmitted after the transport closes."""
        for ctx in list(self._client.values()):
            ctx._cancel_timers()
        self._client.clear()
        for stx in list(self._server.values()):
            if stx._timer is not None:
                stx._timer.cancel()
            stx.acked = True
        self._server.clear()
        self._invite_acks.clear()

    def find_invite_server(self, branch: str) -> ServerTransaction | None:
        return self._server.get((branch, "INVITE"))

    def client_count(self) -> int:
        return len(self._client)


def via_header(transport: str, host: str, port: int, branch: str | None = None) -> str:
    return f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch or new_branch()};rport"
