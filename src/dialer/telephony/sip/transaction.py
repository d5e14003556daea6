"""RFC 3261 §17 transactions over the transport, with their timers; the layer the dialogs use.

Each of the four transaction kinds is a state table on :class:`dialer.core.fsm.Machine`, with the states and timers
the RFC names. A table says which state follows an event; the transaction's methods do what the event means
(send, retransmit, pass a response up, start or stop timers). Every timer runs on the injected
:class:`~dialer.core.clock.Clock`, so the whole stack runs under a :class:`~dialer.core.clock.VirtualClock` as well
as in real time. Timers are stopped when their state is left, so a timer event is always legal where it fires;
a message the current state does not take (a 1xx after the final response, an ACK before it) is dropped, as
the RFC's figures drop it.

INVITE client transaction (§17.1.1, figure 5; RFC 6026 §7.2 adds Accepted). T1 = 500 ms by default.

==========  ===========  ==========  ===================================================================
from        event        to          what happens
==========  ===========  ==========  ===================================================================
calling     timer_a      calling     the INVITE again (UDP only); A doubles, without a cap
calling     timer_b      terminated  no response at all within 64·T1: the owner hears a timeout
calling     provisional  proceeding  passed up; A and B stop — a call that rings is ended by its owner's own
                                     timer (the ring timeout), never by B (§17.1.1.2)
calling     success      accepted    a 2xx, passed up; timer M (64·T1)
calling     failure      completed   300-699: ACKed here (same branch), passed up; timer D (32 s UDP, 0 TCP)
proceeding  provisional  proceeding  passed up
proceeding  success      accepted
proceeding  failure      completed
accepted    success      accepted    a retransmitted 2xx, passed up: the dialog re-sends its end-to-end ACK
accepted    timer_m      terminated
completed   failure      completed   a retransmitted final response: ACKed again
completed   timer_d      terminated
==========  ===========  ==========  ===================================================================

Non-INVITE client transaction (§17.1.2, figure 6).

==========  ===========  ==========  ===================================================================
trying      timer_e      trying      the request again (UDP only); E doubles up to T2 (4 s)
trying      timer_f      terminated  no final response within 64·T1: the owner hears a timeout
trying      provisional  proceeding  passed up
trying      final        completed   passed up; timer K (T4 = 5 s UDP, 0 TCP)
proceeding  timer_e      proceeding  the request again, every T2
proceeding  timer_f      terminated
proceeding  provisional  proceeding  passed up
proceeding  final        completed
completed   final        completed   a retransmission, absorbed
completed   timer_k      terminated
==========  ===========  ==========  ===================================================================

INVITE server transaction (§17.2.1, figure 7). The owner's 2xx is retransmitted here as well, until its ACK
(RFC 3261 §13.3.1.4 gives that to the UAS core, with the same timers; RFC 6026's Accepted state plays the part):
one machine does both.

==========  ===========  ==========  ===================================================================
proceeding  request      proceeding  a retransmitted INVITE: the last provisional response again, if any
proceeding  provisional  proceeding  sent
proceeding  final        completed   sent; timer G (T1, UDP only) and timer H (64·T1)
completed   request      completed   a retransmitted INVITE: the final response again
completed   timer_g      completed   the final response again; G doubles up to T2
completed   ack          confirmed   G and H stop; timer I (T4 UDP, 0 TCP)
completed   timer_h      terminated  no ACK within 64·T1: reported to the owner (``on_missing_ack``); after a
                                     2xx the dialog is dead and the owner ends the call with a BYE
confirmed   ack          confirmed   a retransmitted ACK, absorbed
confirmed   timer_i      terminated
==========  ===========  ==========  ===================================================================

Non-INVITE server transaction (§17.2.2, figure 8).

==========  ===========  ==========  ===================================================================
trying      request      trying      a retransmission before any answer: absorbed
trying      provisional  proceeding  sent
trying      final        completed   sent; timer J (64·T1 UDP, 0 TCP)
proceeding  request      proceeding  the last provisional response again
proceeding  provisional  proceeding  sent
proceeding  final        completed
completed   request      completed   the final response again
completed   timer_j      terminated
==========  ===========  ==========  ===================================================================

Over TCP nothing is retransmitted (no A, E, G) and the waiting states end at once (D, I, J, K are 0).
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum

from dialer.core.clock import Cancellable, Clock, SystemClock, wait_for
from dialer.core.fsm import Machine
from dialer.telephony.sip.message import Message, ParseError, new_branch, split_values
from dialer.telephony.sip.transport import Peer, Transport

__all__ = [
    "INVITE_CLIENT",
    "INVITE_SERVER",
    "NON_INVITE_CLIENT",
    "NON_INVITE_SERVER",
    "T4",
    "TIMER_D",
    "ClientTransaction",
    "InviteClientEvent",
    "InviteClientState",
    "InviteClientTransaction",
    "InviteServerEvent",
    "InviteServerState",
    "InviteServerTransaction",
    "NonInviteClientEvent",
    "NonInviteClientState",
    "NonInviteClientTransaction",
    "NonInviteServerEvent",
    "NonInviteServerState",
    "NonInviteServerTransaction",
    "ServerTransaction",
    "TransactionLayer",
    "via_header",
]

log = logging.getLogger(__name__)

#: Maximum duration a message stays in the network (timers I and K over UDP).
T4 = 5.0
#: How long a completed INVITE client transaction waits for retransmitted final responses over UDP.
TIMER_D = 32.0
_RPORT = re.compile(r";rport(?=;|$|\s)")

ResponseHandler = Callable[[Message], None]
TimeoutHandler = Callable[[], None]
RequestHandler = Callable[[Message, Peer, "ServerTransaction"], None]
StrayHandler = Callable[[Message, Peer], None]
MissingAckHandler = Callable[["InviteServerTransaction"], None]


# --- the tables ---------------------------------------------------------------------------------------------------
class InviteClientState(StrEnum):
    calling = "calling"
    proceeding = "proceeding"
    accepted = "accepted"
    completed = "completed"
    terminated = "terminated"


class InviteClientEvent(StrEnum):
    provisional = "provisional"  # 1xx
    success = "success"          # 2xx
    failure = "failure"          # 300-699
    timer_a = "timer_a"
    timer_b = "timer_b"
    timer_d = "timer_d"
    timer_m = "timer_m"


class NonInviteClientState(StrEnum):
    trying = "trying"
    proceeding = "proceeding"
    completed = "completed"
    terminated = "terminated"


class NonInviteClientEvent(StrEnum):
    provisional = "provisional"  # 1xx
    final = "final"              # 200-699
    timer_e = "timer_e"
    timer_f = "timer_f"
    timer_k = "timer_k"


class InviteServerState(StrEnum):
    proceeding = "proceeding"
    completed = "completed"
    confirmed = "confirmed"
    terminated = "terminated"


class InviteServerEvent(StrEnum):
    request = "request"          # the INVITE retransmitted by the client
    provisional = "provisional"  # the owner sends a 1xx
    final = "final"              # the owner sends 200-699
    ack = "ack"
    timer_g = "timer_g"
    timer_h = "timer_h"
    timer_i = "timer_i"


class NonInviteServerState(StrEnum):
    trying = "trying"
    proceeding = "proceeding"
    completed = "completed"
    terminated = "terminated"


class NonInviteServerEvent(StrEnum):
    request = "request"          # the request retransmitted by the client
    provisional = "provisional"
    final = "final"
    timer_j = "timer_j"


ICS, ICE = InviteClientState, InviteClientEvent
NCS, NCE = NonInviteClientState, NonInviteClientEvent
ISS, ISE = InviteServerState, InviteServerEvent
NSS, NSE = NonInviteServerState, NonInviteServerEvent

INVITE_CLIENT: Machine[InviteClientState, InviteClientEvent] = Machine("INVITE client transaction", {
    (ICS.calling, ICE.timer_a): ICS.calling,
    (ICS.calling, ICE.timer_b): ICS.terminated,
    (ICS.calling, ICE.provisional): ICS.proceeding,
    (ICS.calling, ICE.success): ICS.accepted,
    (ICS.calling, ICE.failure): ICS.completed,
    (ICS.proceeding, ICE.provisional): ICS.proceeding,
    (ICS.proceeding, ICE.success): ICS.accepted,
    (ICS.proceeding, ICE.failure): ICS.completed,
    (ICS.accepted, ICE.success): ICS.accepted,
    (ICS.accepted, ICE.timer_m): ICS.terminated,
    (ICS.completed, ICE.failure): ICS.completed,
    (ICS.completed, ICE.timer_d): ICS.terminated,
})

NON_INVITE_CLIENT: Machine[NonInviteClientState, NonInviteClientEvent] = Machine("non-INVITE client transaction", {
    (NCS.trying, NCE.timer_e): NCS.trying,
    (NCS.trying, NCE.timer_f): NCS.terminated,
    (NCS.trying, NCE.provisional): NCS.proceeding,
    (NCS.trying, NCE.final): NCS.completed,
    (NCS.proceeding, NCE.timer_e): NCS.proceeding,
    (NCS.proceeding, NCE.timer_f): NCS.terminated,
    (NCS.proceeding, NCE.provisional): NCS.proceeding,
    (NCS.proceeding, NCE.final): NCS.completed,
    (NCS.completed, NCE.final): NCS.completed,
    (NCS.completed, NCE.timer_k): NCS.terminated,
})

INVITE_SERVER: Machine[InviteServerState, InviteServerEvent] = Machine("INVITE server transaction", {
    (ISS.proceeding, ISE.request): ISS.proceeding,
    (ISS.proceeding, ISE.provisional): ISS.proceeding,
    (ISS.proceeding, ISE.final): ISS.completed,
    (ISS.completed, ISE.request): ISS.completed,
    (ISS.completed, ISE.timer_g): ISS.completed,
    (ISS.completed, ISE.ack): ISS.confirmed,
    (ISS.completed, ISE.timer_h): ISS.terminated,
    (ISS.confirmed, ISE.ack): ISS.confirmed,
    (ISS.confirmed, ISE.timer_i): ISS.terminated,
})

NON_INVITE_SERVER: Machine[NonInviteServerState, NonInviteServerEvent] = Machine("non-INVITE server transaction", {
    (NSS.trying, NSE.request): NSS.trying,
    (NSS.trying, NSE.provisional): NSS.proceeding,
    (NSS.trying, NSE.final): NSS.completed,
    (NSS.proceeding, NSE.request): NSS.proceeding,
    (NSS.proceeding, NSE.provisional): NSS.proceeding,
    (NSS.proceeding, NSE.final): NSS.completed,
    (NSS.completed, NSE.request): NSS.completed,
    (NSS.completed, NSE.timer_j): NSS.terminated,
})


# --- client transactions --------------------------------------------------------------------------------------------
class ClientTransaction(ABC):
    """A request we sent: retransmitted over UDP, its responses passed to ``on_response``, ``on_timeout`` when none
    came in time. :func:`TransactionLayer.send_request` makes the right kind."""

    __slots__ = ("_retransmit", "_timeout", "branch", "final", "layer", "method", "on_response", "on_timeout",
                 "peer", "request")

    invite = False

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, on_response: ResponseHandler,
                 on_timeout: TimeoutHandler) -> None:
        self.layer = layer
        self.request = request
        self.peer = peer
        self.method = request.method or ""
        self.branch = request.via.branch
        self.on_response = on_response
        self.on_timeout = on_timeout
        self.final: Message | None = None
        self._retransmit: Cancellable | None = None
        self._timeout: Cancellable | None = None

    @property
    @abstractmethod
    def pending(self) -> bool:
        """No final response yet (a CANCEL may still be sent for an INVITE)."""

    @abstractmethod
    def start(self) -> None:
        """Send the request and start the state's timers."""

    @abstractmethod
    def receive(self, response: Message) -> None:
        """A response matched to this transaction."""

    def _cancel_timers(self) -> None:
        for handle in (self._retransmit, self._timeout):
            if handle is not None:
                handle.cancel()
        self._retransmit = self._timeout = None

    def _end(self) -> None:
        """Terminated: no timer left, and the layer no longer matches responses to it."""
        self._cancel_timers()
        self.layer._client.pop((self.branch, self.method), None)

    def _wait(self, seconds: float, timer: Callable[[], None]) -> None:
        """Start the timer of a waiting state (D, K, M); one of 0 s fires at once."""
        self._cancel_timers()
        if seconds <= 0:
            timer()
        else:
            self._timeout = self.layer.clock.call_later(seconds, timer)


