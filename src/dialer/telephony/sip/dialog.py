"""Dialog state of one call leg (RFC 3261 §12): tags, CSeq, remote target, route set, and building
in-dialog requests (ACK of a 2xx, BYE, re-INVITE) that follow the route set.

A leg is the dialer's user agent towards one peer: the customer's leg goes through a trunk, an
operator's leg to a registered phone. Requests of a leg carry the credentials of its trunk, so that a
401/407 to a BYE or re-INVITE is answered like one to the first INVITE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialer.telephony.sip.auth import AuthError, Credentials, pick_challenge
from dialer.telephony.sip.message import Address, Message, ParseError, Uri, new_tag
from dialer.telephony.sip.sdp import Origin
from dialer.telephony.sip.transaction import ClientTransaction, via_header
from dialer.telephony.sip.transport import Peer


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
    confirmed: bool = False
    ended: bool = False
    invite_tx: ClientTransaction | None = None
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
        """A 2xx to our INVITE: the remote tag, the Contact as remote target, the route set."""
        self.remote = Address.parse(response["To"])
        contact = response.contact()
        if contact is not None:
            self.target = contact.uri
        if not self.confirmed:
            self.route = list(reversed(response.all("Record-Route")))
        self.confirmed = True
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
