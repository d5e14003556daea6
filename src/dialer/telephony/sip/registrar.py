"""The registrar for operators' phones: REGISTER with digest authentication, bindings with expiry, and
OPTIONS pings that notice a phone gone silent within ``device_ping_s + device_timeout_s``.

A REGISTER relayed by an edge proxy that adds a ``Path`` (RFC 3327; Kamailio's ``add_path_received``) sends
every later request to the phone back through that proxy.

One binding per login (the newest REGISTER wins): an operator works at one phone. Requests to a phone go
to its Contact, unless the Contact names another host than the one the REGISTER came from: then the phone
is behind NAT and requests go to the source address of its REGISTER (what Kamailio's ``fix_nated_contact``
does); over TCP they go through the phone's own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dialer.core.clock import Cancellable, Clock
from dialer.telephony.base import EndpointEvent, EndpointEventKind
from dialer.telephony.sip.auth import AuthError, NonceIssuer, challenge_header, parse_digest, verify
from dialer.telephony.sip.config import DeviceAccount, SipSettings
from dialer.telephony.sip.message import Address, Message, ParseError, new_tag
from dialer.telephony.sip.transaction import ServerTransaction, TransactionLayer, via_header
from dialer.telephony.sip.transport import Peer

log = logging.getLogger(__name__)

Accounts = Callable[[str], Awaitable[DeviceAccount | None]]


@dataclass(frozen=True, slots=True)
class Registration:
    """A phone that is online: what the supervisor panel and the API show."""

    login: str
    contact: str        # the Contact URI the phone registered
    source: str         # transport:ip:port the REGISTER came from
    user_agent: str
    expires_at: datetime
    last_seen: datetime
    reachable: bool = True


@dataclass(eq=False, slots=True)
class _Binding:
    registration: Registration
    account: DeviceAccount
    peer: Peer
    expires_handle: Cancellable | None = None
    ping_pending: bool = False
    #: RFC 3327 Path of the REGISTER (an edge proxy such as Kamailio): requests to the phone go through it.
    path: list[str] = field(default_factory=list)
    #: Where its Contact points (used over TCP once the phone's own connection is gone).
    contact_peer: Peer | None = None


def _int(text: str | None, default: int) -> int:
    try:
        return max(0, int(text)) if text is not None else default
    except ValueError:
        return default


def _reach(contact: Address, source: Peer, path: list[str]) -> Peer:
    """Where to send requests to a phone. Through the first hop of its Path if it came through a proxy;
    over TCP, its connection; over UDP, its Contact when the Contact names the address the REGISTER came
    from, else (the phone is behind NAT) the source address."""
    if path:
        hop = Address.parse(path[0]).uri
        host, port = hop.address()
        return Peer(hop.params.get("transport", source.transport).lower(), host, port)
    if source.reliable:
        return source
    host, port = contact.uri.address()
    if host == source.host:
        return Peer("udp", host, port)
    return source


class Registrar:
    def __init__(self, settings: SipSettings, layer: TransactionLayer, accounts: Accounts, clock: Clock,
                 emit: Callable[[EndpointEvent], None], local_host: Callable[[str], tuple[str, int]]) -> None:
        self.settings = settings
        self.layer = layer
        self.accounts = accounts
        self.clock = clock
        self.emit = emit
        self.local_host = local_host
        self.nonces = NonceIssuer()
        self.bindings: dict[str, _Binding] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pinger: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.device_ping_s > 0:
            self._pinger = asyncio.get_running_loop().create_task(self._ping_loop(), name="sip device pings")

    async def close(self) -> None:
        for task in [*self._tasks, *([self._pinger] if self._pinger else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._pinger] if self._pinger else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for binding in self.bindings.values():
            if binding.expires_handle is not None:
                binding.expires_handle.cancel()

    def registrations(self) -> list[Registration]:
        return [b.registration for b in self.bindings.values()]

    def binding(self, login: str) -> _Binding | None:
        return self.bindings.get(login)

    def route_to(self, binding: _Binding) -> Peer:
        """Where a request to the phone goes now: over TCP its open connection, else its Contact."""
        peer = binding.peer
        if peer.reliable and not binding.path and not self.layer.transport.connected(peer):
            return binding.contact_peer or peer
        return peer

    # --- REGISTER ---------------------------------------------------------------------------------------
    def handle(self, msg: Message, peer: Peer, tx: ServerTransaction) -> None:
        task = asyncio.get_running_loop().create_task(self._register(msg, peer, tx))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _algorithms(self, account: DeviceAccount | None) -> tuple[str, ...]:
        """What this phone is offered: its own setting or the driver's default (RFC 8760's order either way).
        An unknown login gets the default, so that a challenge does not tell whether a login exists."""
        if account is not None and account.digest_algorithms:
            return account.digest_algorithms
        return self.settings.digest_algorithms

    def _challenge(self, msg: Message, tx: ServerTransaction, algorithms: tuple[str, ...],
                   stale: bool = False) -> None:
        nonce = self.nonces.issue()
        # one challenge per algorithm, the most preferred first (RFC 8760 §2.4); a phone that gives up on an
        # algorithm it lacks (baresip 1.0 on SHA-256) gets a device setting that offers MD5 alone
        headers = [("WWW-Authenticate", challenge_header(self.settings.realm, nonce, algorithm, stale=stale))
                   for algorithm in algorithms]
        tx.respond(msg.response(401, to_tag=new_tag(), headers=headers))

    async def _register(self, msg: Message, peer: Peer, tx: ServerTransaction) -> None:
        try:
            login = msg.to.uri.user or ""
        except ParseError:
            tx.respond(msg.response(400))
            return
        account = await self.accounts(login) if login else None
        algorithms = self._algorithms(account)
        auth_value = msg.get("Authorization")
        if auth_value is None:
            self._challenge(msg, tx, algorithms)
            return
        try:
            auth = parse_digest(auth_value)
        except AuthError:
            self._challenge(msg, tx, algorithms)
            return
        authentic, stale = self.nonces.check(auth.get("nonce", ""))
        if (not authentic or auth.get("realm") != self.settings.realm
                or auth.get("algorithm", "MD5").upper() not in algorithms):
            self._challenge(msg, tx, algorithms)
            return
        if stale:
            self._challenge(msg, tx, algorithms, stale=True)
            return
        if auth.get("username") != login:
            account = None
        if account is None or not verify(auth, "REGISTER", account.password):
            log.info("REGISTER of %r from %s refused: bad credentials", login, peer)
            tx.respond(msg.response(403, to_tag=new_tag()))
            return
        self._bind(msg, peer, tx, account)

    def _bind(self, msg: Message, peer: Peer, tx: ServerTransaction, account: DeviceAccount) -> None:
        login = account.login
        default_expires = _int(msg.get("Expires"), 3600)
        contacts = msg.all("Contact")
        to_tag = new_tag()
        if not contacts:  # a query: answer with the current binding
            current = self.bindings.get(login)
            extra = [("Contact", f"<{current.registration.contact}>")] if current else []
            tx.respond(msg.response(200, to_tag=to_tag, headers=extra))
            return
        if contacts[0].strip() == "*":
            self._drop(login, "unregistered")
            tx.respond(msg.response(200, to_tag=to_tag))
            return
        try:
            contact = Address.parse(contacts[0])
        except ParseError:
            tx.respond(msg.response(400, to_tag=to_tag))
            return
        expires = _int(contact.params.get("expires"), default_expires)
        if expires == 0:
            self._drop(login, "unregistered")
            tx.respond(msg.response(200, to_tag=to_tag))
            return
        if expires < self.settings.min_expires_s:
            tx.respond(msg.response(423, to_tag=to_tag, headers=[("Min-Expires", str(self.settings.min_expires_s))]))
            return
        expires = min(expires, self.settings.max_expires_s)
        now = self.clock.utcnow()
        registration = Registration(login=login, contact=str(contact.uri), source=str(peer),
                                    user_agent=msg.get("User-Agent", "") or "",
                                    expires_at=now + timedelta(seconds=expires), last_seen=now)
        old = self.bindings.get(login)
        if old is not None and old.expires_handle is not None:
            old.expires_handle.cancel()
        path = msg.all("Path")
        host, port = contact.uri.address()
        contact_peer = Peer(contact.uri.params.get("transport", peer.transport).lower(), host, port)
        binding = _Binding(registration, account, _reach(contact, peer, path), path=path, contact_peer=contact_peer)
        binding.expires_handle = self.clock.call_later(expires, self._expire, login, binding)
        self.bindings[login] = binding
        tx.respond(msg.response(200, to_tag=to_tag,
                                headers=[("Contact", f"<{contact.uri}>;expires={expires}"),
                                         *(("Path", p) for p in path), *([("Supported", "path")] if path else []),
                                         ("Date", now.strftime("%a, %d %b %Y %H:%M:%S GMT"))]))
        # a refresh is reported too: its new expiry is what the supervisor sees (sip_registrations.expires_at)
        refreshed = old is not None and old.registration.reachable
        self.emit(EndpointEvent(login, EndpointEventKind.registered, self.clock.now(),
                                detail=f"{'refreshed: ' if refreshed else ''}{contact.uri} from {peer}"))

    def _expire(self, login: str, binding: _Binding) -> None:
        if self.bindings.get(login) is binding:
            self._drop(login, "registration expired")

    def _drop(self, login: str, detail: str) -> None:
        binding = self.bindings.pop(login, None)
        if binding is None:
            return
        if binding.expires_handle is not None:
            binding.expires_handle.cancel()
        self.emit(EndpointEvent(login, EndpointEventKind.unregistered, self.clock.now(), detail=detail))

    # --- OPTIONS pings ----------------------------------------------------------------------------------
    async def _ping_loop(self) -> None:
        while True:
            await self.clock.sleep(self.settings.device_ping_s)
            for login, binding in list(self.bindings.items()):
                if not binding.ping_pending:
                    self.ping(login, binding)

    def ping(self, login: str, binding: _Binding) -> None:
        host, port = self.local_host(binding.peer.transport)
        reg = binding.registration
        headers = [("Via", via_header(binding.peer.transport, host, port)), ("Max-Forwards", "70"),
                   ("From", f"<sip:dialer@{host}:{port}>;tag={new_tag()}"),
                   ("To", f"<sip:{login}@{self.settings.realm}>"), ("Call-ID", f"ping-{new_tag()}@{host}"),
                   ("CSeq", "1 OPTIONS"), ("User-Agent", self.settings.user_agent), ("Accept", "application/sdp"),
                   *(("Route", p) for p in binding.path)]
        request = Message.request("OPTIONS", reg.contact, headers)
        binding.ping_pending = True
        deadline: list[Cancellable] = []

        def answered(response: Message) -> None:
            if (response.status or 0) < 200:
                return
            binding.ping_pending = False
            for handle in deadline:
                handle.cancel()
            if self.bindings.get(login) is not binding:
                return
            was_reachable = binding.registration.reachable
            binding.registration = replace(binding.registration, last_seen=self.clock.utcnow(), reachable=True)
            if not was_reachable:
                self.emit(EndpointEvent(login, EndpointEventKind.registered, self.clock.now(),
                                        detail="answers again"))

        def silent() -> None:
            if self.bindings.get(login) is binding:
                self.mark_unreachable(login, f"no answer to OPTIONS within {self.settings.device_timeout_s:g} s")

        def gave_up() -> None:
            binding.ping_pending = False
            silent()

        deadline.append(self.clock.call_later(self.settings.device_timeout_s, silent))
        self.layer.send_request(request, self.route_to(binding), answered, gave_up)

    def mark_unreachable(self, login: str, detail: str) -> None:
        """The phone of ``login`` does not answer (a ping, an INVITE, an in-dialog OPTIONS): report it ``unreachable``
        once; it is ``registered`` again when it answers a ping or registers anew."""
        binding = self.bindings.get(login)
        if binding is None or not binding.registration.reachable:
            return
        binding.registration = replace(binding.registration, reachable=False)
        self.emit(EndpointEvent(login, EndpointEventKind.unreachable, self.clock.now(), detail=detail))

    def touch(self, login: str) -> None:
        """Traffic from a phone proves it is alive."""
        binding = self.bindings.get(login)
        if binding is not None:
            binding.registration = replace(binding.registration, last_seen=self.clock.utcnow())