class InviteClientTransaction(ClientTransaction):
    __slots__ = ("state",)

    invite = True

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, on_response: ResponseHandler,
                 on_timeout: TimeoutHandler) -> None:
        super().__init__(layer, request, peer, on_response, on_timeout)
        self.state = ICS.calling

    @property
    def pending(self) -> bool:
        return self.state in (ICS.calling, ICS.proceeding)

    def _fire(self, event: InviteClientEvent) -> InviteClientState:
        self.state = INVITE_CLIENT.next(self.state, event)
        return self.state

    def start(self) -> None:
        layer = self.layer
        layer.transport.send(self.request, self.peer)
        if not self.peer.reliable:
            self._retransmit = layer.clock.call_later(layer.t1, self._timer_a, layer.t1)
        self._timeout = layer.clock.call_later(64 * layer.t1, self._timer_b)

    def _timer_a(self, interval: float) -> None:
        self._fire(ICE.timer_a)
        self.layer.transport.send(self.request, self.peer)
        self._retransmit = self.layer.clock.call_later(2 * interval, self._timer_a, 2 * interval)

    def _timer_b(self) -> None:
        self._fire(ICE.timer_b)
        self._end()
        self.on_timeout()

    def _timer_d(self) -> None:
        self._fire(ICE.timer_d)
        self._end()

    def _timer_m(self) -> None:
        self._fire(ICE.timer_m)
        self._end()

    def receive(self, response: Message) -> None:
        status = response.status or 0
        event = ICE.provisional if status < 200 else ICE.success if status < 300 else ICE.failure
        before = self.state
        if not INVITE_CLIENT.can(before, event):
            return  # a 1xx after the final response, a non-2xx after a 2xx: dropped
        self._fire(event)
        if event is ICE.provisional:
            if before is ICS.calling:
                self._cancel_timers()  # A and B belong to Calling only
            self.on_response(response)
        elif event is ICE.success:
            if before is not ICS.accepted:
                self.final = response
                self._wait(64 * self.layer.t1, self._timer_m)
            self.on_response(response)  # retransmitted 2xx too: the dialog re-sends its ACK
        else:
            self._send_ack(response)
            if before is ICS.completed:
                return  # a retransmission: ACKed again, nothing new for the owner
            self.final = response
            self._wait(0 if self.peer.reliable else TIMER_D, self._timer_d)
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


