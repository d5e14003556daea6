"""RFC 3261 §17 transactions in virtual time: what goes on the wire and when (timers A, E, G doubling, E and G capped
at T2), the timeouts B, F and H at 64·T1, and the clean-up timers D, I, J, K, M. A fake transport records what is
sent; the layer's timers run on a :class:`VirtualClock`, moved with ``advance`` (the layer is plain callbacks)."""

from __future__ import annotations

import asyncio
import itertools
from typing import cast

import pytest

from dialer.core.clock import VirtualClock
from dialer.telephony.sip.message import Message, new_branch
from dialer.telephony.sip.transaction import (
    InviteClientState,
    InviteClientTransaction,
    InviteServerState,
    InviteServerTransaction,
    NonInviteClientState,
    NonInviteClientTransaction,
    NonInviteServerState,
    NonInviteServerTransaction,
    ServerTransaction,
    TransactionLayer,
)
from dialer.telephony.sip.transport import Peer, Transport

UDP = Peer("udp", "192.0.2.10", 5060)
TCP = Peer("tcp", "192.0.2.10", 5060)


class Wire:
    """A transport that records what is sent, stamped with the virtual time."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, Message]] = []

    def send(self, msg: Message, peer: Peer) -> None:
        self.sent.append((self.clock.now(), msg))

    def connected(self, peer: Peer) -> bool:
        return False

    def times(self, what: str) -> list[float]:
        """When a request of method ``what`` or a response with status ``what`` was sent."""
        return [t for t, m in self.sent if (m.method or str(m.status)) == what]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def wire(clock: VirtualClock) -> Wire:
    return Wire(clock)


@pytest.fixture
def layer(clock: VirtualClock, wire: Wire) -> TransactionLayer:
    return TransactionLayer(cast(Transport, wire), t1=0.5, t2=4.0, clock=clock)


def request(method: str, *, branch: str | None = None, call_id: str = "call-1", cseq: int = 1,
            peer: Peer = UDP) -> Message:
    return Message.request(method, "sip:79120000001@192.0.2.10", [
        ("Via", f"SIP/2.0/{peer.transport.upper()} 192.0.2.1:5060;branch={branch or new_branch()};rport"),
        ("Max-Forwards", "70"), ("From", "<sip:dialer@192.0.2.1>;tag=ours"), ("To", "<sip:79120000001@192.0.2.10>"),
        ("Call-ID", call_id), ("CSeq", f"{cseq} {method}")])


def response(req: Message, status: int, reason: str = "") -> Message:
    return Message.parse(req.response(status, reason or None, to_tag="theirs").encode())


def retransmission_gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


class Owner:
    """What a transaction passes up."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.responses: list[tuple[float, int]] = []
        self.timeouts: list[float] = []

    def on_response(self, resp: Message) -> None:
        self.responses.append((self.clock.now(), resp.status or 0))

    def on_timeout(self) -> None:
        self.timeouts.append(self.clock.now())


def send(layer: TransactionLayer, owner: Owner, req: Message, peer: Peer = UDP) -> InviteClientTransaction | \
        NonInviteClientTransaction:
    tx = layer.send_request(req, peer, owner.on_response, owner.on_timeout)
    assert isinstance(tx, InviteClientTransaction | NonInviteClientTransaction)
    return tx


