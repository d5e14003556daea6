"""Dialog state of one call leg (RFC 3261 §12): tags, CSeq, remote target, route set, and building
in-dialog requests (ACK of a 2xx, BYE, re-INVITE) that follow the route set.

A leg is the dialer's user agent towards one peer: the customer's leg goes through a trunk, an
operator's leg to a registered phone. Requests of a leg carry the credentials of its trunk, so that a
401/407 to a BYE or re-INVITE is answered like one to the first INVITE.

The dialog's state is a table (:data:`MACHINE`). The dialer is always the caller of its legs (it sends the
INVITE), so a leg is ``early`` from its INVITE on — RFC 3261's early dialog begins with the first 1xx that carries
a To tag, and nothing the dialer does differs before it.

==========  ==========  ==========  ====================================================================
from        event       to          when
==========  ==========  ==========  ====================================================================
early       answered    confirmed   a 2xx to the INVITE: remote tag, remote target, route set (§12.1.2)
early       rejected    terminated  a 300-699 to the INVITE, or none at all (timer B)
early       abandoned   terminated  the dialer gives the leg up before it is answered (CANCEL sent or due)
early       bye         terminated  a BYE from the callee, which must not send one on an early dialog
                                    (§15), taken as the end anyway
confirmed   answered    confirmed   a 2xx to a re-INVITE: the remote target is refreshed (§12.2.1.2)
confirmed   bye         terminated  BYE sent or received (§15)
terminated  answered    terminated  a 2xx to an INVITE the dialer gave up (it crossed our CANCEL): the far
                                    end's dialog, which the driver ACKs and BYEs at once; ours stays over
terminated  rejected    terminated  the final answer (487 …) to an INVITE the dialer gave up
terminated  bye         terminated  our BYE of such a 2xx
==========  ==========  ==========  ====================================================================

A 300-699 to a re-INVITE leaves the dialog as it was (§14.1): no event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dialer.core.fsm import Machine
from dialer.telephony.sip.auth import AuthError, Credentials, pick_challenge
from dialer.telephony.sip.message import Address, Message, ParseError, Uri, new_tag
from dialer.telephony.sip.sdp import Origin
from dialer.telephony.sip.transaction import InviteClientTransaction, via_header
from dialer.telephony.sip.transport import Peer

__all__ = ["MACHINE", "DialogEvent", "DialogState", "Leg"]


class DialogState(StrEnum):
    early = "early"
    confirmed = "confirmed"
    terminated = "terminated"


class DialogEvent(StrEnum):
    answered = "answered"
    rejected = "rejected"
    abandoned = "abandoned"
    bye = "bye"


DS, DE = DialogState, DialogEvent

MACHINE: Machine[DialogState, DialogEvent] = Machine("dialog", {
    (DS.early, DE.answered): DS.confirmed,
    (DS.early, DE.rejected): DS.terminated,
    (DS.early, DE.abandoned): DS.terminated,
    (DS.early, DE.bye): DS.terminated,
    (DS.confirmed, DE.answered): DS.confirmed,
    (DS.confirmed, DE.bye): DS.terminated,
    (DS.terminated, DE.answered): DS.terminated,
    (DS.terminated, DE.rejected): DS.terminated,
    (DS.terminated, DE.bye): DS.terminated,
})


@dataclass(eq=False, slots=True)
class Leg:
    call_id: str
    local: Address          # our From (with our tag)
    remote: Address         # the peer's To (its tag once known)
    target: Uri             # Request-URI: first the dialled URI, then the peer's Contact
    peer: Peer              # where requests go (next hop)
    contact: str            # our Contact header value
    via_host: str
    via_port: int
    origin: Origin
    role: str = "customer"  # customer | operator
    #: Send every request to ``peer`` whatever the route set or Contact say (phones behind NAT).
    fixed_peer: bool = False
    credentials: Credentials | None = None
    cseq: int = 0
    route: list[str] = field(default_factory=list)
    state: DialogState = DialogState.early
    invite_tx: InviteClientTransaction | None = None
    invite: Message | None = None
    ack: Message | None = None
    provisional: bool = False
    cancel_sent: bool = False
    auth_tries: int = 0
    #: CSeq of the INVITE whose final response has been taken (its retransmissions are not news).
    final_cseq: int = 0
    #: Abandoned by us (CANCEL sent or due): a 2xx that still arrives is ACKed and BYEd.
    cancel_pending: bool = False
    #: A 2xx to our last INVITE is waiting for our ACK (3PCC holds it until the other leg answers).
    pending_ack: bool = False
    #: What we last offered or answered on this leg, and what the peer did.
    local_sdp: bytes = b""
    remote_sdp: bytes = b""
    #: Our own re-INVITE is in progress (an incoming one gets 491).
    reinviting: bool = False

    @classmethod
    def new(cls, *, call_id: str, local: Address, remote: Address, target: Uri, peer: Peer, contact: str,
            via_host: str, via_port: int, role: str, origin_host: str, credentials: Credentials | None = None,
            fixed_peer: bool = False) -> Leg:
        local.params["tag"] = new_tag()
        return cls(call_id=call_id, local=local, remote=remote, target=target, peer=peer, contact=contact,
                   via_host=via_host, via_port=via_port, origin=Origin(origin_host), role=role,
                   credentials=credentials, fixed_peer=fixed_peer)

    @property
    def remote_tag(self) -> str | None:
        return self.remote.tag

    @property
    def confirmed(self) -> bool:
        return self.state is DialogState.confirmed

    @property
    def ended(self) -> bool:
        """The dialog is over for the dialer (BYE sent or received, the leg given up or refused)."""
        return self.state is DialogState.terminated

    def fire(self, event: DialogEvent) -> DialogState:
        """Move the dialog on by ``event``; an illegal pair raises :class:`dialer.core.fsm.IllegalTransition`."""
        self.state = MACHINE.next(self.state, event)
        return self.state

    # --- building requests ------------------------------------------------------------------------------
    def _route_headers(self) -> tuple[str, list[tuple[str, str]]]:
        """(Request-URI, Route headers) per loose or strict routing (RFC 3261 §12.2.1.1)."""
        if not self.route:
            return str(self.target), []
        first = Address.parse(self.route[0]).uri
        if "lr" in first.params:
            return str(self.target), [("Route", r) for r in self.route]
        rest = [*self.route[1:], f"<{self.target}>"]
        return str(first), [("Route", r) for r in rest]

    def next_hop(self) -> Peer:
        if self.fixed_peer:
            return self.peer
        uri = Address.parse(self.route[0]).uri if self.route else self.target
        host, port = uri.address()
        transport = uri.params.get("transport", self.peer.transport).lower()
        return Peer(transport, host, port)

    def request(self, method: str, *, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                cseq: int | None = None, branch: str | None = None) -> Message:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        ruri, routes = self._route_headers()
        hop = self.next_hop()
        hdrs = [("Via", via_header(hop.transport, self.via_host, self.via_port, branch)), *routes,
                ("Max-Forwards", "70"), ("From", str(self.local)), ("To", str(self.remote)),
                ("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}")]
        if method in ("INVITE", "UPDATE"):
            hdrs.append(("Contact", self.contact))
        hdrs.extend(headers or [])
        if body:
            hdrs.append(("Content-Type", "application/sdp"))
        return Message.request(method, ruri, hdrs, body)

    def ack_for(self, invite: Message, body: bytes = b"") -> Message:
        """The ACK of a 2xx: a new transaction, same CSeq number as the INVITE (RFC 3261 §13.2.2.4)."""
        ack = self.request("ACK", body=body, cseq=invite.cseq[0])
        for name in ("Authorization", "Proxy-Authorization"):
            value = invite.get(name)
            if value is not None:
                ack.headers.append((name, value))
        return ack

    # --- taking in responses ----------------------------------------------------------------------------
    def confirm(self, response: Message) -> None:
        """A 2xx to our INVITE: the remote tag, the Contact as remote target, the route set (taken from the first
        2xx only)."""
        remote = Address.parse(response["To"])
        contact = response.contact()
        first = not self.confirmed
        self.fire(DialogEvent.answered)
        self.remote = remote
        if contact is not None:
            self.target = contact.uri
        if first:
            self.route = list(reversed(response.all("Record-Route")))
        if response.body:
            self.remote_sdp = response.body

    def authorize(self, request: Message, response: Message) -> Message | None:
        """The request again with credentials for a 401/407, or None when we cannot or already failed."""
        if self.credentials is None or self.auth_tries >= 10:
            return None
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
        try:
            challenge = pick_challenge(response.all(header))
            if request.get(answer) is not None and challenge.get("stale", "").lower() != "true":
                return None  # our answer was refused: the credentials are wrong
            method = request.method or ""
            value = self.credentials.authorization(challenge, method, request.uri or "")
        except (AuthError, ParseError):
            return None
        self.auth_tries += 1
        self.cseq += 1
        headers = [(n, v) for n, v in request.headers if n not in ("Via", "CSeq", answer)]
        via = via_header(self.next_hop().transport, self.via_host, self.via_port)
        retry = Message.request(method, request.uri or "",
                                [("Via", via), *headers, ("CSeq", f"{self.cseq} {method}"), (answer, value)],
                                request.body)
        return retry