class NonInviteClientTransaction(ClientTransaction):
    __slots__ = ("state",)

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, on_response: ResponseHandler,
                 on_timeout: TimeoutHandler) -> None:
        super().__init__(layer, request, peer, on_response, on_timeout)
        self.state = NCS.trying

    @property
    def pending(self) -> bool:
        return self.state in (NCS.trying, NCS.proceeding)

    def _fire(self, event: NonInviteClientEvent) -> NonInviteClientState:
        self.state = NON_INVITE_CLIENT.next(self.state, event)
        return self.state

    def start(self) -> None:
        layer = self.layer
        layer.transport.send(self.request, self.peer)
        if not self.peer.reliable:
            self._retransmit = layer.clock.call_later(layer.t1, self._timer_e, layer.t1)
        self._timeout = layer.clock.call_later(64 * layer.t1, self._timer_f)

    def _timer_e(self, interval: float) -> None:
        state = self._fire(NCE.timer_e)
        self.layer.transport.send(self.request, self.peer)
        t2 = self.layer.t2
        nxt = t2 if state is NCS.proceeding else min(2 * interval, t2)
        self._retransmit = self.layer.clock.call_later(nxt, self._timer_e, nxt)

    def _timer_f(self) -> None:
        self._fire(NCE.timer_f)
        self._end()
        self.on_timeout()

    def _timer_k(self) -> None:
        self._fire(NCE.timer_k)
        self._end()

    def receive(self, response: Message) -> None:
        event = NCE.provisional if (response.status or 0) < 200 else NCE.final
        before = self.state
        if not NON_INVITE_CLIENT.can(before, event):
            return  # a 1xx after the final response: dropped
        self._fire(event)
        if event is NCE.provisional:
            self.on_response(response)
        elif before is not NCS.completed:  # a retransmitted final response is absorbed
            self.final = response
            self._wait(0 if self.peer.reliable else T4, self._timer_k)
            self.on_response(response)