# --- INVITE client ------------------------------------------------------------------------------------------------
def test_invite_unanswered_timer_a_doubles_without_cap_and_timer_b_gives_up_at_64_t1(
        clock: VirtualClock, wire: Wire, layer: TransactionLayer) -> None:
    owner = Owner(clock)
    tx = send(layer, owner, request("INVITE"))
    assert tx.state is InviteClientState.calling
    clock.advance(31.9)
    assert owner.timeouts == []
    clock.advance(0.2)
    assert wire.times("INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: 0.5, 1, 2, 4, 8, 16
    assert owner.timeouts == [32.0] and tx.state is InviteClientState.terminated
    assert layer.client_count() == 0
    clock.advance(100)
    assert len(wire.times("INVITE")) == 7 and owner.timeouts == [32.0] and clock.next_deadline() is None


def test_a_ringing_invite_waits_past_64_t1_for_its_answer(clock: VirtualClock, wire: Wire,
                                                          layer: TransactionLayer) -> None:
    """Timer B belongs to Calling: a 180 stops A and B, and a 200 at 40 s is the call's answer (it used to be a
    timeout at 32 s)."""
    owner = Owner(clock)
    invite = request("INVITE")
    tx = send(layer, owner, invite)
    clock.advance(1.0)
    layer.received(response(invite, 180), UDP)
    assert tx.state is InviteClientState.proceeding and owner.responses == [(1.0, 180)]
    clock.advance(39.0)
    assert owner.timeouts == [] and wire.times("INVITE") == [0.0, 0.5]  # no retransmission once it rings
    layer.received(response(invite, 200), UDP)
    assert tx.state is InviteClientState.accepted and owner.responses[-1] == (40.0, 200)
    # RFC 6026 Accepted: a retransmitted 2xx still reaches the owner (whose dialog re-sends its ACK) until timer M
    clock.advance(10)
    layer.received(response(invite, 200), UDP)
    assert owner.responses[-1] == (50.0, 200)
    clock.advance(22.1)
    assert tx.state is InviteClientState.terminated and layer.client_count() == 0
    assert owner.timeouts == [] and wire.times("ACK") == []  # the ACK of a 2xx is the dialog's, not ours


def test_invite_refused_is_acked_by_the_transaction_and_timer_d_cleans_up(clock: VirtualClock, wire: Wire,
                                                                         layer: TransactionLayer) -> None:
    owner = Owner(clock)
    invite = request("INVITE")
    tx = send(layer, owner, invite)
    clock.advance(0.2)
    layer.received(response(invite, 486, "Busy Here"), UDP)
    assert tx.state is InviteClientState.completed and owner.responses == [(0.2, 486)]
    [(_, ack)] = [(t, m) for t, m in wire.sent if m.method == "ACK"]
    assert ack.via.branch == invite.via.branch and ack.cseq == (1, "ACK") and ack.to.tag == "theirs"
    clock.advance(5)
    layer.received(response(invite, 486, "Busy Here"), UDP)  # retransmitted: ACKed again, not passed up
    assert wire.times("ACK") == [0.2, 5.2] and len(owner.responses) == 1
    layer.received(response(invite, 180), UDP)  # late 1xx: dropped
    assert len(owner.responses) == 1
    assert wire.times("INVITE") == [0.0]
    clock.advance(26.9)
    assert tx.state is InviteClientState.completed
    clock.advance(0.2)  # timer D: 32 s after the final response
    assert tx.state is InviteClientState.terminated and layer.client_count() == 0 and clock.next_deadline() is None


def test_invite_over_tcp_is_not_retransmitted_and_ends_at_once(clock: VirtualClock, wire: Wire,
                                                              layer: TransactionLayer) -> None:
    owner = Owner(clock)
    invite = request("INVITE", peer=TCP)
    tx = send(layer, owner, invite, TCP)
    clock.advance(10)
    assert wire.times("INVITE") == [0.0]
    layer.received(response(invite, 503), TCP)
    assert tx.state is InviteClientState.terminated and layer.client_count() == 0  # timer D = 0
    silent = send(layer, owner, request("INVITE", peer=TCP), TCP)
    clock.advance(32)
    assert silent.state is InviteClientState.terminated and owner.timeouts == [42.0]  # timer B over TCP as well


def test_cancel_is_built_from_the_invite(layer: TransactionLayer, clock: VirtualClock) -> None:
    owner = Owner(clock)
    invite = request("INVITE")
    tx = layer.send_invite(invite, UDP, owner.on_response, owner.on_timeout)
    assert tx.pending
    cancel = tx.cancel_request()
    assert cancel.method == "CANCEL" and cancel.via.branch == invite.via.branch and cancel.cseq == (1, "CANCEL")
    with pytest.raises(ValueError, match="not an INVITE"):
        layer.send_invite(request("BYE"), UDP, owner.on_response, owner.on_timeout)


# --- non-INVITE client --------------------------------------------------------------------------------------------
def test_non_invite_unanswered_timer_e_doubles_up_to_t2_and_timer_f_gives_up(clock: VirtualClock, wire: Wire,
                                                                            layer: TransactionLayer) -> None:
    owner = Owner(clock)
    tx = send(layer, owner, request("BYE"))
    assert tx.state is NonInviteClientState.trying
    clock.advance(40)
    times = wire.times("BYE")
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert retransmission_gaps(times) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert owner.timeouts == [32.0] and tx.state is NonInviteClientState.terminated
    assert layer.pending() == 0 and layer.client_count() == 0


def test_non_invite_proceeding_retransmits_every_t2_then_timer_k(clock: VirtualClock, wire: Wire,
                                                                 layer: TransactionLayer) -> None:
    owner = Owner(clock)
    bye = request("BYE")
    tx = send(layer, owner, bye)
    assert layer.pending() == 1
    clock.advance(0.7)
    layer.received(response(bye, 100), UDP)
    assert tx.state is NonInviteClientState.proceeding and owner.responses == [(0.7, 100)]
    clock.advance(10)
    # the retransmission due at 1.5 goes out, then every T2
    assert wire.times("BYE") == [0.0, 0.5, 1.5, 5.5, 9.5]
    layer.received(response(bye, 200), UDP)
    assert tx.state is NonInviteClientState.completed and owner.responses[-1] == (10.7, 200)
    assert layer.pending() == 0
    layer.received(response(bye, 200), UDP)  # a retransmission: absorbed
    assert len(owner.responses) == 2
    clock.advance(4.9)
    assert tx.state is NonInviteClientState.completed and layer.client_count() == 1
    clock.advance(0.2)  # timer K = T4
    assert tx.state is NonInviteClientState.terminated and layer.client_count() == 0
    assert wire.times("BYE") == [0.0, 0.5, 1.5, 5.5, 9.5] and owner.timeouts == []


def test_non_invite_over_tcp_ends_with_its_answer(clock: VirtualClock, wire: Wire, layer: TransactionLayer) -> None:
    owner = Owner(clock)
    options = request("OPTIONS", peer=TCP)
    tx = send(layer, owner, options, TCP)
    clock.advance(20)
    layer.received(response(options, 200), TCP)
    assert tx.state is NonInviteClientState.terminated and layer.client_count() == 0  # timer K = 0
    assert wire.times("OPTIONS") == [0.0]


async def test_final_response_waits_on_the_clock(clock: VirtualClock, layer: TransactionLayer) -> None:
    waiter = asyncio.ensure_future(layer.final_response(request("OPTIONS"), UDP, 5.0))
    await clock.run_for(4.9)
    assert not waiter.done()
    await clock.run_for(0.2)
    assert waiter.done() and waiter.result() is None


# --- INVITE server ------------------------------------------------------------------------------------------------
class Served:
    def __init__(self, layer: TransactionLayer) -> None:
        self.requests: list[tuple[Message, ServerTransaction]] = []
        self.acks: list[Message] = []
        self.missing: list[InviteServerTransaction] = []
        layer.on_request = lambda msg, peer, tx: self.requests.append((msg, tx))
        layer.on_ack = lambda msg, peer: self.acks.append(msg)
        layer.on_missing_ack = self.missing.append


def incoming(method: str, *, branch: str | None = None, cseq: int = 7, peer: Peer = UDP) -> Message:
    """A request from the peer (its own Via)."""
    return Message.parse(Message.request(method, "sip:dialer@192.0.2.1", [
        ("Via", f"SIP/2.0/{peer.transport.upper()} 192.0.2.10:5060;branch={branch or new_branch()}"),
        ("Max-Forwards", "70"), ("From", "<sip:carrier@192.0.2.10>;tag=theirs"),
        ("To", "<sip:dialer@192.0.2.1>;tag=ours"), ("Call-ID", "call-1"), ("CSeq", f"{cseq} {method}")]).encode())


def test_reinvite_answered_200_is_retransmitted_per_timer_g_and_timer_h_reports_the_missing_ack(
        clock: VirtualClock, wire: Wire, layer: TransactionLayer) -> None:
    served = Served(layer)
    reinvite = incoming("INVITE")
    layer.received(reinvite, UDP)
    [(msg, tx)] = served.requests
    assert isinstance(tx, InviteServerTransaction) and tx.state is InviteServerState.proceeding
    tx.respond(msg.response(200))
    assert tx.state is InviteServerState.completed
    clock.advance(20)
    layer.received(incoming("INVITE", branch=reinvite.via.branch), UDP)  # the INVITE again: the 200 again
    assert wire.times("200")[-1] == 20.0
    clock.advance(11.9)
    assert served.missing == []
    clock.advance(0.2)
    times = [t for t in wire.times("200") if t != 20.0]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # G: 0.5, 1, 2, 4, then T2
    assert served.missing == [tx] and tx.state is InviteServerState.terminated  # timer H at 64·T1
    assert layer.server_count() == 0 and not layer._invite_acks and clock.next_deadline() is None
    assert len(served.requests) == 1


def test_ack_of_our_200_confirms_and_timer_i_cleans_up(clock: VirtualClock, wire: Wire,
                                                       layer: TransactionLayer) -> None:
    served = Served(layer)
    layer.received(incoming("INVITE"), UDP)
    [(msg, tx)] = served.requests
    assert isinstance(tx, InviteServerTransaction)
    tx.respond(msg.response(100))
    tx.respond(msg.response(200))
    clock.advance(2.0)
    layer.received(incoming("ACK"), UDP)  # the ACK of a 2xx: a new branch, same Call-ID and CSeq number
    assert tx.state is InviteServerState.confirmed and len(served.acks) == 1  # passed on: end to end
    assert wire.times("200") == [0.0, 0.5, 1.5]
    layer.received(incoming("ACK"), UDP)  # retransmitted: absorbed by the transaction, still the dialog's news
    assert tx.state is InviteServerState.confirmed
    clock.advance(4.9)
    assert layer.server_count() == 1
    clock.advance(0.2)  # timer I = T4
    assert tx.state is InviteServerState.terminated and layer.server_count() == 0 and not layer._invite_acks
    clock.advance(60)
    assert served.missing == [] and wire.times("200") == [0.0, 0.5, 1.5]


def test_refused_invite_is_acked_on_its_own_branch(clock: VirtualClock, wire: Wire, layer: TransactionLayer) -> None:
    served = Served(layer)
    invite = incoming("INVITE")
    layer.received(invite, UDP)
    [(msg, tx)] = served.requests
    assert isinstance(tx, InviteServerTransaction)
    tx.respond(msg.response(491))
    clock.advance(1.0)
    layer.received(incoming("ACK", branch=invite.via.branch), UDP)
    assert tx.state is InviteServerState.confirmed and served.acks == []  # a non-2xx's ACK is hop by hop
    assert wire.times("491") == [0.0, 0.5]
    clock.advance(5.1)
    assert tx.state is InviteServerState.terminated and served.missing == []


def test_invite_server_over_tcp_waits_for_the_ack_without_retransmitting(clock: VirtualClock, wire: Wire,
                                                                         layer: TransactionLayer) -> None:
    served = Served(layer)
    layer.received(incoming("INVITE", peer=TCP), TCP)
    [(msg, tx)] = served.requests
    assert isinstance(tx, InviteServerTransaction)
    tx.respond(msg.response(200))
    clock.advance(33)
    assert wire.times("200") == [0.0]
    assert served.missing == [tx]  # timer H runs over TCP too

    layer.received(incoming("INVITE", cseq=8, peer=TCP), TCP)
    msg2, tx2 = served.requests[-1]
    assert isinstance(tx2, InviteServerTransaction)
    tx2.respond(msg2.response(200))
    layer.received(incoming("ACK", cseq=8, peer=TCP), TCP)
    assert tx2.state is InviteServerState.terminated  # timer I = 0


# --- non-INVITE server --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("peer", "timer_j"), [(UDP, 32.0), (TCP, 0.0)])
def test_non_invite_server_answers_retransmissions_until_timer_j(clock: VirtualClock, wire: Wire,
                                                                 layer: TransactionLayer, peer: Peer,
                                                                 timer_j: float) -> None:
    served = Served(layer)
    bye = incoming("BYE", peer=peer)
    layer.received(bye, peer)
    [(msg, tx)] = served.requests
    assert isinstance(tx, NonInviteServerTransaction) and tx.state is NonInviteServerState.trying
    layer.received(incoming("BYE", branch=bye.via.branch, peer=peer), peer)  # before our answer: absorbed
    assert wire.sent == [] and len(served.requests) == 1
    tx.respond(msg.response(200))
    if timer_j:
        assert tx.state is NonInviteServerState.completed
        clock.advance(10)
        layer.received(incoming("BYE", branch=bye.via.branch, peer=peer), peer)
        assert wire.times("200") == [0.0, 10.0] and len(served.requests) == 1  # the same answer, no new request
        clock.advance(timer_j - 10 + 0.1)
    assert tx.state is NonInviteServerState.terminated and layer.server_count() == 0
    layer.received(incoming("BYE", branch=bye.via.branch, peer=peer), peer)
    assert len(served.requests) == 2  # after timer J it is a new request


def test_provisional_then_final_from_a_non_invite_server(clock: VirtualClock, wire: Wire,
                                                         layer: TransactionLayer) -> None:
    served = Served(layer)
    reg = incoming("REGISTER")
    layer.received(reg, UDP)
    [(msg, tx)] = served.requests
    assert isinstance(tx, NonInviteServerTransaction)
    tx.respond(msg.response(100))
    assert tx.state is NonInviteServerState.proceeding
    layer.received(incoming("REGISTER", branch=reg.via.branch), UDP)
    assert wire.times("100") == [0.0, 0.0]
    tx.respond(msg.response(200))
    assert tx.state is NonInviteServerState.completed


def test_closing_the_layer_stops_every_timer(clock: VirtualClock, wire: Wire, layer: TransactionLayer) -> None:
    served = Served(layer)
    owner = Owner(clock)
    send(layer, owner, request("INVITE"))
    send(layer, owner, request("BYE"))
    layer.received(incoming("INVITE"), UDP)
    msg, tx = served.requests[0]
    tx.respond(msg.response(200))
    sent = len(wire.sent)
    layer.close()
    clock.advance(100)
    assert len(wire.sent) == sent and owner.timeouts == [] and served.missing == []