# --- server transactions --------------------------------------------------------------------------------------------
class ServerTransaction(ABC):
    """A request we received: the owner answers it with :meth:`respond`; retransmissions of the request get the
    last response again. The layer makes the right kind."""

    __slots__ = ("_retransmit", "_timeout", "branch", "key", "last", "layer", "method", "peer", "request")

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, key: tuple[str, str]) -> None:
        self.layer = layer
        self.request = request
        self.peer = peer
        self.key = key
        self.method = request.method or ""
        self.branch = key[0]
        self.last: Message | None = None
        self._retransmit: Cancellable | None = None
        self._timeout: Cancellable | None = None

    @abstractmethod
    def respond(self, response: Message) -> None:
        """Send our response (the owner's answer)."""

    @abstractmethod
    def retransmission(self) -> None:
        """The client sent the request again."""

    def _cancel_timers(self) -> None:
        for handle in (self._retransmit, self._timeout):
            if handle is not None:
                handle.cancel()
        self._retransmit = self._timeout = None

    def _end(self) -> None:
        self._cancel_timers()
        self.layer._server.pop(self.key, None)


class InviteServerTransaction(ServerTransaction):
    __slots__ = ("state",)

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, key: tuple[str, str]) -> None:
        super().__init__(layer, request, peer, key)
        self.state = ISS.proceeding

    def _fire(self, event: InviteServerEvent) -> InviteServerState:
        self.state = INVITE_SERVER.next(self.state, event)
        return self.state

    def respond(self, response: Message) -> None:
        status = response.status or 0
        final = status >= 200
        self._fire(ISE.final if final else ISE.provisional)
        self.last = response
        layer = self.layer
        layer.transport.send(response, self.peer)
        if not final:
            return
        layer._invite_acks[(self.request.call_id, self.request.cseq[0])] = self
        if not self.peer.reliable:
            self._retransmit = layer.clock.call_later(layer.t1, self._timer_g, layer.t1)
        self._timeout = layer.clock.call_later(64 * layer.t1, self._timer_h)

    def retransmission(self) -> None:
        if not INVITE_SERVER.can(self.state, ISE.request):
            return
        self._fire(ISE.request)
        if self.last is not None:
            self.layer.transport.send(self.last, self.peer)

    def ack(self) -> None:
        before = self.state
        if not INVITE_SERVER.can(before, ISE.ack):
            return  # an ACK before any final response: nothing to acknowledge
        self._fire(ISE.ack)
        if before is ISS.completed:
            self._cancel_timers()
            seconds = 0 if self.peer.reliable else T4
            if seconds <= 0:
                self._timer_i()
            else:
                self._timeout = self.layer.clock.call_later(seconds, self._timer_i)

    def _timer_g(self, interval: float) -> None:
        self._fire(ISE.timer_g)
        assert self.last is not None
        self.layer.transport.send(self.last, self.peer)
        nxt = min(2 * interval, self.layer.t2)
        self._retransmit = self.layer.clock.call_later(nxt, self._timer_g, nxt)

    def _timer_h(self) -> None:
        self._fire(ISE.timer_h)
        self._end()
        log.info("no ACK to %s for %s (Call-ID %s) within 64·T1", self.last.summary if self.last else "our answer",
                 self.request.summary, self.request.call_id)
        self.layer.on_missing_ack(self)

    def _timer_i(self) -> None:
        self._fire(ISE.timer_i)
        self._end()

    def _end(self) -> None:
        super()._end()
        key = (self.request.call_id, self.request.cseq[0])
        if self.layer._invite_acks.get(key) is self:
            del self.layer._invite_acks[key]


class NonInviteServerTransaction(ServerTransaction):
    __slots__ = ("state",)

    def __init__(self, layer: TransactionLayer, request: Message, peer: Peer, key: tuple[str, str]) -> None:
        super().__init__(layer, request, peer, key)
        self.state = NSS.trying

    def _fire(self, event: NonInviteServerEvent) -> NonInviteServerState:
        self.state = NON_INVITE_SERVER.next(self.state, event)
        return self.state

    def respond(self, response: Message) -> None:
        final = (response.status or 0) >= 200
        self._fire(NSE.final if final else NSE.provisional)
        self.last = response
        self.layer.transport.send(response, self.peer)
        if not final:
            return
        seconds = 0 if self.peer.reliable else 64 * self.layer.t1
        if seconds <= 0:
            self._timer_j()
        else:
            self._timeout = self.layer.clock.call_later(seconds, self._timer_j)

    def retransmission(self) -> None:
        if not NON_INVITE_SERVER.can(self.state, NSE.request):
            return
        self._fire(NSE.request)
        if self.last is not None:
            self.layer.transport.send(self.last, self.peer)

    def _timer_j(self) -> None:
        self._fire(NSE.timer_j)
        self._end()


# --- the layer ------------------------------------------------------------------------------------------------------
class TransactionLayer:
    """Matches responses to client transactions and retransmitted requests to server transactions.

    Hooks the owner sets: ``on_request`` (a new request and its server transaction), ``on_stray_response`` (a
    response no transaction waits for: a 2xx retransmitted after its transaction ended), ``on_ack`` (the ACK of a
    2xx, end to end, or an ACK no transaction knows) and ``on_missing_ack`` (an INVITE server transaction's timer H
    fired: the final response, 2xx included, was never acknowledged).
    """

    def __init__(self, transport: Transport, *, t1: float = 0.5, t2: float = 4.0, clock: Clock | None = None) -> None:
        self.transport = transport
        self.t1 = t1
        self.t2 = t2
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, str], ServerTransaction] = {}
        self._invite_acks: dict[tuple[str, int], InviteServerTransaction] = {}
        self.on_request: RequestHandler = lambda msg, peer, tx: None
        self.on_stray_response: StrayHandler = lambda msg, peer: None
        self.on_ack: StrayHandler = lambda msg, peer: None
        self.on_missing_ack: MissingAckHandler = lambda tx: None

    def bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the driver runs on (futures, name resolution); timers run on :attr:`clock`."""
        return self._loop if self._loop is not None else asyncio.get_running_loop()

    def send_request(self, request: Message, peer: Peer, on_response: ResponseHandler,
                     on_timeout: TimeoutHandler) -> ClientTransaction:
        kind = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        tx = kind(self, request, peer, on_response, on_timeout)
        self._client[(tx.branch, tx.method)] = tx
        tx.start()
        return tx

    def send_invite(self, request: Message, peer: Peer, on_response: ResponseHandler,
                    on_timeout: TimeoutHandler) -> InviteClientTransaction:
        """:meth:`send_request` for an INVITE, typed as such (its CANCEL is built from it)."""
        if request.method != "INVITE":
            raise ValueError(f"not an INVITE: {request.summary}")
        tx = self.send_request(request, peer, on_response, on_timeout)
        assert isinstance(tx, InviteClientTransaction)
        return tx

    async def final_response(self, request: Message, peer: Peer, within_s: float) -> Message | None:
        """Send a non-INVITE request and wait for its final response; None when none came in time (on the clock)."""
        fut: asyncio.Future[Message | None] = self.loop.create_future()

        def answered(resp: Message) -> None:
            if (resp.status or 0) >= 200 and not fut.done():
                fut.set_result(resp)

        def timed_out() -> None:
            if not fut.done():
                fut.set_result(None)

        self.send_request(request, peer, answered, timed_out)
        try:
            return await wait_for(self.clock, fut, within_s)
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
            # a non-2xx's ACK has the INVITE's branch; a 2xx's is a new transaction of the same Call-ID and CSeq
            found = self._server.get((via.branch, "INVITE"))
            stx = found if isinstance(found, InviteServerTransaction) else None
            if stx is None:
                stx = self._invite_acks.get((msg.call_id, msg.cseq[0]))
            if stx is None:
                self.on_ack(msg, peer)
                return
            stx.ack()
            if stx.last is not None and (stx.last.status or 0) < 300:
                self.on_ack(msg, peer)  # the ACK of a 2xx is end to end: the dialog's business
            return
        key = (via.branch, method)
        known = self._server.get(key)
        if known is not None:
            known.retransmission()
            return
        stx_new: ServerTransaction
        if method == "INVITE":
            stx_new = InviteServerTransaction(self, msg, peer, key)
        else:
            stx_new = NonInviteServerTransaction(self, msg, peer, key)
        self._server[key] = stx_new
        self.on_request(msg, peer, stx_new)

    def pending(self, methods: frozenset[str] = frozenset({"BYE", "CANCEL"})) -> int:
        """Client transactions of ``methods`` still waiting for their final response."""
        return sum(1 for tx in self._client.values() if tx.method in methods and tx.pending)

    def close(self) -> None:
        """Stop every timer: nothing is retransmitted after the transport closes."""
        for ctx in list(self._client.values()):
            ctx._cancel_timers()
        self._client.clear()
        for stx in [*self._server.values(), *self._invite_acks.values()]:
            stx._cancel_timers()
        self._server.clear()
        self._invite_acks.clear()

    def find_invite_server(self, branch: str) -> ServerTransaction | None:
        return self._server.get((branch, "INVITE"))

    def client_count(self) -> int:
        return len(self._client)

    def server_count(self) -> int:
        return len(self._server)


def via_header(transport: str, host: str, port: int, branch: str | None = None) -> str:
    return f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch or new_branch()};rport"
