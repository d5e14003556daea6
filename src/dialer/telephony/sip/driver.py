"""``SipTelephony``: the SIP driver behind :class:`dialer.telephony.base.Telephony`.

One asyncio user agent does everything: it places calls through trunks (carriers), registers the
operators' phones, connects an answered customer to a phone by third-party call control (RFC 3725) with
media flowing directly between carrier and phone (or through a media relay, ``anchor.py``, for the calls it wants),
plays hold audio itself while the customer waits, transfers the customer (``release``, ``consult``/``complete``/
``cancel_consult``, ``transfer_external``, a phone's REFER), rescues him when his operator's phone dies, listens for
answering machines, and propagates hang-ups between the two legs. See ``docs/sip.md`` for the ladder diagrams.

Every timer (retransmissions, ring timeouts, pings, registration refreshes) runs on the injected clock, which also
stamps the events: with a :class:`~dialer.core.clock.VirtualClock` the whole driver runs in virtual time (the
sockets stay real).

A call's state is a table (:data:`CALL`):

==========  ==========  ==========  ======================================================================
from        event       to          when
==========  ==========  ==========  ======================================================================
ringing     answer      answered    the customer's 2xx (the customer waits for an operator, on hold audio)
ringing     end         ended       a 300-699, no response (timer B), the ring timeout, ``hangup``, ``close``
answered    offer       connecting  ``connect``: the operator's phone is invited
answered    end         ended       a BYE from the customer, ``hangup``, ``max_call_s``, a missing ACK
connecting  bridge      connected   both legs talk to each other (RFC 3725)
connecting  back        answered    the offer failed or was withdrawn: the customer waits again
connecting  end         ended
connected   back        answered    ``release``, a blind ``transfer_external``, or the operator's phone lost: his
                                    leg ends, the customer is re-INVITEd onto our media and waits on hold audio
connected   end         ended       a BYE from either side, ``hangup``, ``max_call_s``, a missing ACK, ``close``
==========  ==========  ==========  ======================================================================

``ended`` is final: the call's last event (its outcome, or ``hung_up``) has been emitted and the call forgotten.

Inbound calls: an INVITE outside any dialog from the address of a configured trunk (its resolved targets, or its
host when that is an address) becomes a ``ringing`` call of its own — the dialer sends 180 and reports
:class:`~dialer.telephony.base.IncomingCall`; an INVITE from anywhere else gets 403. ``answer`` sends 200 with our
media (the caller's offer answered, hold audio comes from us); the caller's ACK makes it ``answered`` (reported
``answered``), and from there it is an answered call like any other: connected to a phone by re-INVITEs of the
caller's leg (the same 3PCC flows), BYE at the end. ``hangup`` while it rings answers 486, a CANCEL from the caller
487 (``hung_up`` by the dialer or the customer), and nobody deciding within ``inbound_answer_s`` 480.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import dns.asyncresolver

import dialer.telephony.sip.sdp as sdp
from dialer.core.clock import Cancellable, Clock, SystemClock, wait_for
from dialer.core.fsm import Machine
from dialer.media.amd import AmdConfig, AmdDecision, AmdDetector, AmdResult
from dialer.telephony.base import (
    AnsweredBy,
    CallEvent,
    CallEventKind,
    CallId,
    EndpointEvent,
    EndpointEventKind,
    EndpointUnavailable,
    Event,
    IncomingCall,
    Originate,
    Side,
    TelephonyError,
    TransferRequested,
    TrunkEvent,
    TrunkUnavailable,
    UnknownCall,
)
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG, MediaAnchor, MediaRelayError
from dialer.telephony.sip.auth import Credentials
from dialer.telephony.sip.config import DeviceAccount, SipSettings, TrunkConfig
from dialer.telephony.sip.dialog import DialogEvent, Leg
from dialer.telephony.sip.holdaudio import ensure_default_hold_audio, ensure_default_message, ringback
from dialer.telephony.sip.message import Address, Message, ParseError, Uri, new_tag
from dialer.telephony.sip.registrar import Registrar, Registration, _Binding
from dialer.telephony.sip.resolve import ResolveError, Target, make_resolver, resolve
from dialer.telephony.sip.rtp import PT_PCMA, PT_PCMU, AudioError, RtpPorts, RtpSender, decode_g711, load_audio
from dialer.telephony.sip.transaction import (
    InviteServerTransaction,
    ServerTransaction,
    TransactionLayer,
    via_header,
)
from dialer.telephony.sip.transport import Peer, Transport, client_context, server_context
from dialer.telephony.sip.trunkreg import TrunkRegistration

log = logging.getLogger(__name__)

#: What the driver takes (the Allow header). Methods it knows but does not take are answered 405 with this Allow
#: (RFC 3261 §8.2.1) — never 200 and dropped: DTMF by INFO (RFC 6086) is not taken for delivered. Other methods get
#: 501. REFER (RFC 3515) is taken from the phone of a connected call only (``_on_refer``); anyone else gets 403.
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REFER"
NOT_ALLOWED = frozenset({"INFO", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH", "PRACK"})
#: How long a phone's REFER waits for the consumer to carry out a transfer before it is declined (603).
REFER_WAIT_S = 10.0
#: After the detector said "machine": the longest wait for the greeting's end (a silence) before the message plays.
GREETING_END_WAIT_S = 30.0

Accounts = Callable[[str], Awaitable[DeviceAccount | None]]


class CallState(StrEnum):
    ringing = "ringing"
    answered = "answered"
    connecting = "connecting"
    connected = "connected"
    ended = "ended"


class CallInput(StrEnum):
    answer = "answer"
    offer = "offer"
    bridge = "bridge"
    back = "back"
    end = "end"


CS, CI = CallState, CallInput

CALL: Machine[CallState, CallInput] = Machine("SIP call", {
    (CS.ringing, CI.answer): CS.answered,
    (CS.ringing, CI.end): CS.ended,
    (CS.answered, CI.offer): CS.connecting,
    (CS.answered, CI.end): CS.ended,
    (CS.connecting, CI.bridge): CS.connected,
    (CS.connecting, CI.back): CS.answered,
    (CS.connecting, CI.end): CS.ended,
    (CS.connected, CI.back): CS.answered,
    (CS.connected, CI.end): CS.ended,
})


def outcome(code: int, reason: str, response: Message | None = None) -> tuple[CallEventKind, str]:
    """The result of an unanswered call from the final SIP status (docs/sip.md, outcomes)."""
    text = f"{code} {reason}".strip()
    if code in (486, 600):
        return CallEventKind.busy, text
    if code == 603:
        return CallEventKind.rejected, text
    if code in (404, 410, 484, 604):
        return CallEventKind.failed, f"invalid number: {text}"
    if code in (408, 480, 487):
        return CallEventKind.no_answer, text
    if 300 <= code < 400:
        contacts = ", ".join(response.all("Contact")) if response is not None else ""
        return CallEventKind.failed, f"{text}; redirect not followed: {contacts or 'no Contact'}"
    return CallEventKind.failed, text


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(eq=False)
class _Trunk:
    config: TrunkConfig
    peer: Peer | None = None
    up: bool = True
    reported: bool = False
    calls: int = 0
    tokens: float = 0.0
    stamp: float = 0.0
    pinger: asyncio.Task[None] | None = None
    detail: str = ""
    #: The last OPTIONS ping (True before the first or without pings).
    pings_ok: bool = True
    ping_detail: str = ""
    #: Where its host leads, in the order to try (telephony/sip/resolve.py), and the one in use.
    targets: list[Target] = field(default_factory=list)
    target_index: int = 0
    #: Registration with the carrier, for trunks that register.
    registration: TrunkRegistration | None = None
    registrar: asyncio.Task[None] | None = None

    @property
    def credentials(self) -> Credentials | None:
        cfg = self.config
        if cfg.username is None or cfg.password is None:
            return None
        return Credentials(cfg.username, cfg.password, cfg.realm)


@dataclass(eq=False)
class _Call:
    id: CallId
    request: Originate
    trunk: _Trunk
    customer: Leg
    rtp_port: int
    state: CallState = CallState.ringing
    ringing_reported: bool = False
    operator: Leg | None = None
    endpoint: str | None = None
    endpoint_answered: bool = False
    audio: str | None = None
    #: The hold audio last asked for while waiting: it plays again when an offer to an operator fails or is
    #: withdrawn (the engine stops the music when it offers the call).
    last_audio: str | None = None
    #: ``withdraw`` asked the connect flow to stop before it invites the phone (delayed offer).
    withdrawing: bool = False
    player: RtpSender | None = None
    timers: list[Cancellable] = field(default_factory=list)
    connect_task: asyncio.Task[None] | None = None
    #: The next in-dialog OPTIONS to the operator's phone, or the deadline of the one in flight (connected calls).
    keepalive: Cancellable | None = None
    #: Why the dialer CANCELled the ringing call (ring timeout, ``hangup``): its result waits for the INVITE's final
    #: response — 487 is no answer, a 2xx that crossed the CANCEL is a person who answered and was hung up on.
    cancel_cause: str | None = None
    #: An inbound call: the caller's INVITE transaction, which we answer (180, then 200 or a refusal).
    inbound_tx: InviteServerTransaction | None = None
    #: Our 200 to the caller's INVITE is sent; his ACK makes the call ``answered``.
    inbound_answered: bool = False
    #: The call's media passes the media relay (``anchor.wants``); ``relay_sdp`` is the relay's description facing
    #: the dialer's side, where our own RTP (hold audio, ringback) goes while the customer waits.
    anchored: bool = False
    relay_started: bool = False
    relay_sdp: bytes = b""
    #: ``answered`` decided but not reported yet (the relay's answer, machine detection): a hang-up meanwhile
    #: reports it first, so that ``hung_up`` never comes without it.
    unreported_answer: CallEvent | None = None
    #: A re-INVITE of the customer outside a connect flow (back onto our media); the next flow waits for it.
    media_task: asyncio.Task[None] | None = None
    #: The customer holds (our media, hold audio) while his operator consults another endpoint.
    on_hold: bool = False
    #: A consultation (``consult``): the consulted phone's leg, its endpoint, whether it answered, its flow.
    consult: Leg | None = None
    consult_endpoint: str | None = None
    consult_answered: bool = False
    consult_task: asyncio.Task[None] | None = None
    #: An external transfer: the number, and the trunk its leg occupies while it lasts.
    external_number: str | None = None
    external_trunk: _Trunk | None = None
    #: A REFER from the operator's phone: answered 202, waiting for the consumer's transfer and its outcome.
    refer: _Refer | None = None
    #: What runs between the customer's 2xx and ``answered`` (the relay's answer, machine detection, a message left
    #: on a machine); cancelled when the call ends.
    answer_task: asyncio.Task[None] | None = None

    @property
    def inbound(self) -> bool:
        return self.inbound_tx is not None

    def move(self, event: CallInput) -> CallState:
        """The call's next state by :data:`CALL`; an illegal pair raises :class:`dialer.core.fsm.IllegalTransition`."""
        self.state = CALL.next(self.state, event)
        return self.state


@dataclass(eq=False)
class _Refer:
    """A phone's REFER (RFC 3515): its dialog's leg, the NOTIFYs' count, the 603 timer, whether a transfer was begun."""

    leg: Leg
    timer: Cancellable | None = None
    taken: bool = False


class SipTelephony:
    """The SIP driver. Construct, ``await start()``, consume ``events()``, ``await close()``."""

    def __init__(self, settings: SipSettings, trunks: Sequence[TrunkConfig], accounts: Accounts, *,
                 clock: Clock | None = None, anchor: MediaAnchor | None = None,
                 amd: AmdConfig | None = None) -> None:
        self.settings = settings
        #: The answering-machine detector's parameters (``Originate.detect_machine``; dialer/media/amd.py).
        self.amd = amd or AmdConfig()
        #: The media relay calls may pass (sip/anchor.py); None: media flows directly between the peers.
        self.anchor = anchor
        self._background: set[asyncio.Task[None]] = set()
        #: How long a phone's REFER waits for the consumer's transfer before it is declined (603).
        self.refer_wait_s = REFER_WAIT_S
        self.clock: Clock = clock or SystemClock()
        self.accounts = accounts
        self._trunks: dict[int, _Trunk] = {t.id: _Trunk(t) for t in trunks}
        self.transport = Transport(self.layer_received)
        self.layer = TransactionLayer(self.transport, t1=settings.t1_s, t2=settings.t2_s, clock=self.clock)
        self.layer.on_request = self._on_request
        self.layer.on_stray_response = self._on_stray_response
        self.layer.on_missing_ack = self._on_missing_ack
        self.layer.on_ack = self._on_ack
        self.registrar = Registrar(settings, self.layer, accounts, self.clock, self._emit, self.local_address)
        self.rtp = RtpPorts(settings.bind_host, settings.rtp_port_min, settings.rtp_port_max)
        self._calls: dict[CallId, _Call] = {}
        self._legs: dict[str, tuple[_Call, Leg]] = {}
        self._by_endpoint: dict[str, _Call] = {}
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._dns: dict[str, str] = {}
        self._dns_resolver: dns.asyncresolver.Resolver | None = None
        self._host = settings.public_host or settings.bind_host
        self._started = False
        self._closed = False
        self._bad_audio: set[str] = set()

    # --- lifecycle ----------------------------------------------------------------------------------------
    def layer_received(self, msg: Message, peer: Peer) -> None:
        self.layer.received(msg, peer)

    async def start(self) -> None:
        self.layer.bind_loop()
        tls = None
        if self.settings.tls_port is not None:
            if not self.settings.tls_cert_file:
                raise TelephonyError("SIP over TLS needs a certificate (tls_cert_file) for its listener")
            tls = server_context(self.settings.tls_cert_file, self.settings.tls_key_file)
        await self.transport.start(self.settings.bind_host, self.settings.bind_port, tcp=self.settings.tcp,
                                   tls=tls, tls_port=self.settings.tls_port)
        if self.settings.public_host is None:
            self._host = self.transport.host if self.transport.host not in ("0.0.0.0", "::") else _outbound_ip()
        self.rtp.host = self.settings.bind_host
        self.registrar.start()
        if self.settings.hold_audio_dir and self.settings.default_hold_audio:
            await asyncio.to_thread(ensure_default_hold_audio, self.settings.hold_audio_dir,
                                    self.settings.default_hold_audio)
        if self.settings.hold_audio_dir and self.settings.default_message:
            await asyncio.to_thread(ensure_default_message, self.settings.hold_audio_dir, self.settings.default_message)
        self._started = True
        for trunk in self._trunks.values():
            await self._start_trunk(trunk)

    async def close(self) -> None:
        if self._closed:
            return
        for call in list(self._calls.values()):
            if call.inbound and call.state is CallState.ringing and not call.inbound_answered:
                self._refuse(call, 503, "dialer shut down")
            elif call.inbound and call.state is CallState.ringing:
                self._teardown(call, Side.dialer, "dialer shut down")
            elif call.state is CallState.ringing:
                self._finish(call, CallEvent(call.id, CallEventKind.no_answer, self.clock.now(), cause="cancelled"))
                self._cancel(call.customer)
            else:
                self._teardown(call, Side.dialer, "dialer shut down")
        self._closed = True
        if self._background:  # the relay's deletes of the calls just ended, answers in flight
            with contextlib.suppress(TimeoutError):
                await wait_for(self.clock, asyncio.gather(*self._background, return_exceptions=True), 2.0)
            for task in list(self._background):
                task.cancel()
        for trunk in self._trunks.values():
            await self._stop_trunk(trunk)
        await self.registrar.close()
        # give the last BYEs and CANCELs a moment to be answered (retransmitted if lost)
        for _ in range(max(1, int(4 * self.settings.t1_s / 0.01))):
            if not self.layer.pending():
                break
            await self.clock.sleep(0.01)
        self.layer.close()
        self.rtp.close()
        await self.transport.close()
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    def _emit(self, event: Event) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def local_address(self, transport: str = "udp") -> tuple[str, int]:
        """The host and port to advertise (Via, Contact) for requests sent over ``transport``."""
        if transport == "tls" and self.transport.tls_port:
            return self._host, self.transport.tls_port
        return self._host, self.transport.port

    def _contact(self, peer: Peer) -> str:
        host, port = self.local_address(peer.transport)
        return f"<sip:dialer@{host}:{port}" + (f";transport={peer.transport}>" if peer.reliable else ">")

    def registrations(self) -> list[Registration]:
        """The phones online now (login, contact, source, user agent, expiry, last seen, reachable)."""
        return self.registrar.registrations()

    def trunk_states(self) -> dict[int, bool]:
        """Trunk id → up."""
        return {tid: t.up for tid, t in self._trunks.items()}

    def live_calls(self) -> int:
        return len(self._calls)

    # --- trunks -------------------------------------------------------------------------------------------
    async def set_trunks(self, trunks: Sequence[TrunkConfig]) -> None:
        """Reconfigure at runtime: new trunks start, removed ones stop taking calls, changed ones restart
        their pings. Calls in progress keep their trunk."""
        wanted = {t.id: t for t in trunks}
        for tid in list(self._trunks):
            if tid not in wanted:
                await self._stop_trunk(self._trunks.pop(tid))
        for tid, cfg in wanted.items():
            known = self._trunks.get(tid)
            if known is not None and known.config == cfg:
                continue
            if known is None:
                trunk = self._trunks[tid] = _Trunk(cfg)
            else:
                trunk = known
                await self._stop_trunk(trunk)
                trunk.config, trunk.up, trunk.reported = cfg, True, False
                trunk.pings_ok, trunk.ping_detail = True, ""
            if self._started:
                await self._start_trunk(trunk)

    async def _start_trunk(self, trunk: _Trunk) -> None:
        cfg = trunk.config
        trunk.tokens, trunk.stamp = max(1.0, cfg.calls_per_second), self.clock.now()
        try:
            trunk.targets = await resolve(cfg.host, cfg.port, cfg.transport, cfg.dns_lookup,
                                          resolver=self._resolver() if cfg.dns_lookup != "a" else None)
        except ResolveError as err:
            trunk.peer, trunk.targets = None, []
            self._trunk_state(trunk, False, str(err))
            return
        if not trunk.targets:
            trunk.peer = None
            self._trunk_state(trunk, False, f"{cfg.host} leads nowhere")
            return
        self._use_target(trunk, 0)
        assert trunk.peer is not None
        loop = asyncio.get_running_loop()
        if cfg.registration:
            if cfg.username is None or cfg.password is None:
                self._trunk_state(trunk, False, "registration needs a username and a password")
                return
            trunk.registration = TrunkRegistration(self.layer, cfg, trunk.peer, self.local_address,
                                                   self.settings.user_agent, lambda ok, detail: self._health(trunk))
            self._health(trunk)  # down until registered
            trunk.registrar = loop.create_task(trunk.registration.run(), name=f"sip trunk {cfg.name} registration")
        if cfg.options_interval_s > 0:
            trunk.pinger = loop.create_task(self._ping_trunk_loop(trunk), name=f"sip trunk {cfg.name} pings")

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self._dns_resolver is None:
            self._dns_resolver = make_resolver(self.settings.dns_servers)
        return self._dns_resolver

    def _use_target(self, trunk: _Trunk, index: int) -> None:
        """Send the trunk's requests to its ``index``-th target (RFC 3263 §4.3: the next one when one fails)."""
        cfg = trunk.config
        target = trunk.targets[index]
        trunk.target_index = index
        self._dns[cfg.host] = target.host
        trunk.peer = Peer(target.transport, target.host, target.port)
        if target.transport == "tls":
            self.transport.tls_peer(trunk.peer, client_context(self.settings.tls_ca_file, verify=cfg.tls_verify),
                                    cfg.host)
        if target.via:
            log.info("trunk %s: %s (%s)", cfg.name, trunk.peer, target.via)

    async def _stop_trunk(self, trunk: _Trunk) -> None:
        """Stop pinging a trunk and remove its registration."""
        await _stop(trunk.pinger)
        await _stop(trunk.registrar)
        trunk.pinger = trunk.registrar = None
        if trunk.registration is not None:
            await trunk.registration.unregister()
            trunk.registration = None

    def _health(self, trunk: _Trunk) -> None:
        """Up when registered (if the trunk registers) and answering pings (if it is pinged)."""
        reg = trunk.registration
        if reg is not None and not reg.registered:
            self._trunk_state(trunk, False, reg.detail)
        elif not trunk.pings_ok:
            self._trunk_state(trunk, False, trunk.ping_detail)
        else:
            self._trunk_state(trunk, True, "; ".join(d for d in (reg.detail if reg else "", trunk.ping_detail) if d))

    def _trunk_state(self, trunk: _Trunk, up: bool, detail: str) -> None:
        changed = up != trunk.up or not trunk.reported
        trunk.up, trunk.reported, trunk.detail = up, True, detail
        if changed:
            (log.info if up else log.warning)("trunk %s is %s: %s", trunk.config.name, "up" if up else "down", detail)
            self._emit(TrunkEvent(trunk.config.id, trunk.config.name, up, self.clock.now(), detail))

    async def _ping_trunk_loop(self, trunk: _Trunk) -> None:
        while True:
            trunk.pings_ok, trunk.ping_detail = await self.ping_trunk(trunk)
            if not trunk.pings_ok and len(trunk.targets) > 1 and trunk.registration is None:
                # the next target of its SRV records is tried at once; the trunk is down while none answers
                for _ in range(len(trunk.targets) - 1):
                    self._use_target(trunk, (trunk.target_index + 1) % len(trunk.targets))
                    trunk.pings_ok, trunk.ping_detail = await self.ping_trunk(trunk)
                    if trunk.pings_ok:
                        break
            self._health(trunk)
            await self.clock.sleep(trunk.config.options_interval_s)

    async def ping_trunk(self, trunk: _Trunk) -> tuple[bool, str]:
        """One OPTIONS to the trunk: (answered, what happened). Any answer shows the trunk is alive."""
        peer = trunk.peer
        if peer is None:
            return False, "not resolved"
        cfg = trunk.config
        host, port = self.local_address(peer.transport)
        uri = f"sip:{cfg.host}:{peer.port}" + (f";transport={peer.transport}" if peer.reliable else "")
        headers = [("Via", via_header(peer.transport, host, port)), ("Max-Forwards", "70"),
                   ("From", f"<sip:dialer@{host}:{port}>;tag={new_tag()}"), ("To", f"<sip:{cfg.host}>"),
                   ("Call-ID", f"{uuid.uuid4().hex}@{host}"), ("CSeq", "1 OPTIONS"),
                   ("User-Agent", self.settings.user_agent), ("Accept", "application/sdp")]
        resp = await self.layer.final_response(Message.request("OPTIONS", uri, headers), peer, cfg.options_timeout_s)
        if resp is None:
            why = self.transport.last_error.get(peer)
            return False, f"no answer to OPTIONS within {cfg.options_timeout_s:g} s" + (f" ({why})" if why else "")
        return True, f"OPTIONS answered {resp.status} {resp.reason}"

    def _pick_trunk(self, request: Originate) -> _Trunk:
        pinned = request.variables.get("trunk_id")
        if pinned is not None:
            try:
                candidates = [self._trunks[int(pinned)]]
            except (KeyError, ValueError):
                raise TrunkUnavailable(f"no trunk {pinned}") from None
        else:
            candidates = list(self._trunks.values())
        if not candidates:
            raise TrunkUnavailable("no trunk configured")
        now = self.clock.now()
        reasons = []
        for trunk in candidates:
            cfg = trunk.config
            if not trunk.up or trunk.peer is None:
                reasons.append(f"{cfg.name}: down ({trunk.detail})")
                continue
            if cfg.max_concurrent and trunk.calls >= cfg.max_concurrent:
                reasons.append(f"{cfg.name}: {trunk.calls} calls, the limit")
                continue
            if cfg.calls_per_second > 0:
                cap = max(1.0, cfg.calls_per_second)
                trunk.tokens = min(cap, trunk.tokens + (now - trunk.stamp) * cfg.calls_per_second)
                trunk.stamp = now
                if trunk.tokens < 1.0:
                    reasons.append(f"{cfg.name}: over {cfg.calls_per_second:g} calls/s")
                    continue
                trunk.tokens -= 1.0
            return trunk
        raise TrunkUnavailable("; ".join(reasons))

    # --- placing calls ------------------------------------------------------------------------------------
    async def originate(self, request: Originate) -> CallId:
        if self._closed or not self._started:
            raise TrunkUnavailable("the SIP driver is not running")
        trunk = self._pick_trunk(request)
        cfg = trunk.config
        assert trunk.peer is not None
        host, port = self.local_address(trunk.peer.transport)
        number = request.number.removeprefix("+") if cfg.strip_plus else request.number
        caller = request.caller_id or cfg.caller_id or "anonymous"
        if cfg.strip_plus:
            caller = caller.removeprefix("+")
        tparams = {"transport": trunk.peer.transport} if trunk.peer.reliable else {}
        target = Uri("sip", cfg.dial_prefix + number, cfg.host, trunk.peer.port, dict(tparams))
        call_id = CallId(f"{uuid.uuid4().hex}@{host}")
        contact = self._contact(trunk.peer)
        leg = Leg.new(call_id=call_id, local=Address(Uri("sip", caller, cfg.from_domain or cfg.host)),
                      remote=Address(Uri("sip", cfg.dial_prefix + number, cfg.host)), target=target,
                      peer=trunk.peer, contact=contact, via_host=host, via_port=port, role="customer",
                      origin_host=host, credentials=trunk.credentials)
        call = _Call(call_id, request, trunk, leg, self.rtp.allocate())
        # bound before it is offered, so that early media from the carrier finds a socket (no ICMP back)
        try:
            await self.rtp.socket(call.rtp_port)
        except OSError as err:
            raise TrunkUnavailable(f"cannot bind RTP port {call.rtp_port}: {err}") from err
        leg.local_sdp = sdp.offer(leg.origin, host, call.rtp_port)
        self._calls[call_id] = call
        self._legs[call_id] = (call, leg)
        trunk.calls += 1
        self._emit(CallEvent(call_id, CallEventKind.trying, self.clock.now()))
        call.anchored = self._wants_relay(request)
        if call.anchored:
            # our offer reaches the carrier through the relay, which stands for us toward the customer
            try:
                relayed = await self._relay(call, "offer", leg.local_sdp, offerer=DIALER_TAG)
            except MediaRelayError as err:
                leg.fire(DialogEvent.abandoned)
                self._forget_leg(leg)
                self._finish(call, CallEvent(call_id, CallEventKind.failed, self.clock.now(), cause=str(err)))
                return call_id
            if call.state is not CallState.ringing or leg.cancel_pending:
                # hung up while the relay answered: nothing was sent, the relay forgets the call
                self._spawn(self._relay_delete(call_id), f"sip relay delete {call_id}")
                return call_id
            leg.local_sdp = sdp.with_origin(relayed, leg.origin)
        invite = leg.request("INVITE", body=leg.local_sdp,
                             headers=[("User-Agent", self.settings.user_agent), ("Allow", ALLOW)])
        self._send_invite(leg, invite, trunk.peer, lambda r: self._customer_provisional(call, r),
                          lambda r: self._customer_final(call, r), lambda r: self._customer_crossed(call, r))
        call.timers.append(self.clock.call_later(request.answer_timeout_s, self._ring_timeout, call))
        return call_id

    def _send_invite(self, leg: Leg, invite: Message, peer: Peer, on_provisional: Callable[[Message], None],
                     on_final: Callable[[Message | None], None],
                     on_crossed: Callable[[Message], None] | None = None) -> None:
        """Send an INVITE on ``leg``: answers challenges, CANCELs when asked to, ACKs and BYEs a 2xx that
        arrives after we gave up (and tells ``on_crossed``), re-ACKs retransmitted 2xx; calls ``on_final`` once per
        INVITE otherwise."""
        leg.invite = invite
        leg.provisional = False
        leg.reinviting = leg.confirmed
        cseq = invite.cseq[0]

        def on_response(resp: Message) -> None:
            code = resp.status or 0
            if code < 200:
                leg.provisional = True
                if leg.cancel_pending and not leg.cancel_sent:
                    self._send_cancel(leg)
                if not leg.cancel_pending:
                    on_provisional(resp)
                return
            if leg.final_cseq == cseq:  # a retransmitted 2xx: our ACK was lost
                if code < 300 and leg.ack is not None and leg.ack.cseq[0] == cseq:
                    self.layer.send_stateless(leg.ack, self._hop(leg))
                return
            if code in (401, 407) and not leg.cancel_pending:
                retry = leg.authorize(invite, resp)
                if retry is not None:
                    self._send_invite(leg, retry, peer, on_provisional, on_final, on_crossed)
                    return
            leg.final_cseq = cseq
            leg.reinviting = False
            leg.pending_ack = code < 300
            if code < 300 and leg.cancel_pending:
                # the 2xx crossed our CANCEL: the call is up at the far end; ACK it, then BYE it
                leg.confirm(resp)
                self._ack(leg, b"" if invite.body else leg.local_sdp)
                self._bye(leg)
                if on_crossed is not None:
                    on_crossed(resp)
                return
            on_final(resp)

        def on_timeout() -> None:
            if leg.final_cseq != cseq:
                leg.final_cseq = cseq
                leg.reinviting = False
                on_final(None)

        leg.invite_tx = self.layer.send_invite(invite, peer, on_response, on_timeout)

    def _customer_provisional(self, call: _Call, resp: Message) -> None:
        if call.state is CallState.ringing and resp.status in (180, 183) and not call.ringing_reported:
            call.ringing_reported = True
            self._emit(CallEvent(call.id, CallEventKind.ringing, self.clock.now(), code=resp.status,
                                 cause=f"{resp.status} {resp.reason}"))

    def _customer_final(self, call: _Call, resp: Message | None) -> None:
        leg = call.customer
        if resp is None:
            leg.fire(DialogEvent.rejected)
            if call.state is CallState.ringing:
                self._finish(call, CallEvent(call.id, CallEventKind.failed, self.clock.now(),
                                             cause="no response from the trunk"))
            self._forget_leg(leg)
            return
        code = resp.status or 0
        if code >= 300:
            leg.fire(DialogEvent.rejected)
            if call.state is CallState.ringing:
                kind, cause = outcome(code, resp.reason, resp)
                if call.cancel_cause is not None:  # our CANCEL ended it (487): the reason is ours
                    kind, cause = CallEventKind.no_answer, call.cancel_cause
                self._finish(call, CallEvent(call.id, kind, self.clock.now(), cause=cause, code=code))
            self._forget_leg(leg)
            return
        leg.confirm(resp)
        self._ack(leg, b"")
        if call.state is not CallState.ringing:  # ended meanwhile (closing): do not leave it up
            self._bye(leg)
            return
        call.move(CallInput.answer)
        for timer in call.timers:
            timer.cancel()
        call.timers = [self.clock.call_later(self.settings.max_call_s, self._too_long, call)]
        verdict = resp.get(call.trunk.config.machine_header, "") or ""
        answered_by = AnsweredBy.machine if "machine" in verdict.lower() else AnsweredBy.human
        event = CallEvent(call.id, CallEventKind.answered, self.clock.now(), answered_by=answered_by,
                          code=code, cause=f"{code} {resp.reason}")
        request = call.request
        detect = request.detect_machine and answered_by is AnsweredBy.human  # a trunk's "machine" is taken as said
        message = request.detect_machine and request.machine_message is not None
        if not (call.anchored or detect or (message and answered_by is AnsweredBy.machine)):
            self._emit(event)
            return
        call.unreported_answer = event  # until it is reported, a hang-up reports it first (as a person)
        call.answer_task = self._spawn(self._after_answer(call, resp, detect), f"sip answered {call.id}")

    async def _after_answer(self, call: _Call, resp: Message, detect: bool) -> None:
        """Between the customer's 2xx and ``answered``: the carrier's answer passes the relay (its reply is where our
        own RTP goes) and recording starts when asked; with ``detect_machine`` the customer's first seconds are
        analysed (dialer/media/amd.py) and ``answered`` says who answered — stamped with the moment of the 2xx, so the
        time spent deciding counts toward the engine's wait. A relay that fails ends the call: BYE, and ``failed``
        "media relay unavailable" — never an answered call without media. A machine with ``machine_message`` hears
        the message after its greeting, and the dialer hangs up ("machine message left")."""
        try:
            call.relay_sdp = await self._relay(call, "answer", resp.body, offerer=DIALER_TAG)
            if call.request.record and call.state is CallState.answered and call.anchored:
                await self._recording(call, start=True)
        except MediaRelayError as err:
            if call.state is CallState.answered:
                log.warning("call %s: %s; hanging up", call.id, err)
                call.unreported_answer = None
                self._end_leg(call.customer)
                self._finish(call, CallEvent(call.id, CallEventKind.failed, self.clock.now(), cause=str(err),
                                             code=resp.status))
            return
        event = call.unreported_answer
        if detect and event is not None:
            decision = await self._detect_machine(call)
            if call.state is not CallState.answered:
                return
            if decision.result is AmdResult.machine:
                event = call.unreported_answer = replace(event, answered_by=AnsweredBy.machine,
                                                         cause=f"{event.cause}; AMD {decision.cause}")
            else:  # notsure is taken for a person: an operator rather than a hang-up on one
                event = call.unreported_answer = replace(event, cause=f"{event.cause}; AMD {decision.cause}")
        self._report_answer(call)
        if call.answer_task is asyncio.current_task() and (event is None or event.answered_by is AnsweredBy.human):
            call.answer_task = None
        if (event is not None and event.answered_by is AnsweredBy.machine and call.request.detect_machine
                and call.request.machine_message is not None and call.state is CallState.answered):
            await self._leave_message(call, call.request.machine_message)

    async def _detect_machine(self, call: _Call) -> AmdDecision:
        """Feed the customer's RTP (arriving on the call's port) to a detector until it decides, or its total
        analysis time (plus a second of slack for a late stream) passes on the clock: then it says what it heard."""
        detector = AmdDetector(self.amd)
        decided: asyncio.Future[AmdDecision] = asyncio.get_running_loop().create_future()

        def on_payload(payload_type: int, payload: bytes) -> None:
            if decided.done() or payload_type not in (PT_PCMU, PT_PCMA):
                return
            decision = detector.feed(decode_g711(payload_type, payload))
            if decision is not None:
                decided.set_result(decision)

        unsubscribe = self.rtp.listen(call.rtp_port, None, on_payload)
        try:
            decision = await wait_for(self.clock, asyncio.shield(decided), self.amd.total_analysis_ms / 1000 + 1.0)
        except TimeoutError:
            decision = detector.finish()
        finally:
            unsubscribe()
        log.info("call %s: answering-machine detection: %s (%s after %d ms of audio)", call.id, decision.result,
                 decision.cause, decision.decided_after_ms)
        return decision

    async def _leave_message(self, call: _Call, audio: str) -> None:
        """A machine's greeting ends (a silence of the detector's ``after_greeting_silence_ms``: nothing above its
        silence threshold, or no packet at all), the message plays once, and the dialer hangs up."""
        quiet_s = self.amd.after_greeting_silence_ms / 1000
        last_voice = self.clock.now()

        def on_payload(payload_type: int, payload: bytes) -> None:
            nonlocal last_voice
            if payload_type in (PT_PCMU, PT_PCMA):
                pcm = decode_g711(payload_type, payload)
                samples = memoryview(pcm).cast("h")
                if samples and sum(abs(x) for x in samples) / len(samples) >= self.amd.silence_threshold:
                    last_voice = self.clock.now()

        unsubscribe = self.rtp.listen(call.rtp_port, None, on_payload)
        deadline = self.clock.now() + GREETING_END_WAIT_S
        try:
            while call.state is CallState.answered and self.clock.now() - last_voice < quiet_s:
                if self.clock.now() >= deadline:
                    break
                await self.clock.sleep(0.05)
        finally:
            unsubscribe()
        if call.state is not CallState.answered:
            return
        media = sdp.audio_media(self._media_sdp(call))
        codec = sdp.pick_codec(media) if media is not None else None
        try:
            if media is None or codec is None:
                raise TelephonyError("the far end gave no G.711 audio address")
            path = self._audio_path(audio)
            encoded = await asyncio.to_thread(load_audio, path, codec, os.stat(path).st_mtime)
            sock = await self.rtp.socket(call.rtp_port)
        except (OSError, AudioError, TelephonyError) as err:
            log.warning("call %s: the machine message %r cannot be played (%s)", call.id, audio, err)
            if call.state is CallState.answered:
                self._teardown(call, Side.dialer, f"machine message not left: {err}")
            return
        if call.state is not CallState.answered:
            return
        self._stop_player(call)
        call.player = RtpSender(sock, (media.host, media.port), codec, encoded, clock=self.clock)
        call.player.start()
        await self.clock.sleep(len(encoded) / 8000)  # G.711: a byte a sample, 8000 samples a second
        if call.state is CallState.answered:
            self._teardown(call, Side.dialer, "machine message left")

    def _report_answer(self, call: _Call) -> None:
        event, call.unreported_answer = call.unreported_answer, None
        if event is not None and call.state is not CallState.ended:
            self._emit(event)

    def _wants_relay(self, request: Originate) -> bool:
        if self.anchor is None:
            return False
        try:
            return bool(self.anchor.wants(request))
        except Exception:
            log.exception("the media relay could not tell whether it takes a call; it passes the relay")
            return True

    async def _relay(self, call: _Call, op: str, body: bytes, *, offerer: str) -> bytes:
        """``body`` through the relay (sip/anchor.py): ``offer`` — ``offerer``'s offer, returns what goes to the other
        side; ``answer`` — the other side's answer to ``offerer``'s offer, returns what goes to ``offerer``. Unchanged
        for a call not anchored. Whatever the relay raises becomes :class:`MediaRelayError`."""
        if not call.anchored or self.anchor is None:
            return body
        other = CUSTOMER_TAG if offerer == DIALER_TAG else DIALER_TAG
        try:
            if op == "offer":
                out = await self.anchor.offer(call.id, body, from_tag=offerer,
                                              to_tag=other if call.relay_started else None)
                call.relay_started = True
            else:
                out = await self.anchor.answer(call.id, body, from_tag=offerer, to_tag=other)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            raise MediaRelayError(f"media relay unavailable: {err}") from err
        if not out:
            raise MediaRelayError("media relay unavailable: it returned no SDP")
        return out

    async def _recording(self, call: _Call, *, start: bool) -> None:
        assert self.anchor is not None
        try:
            if start:
                await self.anchor.start_recording(call.id)
            else:
                await self.anchor.stop_recording(call.id)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            raise MediaRelayError(f"media relay unavailable: {err}") from err

    def _media_sdp(self, call: _Call) -> bytes:
        """Where the dialer's own RTP goes to reach the customer: the relay when anchored, else the customer."""
        return call.relay_sdp if call.anchored else call.customer.remote_sdp

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(_run(coro), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- recording (Records) ------------------------------------------------------------------------------
    async def start_recording(self, call_id: CallId) -> None:
        """Start (or resume) recording an answered call through the media relay. Raises UnknownCall; TelephonyError
        for a call whose media does not pass the relay."""
        await self._record(call_id, start=True)

    async def stop_recording(self, call_id: CallId) -> None:
        """Stop recording; what was recorded is kept. Raises UnknownCall; TelephonyError when not anchored."""
        await self._record(call_id, start=False)

    async def _record(self, call_id: CallId, *, start: bool) -> None:
        call = self._calls.get(call_id)
        if call is None or call.state in (CallState.ringing, CallState.ended):
            raise UnknownCall(f"call {call_id} is not an answered call")
        if not call.anchored or self.anchor is None:
            raise TelephonyError(f"call {call_id}: its media does not pass the media relay; it cannot be recorded")
        await self._recording(call, start=start)

    def _customer_crossed(self, call: _Call, resp: Message) -> None:
        """A 2xx crossed our CANCEL (already ACKed and BYEd): someone answered and the dialer hung up on him. The
        call is reported ``answered``, then ``hung_up`` by the dialer, so that it counts as an answered call nobody
        talked to (abandoned), not as a ring timeout."""
        if call.state is not CallState.ringing:
            return
        call.move(CallInput.answer)
        verdict = resp.get(call.trunk.config.machine_header, "") or ""
        answered_by = AnsweredBy.machine if "machine" in verdict.lower() else AnsweredBy.human
        code = resp.status or 200
        self._emit(CallEvent(call.id, CallEventKind.answered, self.clock.now(), answered_by=answered_by, code=code,
                             cause=f"{code} {resp.reason}"))
        self._finish(call, CallEvent(call.id, CallEventKind.hung_up, self.clock.now(), side=Side.dialer, code=code,
                                     cause=f"answered as the dialer cancelled ({call.cancel_cause}): hung up"))

    def _cancel_ringing(self, call: _Call, cause: str, *, silence_failed: bool) -> None:
        """End a ringing call: CANCEL it and report the result when the INVITE's final response comes (487: no answer
        with ``cause``; a crossing 2xx: answered and hung up). Nothing can be CANCELled before a provisional response
        (RFC 3261 §9.1): the call ends at once — as failed when ``silence_failed`` (the ring timeout of a trunk that
        sent nothing at all is a trunk error, not a customer who did not answer), else as not answered. A final
        response that never comes is given up after 64·T1."""
        leg = call.customer
        if not leg.provisional:
            if silence_failed:
                event = CallEvent(call.id, CallEventKind.failed, self.clock.now(),
                                  cause=f"no response from the trunk within the {cause}")
            else:
                event = CallEvent(call.id, CallEventKind.no_answer, self.clock.now(), cause=cause)
            self._finish(call, event)
            self._cancel(leg)  # a late provisional still gets its CANCEL, a late 2xx its ACK and BYE
            return
        call.cancel_cause = cause
        self._cancel(leg)

        def gave_up() -> None:
            if call.state is CallState.ringing:
                self._finish(call, CallEvent(call.id, CallEventKind.no_answer, self.clock.now(), cause=cause))

        call.timers.append(self.clock.call_later(64 * self.settings.t1_s, gave_up))

    def _ring_timeout(self, call: _Call) -> None:
        if call.state is not CallState.ringing or call.cancel_cause is not None:
            return
        self._cancel_ringing(call, f"ring timeout ({call.request.answer_timeout_s:g} s)", silence_failed=True)

    def _too_long(self, call: _Call) -> None:
        if call.state is not CallState.ended:
            self._teardown(call, Side.dialer, f"max call duration ({self.settings.max_call_s:g} s)")

    def _cancel(self, leg: Leg) -> None:
        """Abandon a leg whose INVITE has no final answer yet (CANCEL waits for a provisional, §9.1)."""
        leg.cancel_pending = True
        if leg.provisional and not leg.cancel_sent:
            self._send_cancel(leg)

    def _send_cancel(self, leg: Leg) -> None:
        tx = leg.invite_tx
        if tx is None or not tx.pending:
            return
        leg.cancel_sent = True
        self.layer.send_request(tx.cancel_request(), tx.peer, lambda r: None, lambda: None)

    # --- ending calls -------------------------------------------------------------------------------------
    async def hangup(self, call_id: CallId, cause: str = "normal") -> None:
        call = self._calls.get(call_id)
        if call is None or call.state is CallState.ended:
            raise UnknownCall(f"call {call_id} does not exist or has ended")
        if call.inbound and call.state is CallState.ringing:
            if call.inbound_answered:  # our 200 is out, his ACK not in yet: the dialog is ours to end
                self._teardown(call, Side.dialer, cause)
            else:
                self._refuse(call, 486, f"refused: {cause}")
            return
        if call.state is CallState.ringing:
            if call.cancel_cause is None:
                self._cancel_ringing(call, "cancelled", silence_failed=False)
            return
        self._teardown(call, Side.dialer, cause)

    def _teardown(self, call: _Call, side: Side, cause: str) -> None:
        """End an answered call: BYE (or CANCEL) what is still up on both legs, report ``hung_up``."""
        if call.state is CallState.ended:
            return
        current = asyncio.current_task()
        for task in (call.connect_task, call.media_task, call.consult_task):
            if task is not None and task is not current:
                task.cancel()
        self._end_leg(call.customer)
        op = call.operator
        endpoint = call.endpoint
        if op is not None:
            self._end_leg(op)
        if call.consult is not None:
            self._end_leg(call.consult)
        self._refer_done(call, 487, "Request Terminated")
        self._finish(call, CallEvent(call.id, CallEventKind.hung_up, self.clock.now(), side=side, cause=cause,
                                     endpoint=endpoint))

    def _end_leg(self, leg: Leg) -> None:
        if leg.ended:
            return
        if not leg.confirmed:
            self._cancel(leg)
            leg.fire(DialogEvent.abandoned)
            self._forget_leg(leg)
            return
        if leg.pending_ack and leg.invite is not None:
            # a 2xx we hold un-ACKed (3PCC in progress): ACK it, with our own answer if it made an offer
            self._ack(leg, b"" if leg.invite.body else sdp.with_origin(leg.local_sdp, leg.origin))
        if leg.reinviting:
            self._cancel(leg)
        self._bye(leg)

    def _bye(self, leg: Leg) -> None:
        leg.fire(DialogEvent.bye)
        self._forget_leg(leg)
        bye = leg.request("BYE", headers=[("User-Agent", self.settings.user_agent)])

        def answered(resp: Message) -> None:
            if resp.status in (401, 407):
                retry = leg.authorize(bye, resp)
                if retry is not None:
                    self.layer.send_request(retry, self._hop(leg), lambda r: None, lambda: None)

        self.layer.send_request(bye, self._hop(leg), answered, lambda: None)

    def _forget_leg(self, leg: Leg) -> None:
        entry = self._legs.get(leg.call_id)
        if entry is not None and entry[1] is leg:
            del self._legs[leg.call_id]

    def _finish(self, call: _Call, event: CallEvent) -> None:
        """The last event of a call; it is forgotten (its legs may still be finishing their signalling)."""
        if call.state is CallState.ended:
            return
        if event.kind is CallEventKind.hung_up and call.unreported_answer is not None:
            self._report_answer(call)  # answered, then hung up: never a hang-up of a call not reported answered
        call.unreported_answer = None
        if call.answer_task is not None and call.answer_task is not asyncio.current_task():
            call.answer_task.cancel()
        call.move(CallInput.end)
        self._calls.pop(call.id, None)
        if call.anchored and call.relay_started and self.anchor is not None:
            self._spawn(self._relay_delete(call.id), f"sip relay delete {call.id}")
        call.trunk.calls -= 1
        for timer in call.timers:
            timer.cancel()
        if call.keepalive is not None:
            call.keepalive.cancel()
        self._stop_player(call)
        if call.customer.ended or call.customer.final_cseq:
            self._forget_leg(call.customer)
        self._release_external_trunk(call)
        if call.consult_endpoint is not None:
            self._end_consult_leg(call, event.cause)
        if call.endpoint is not None:
            if self._by_endpoint.get(call.endpoint) is call:
                del self._by_endpoint[call.endpoint]
            self._emit(EndpointEvent(call.endpoint, EndpointEventKind.hung_up, event.at, detail=event.cause,
                                     call_id=call.id))
        self._emit(event)

    async def _relay_delete(self, call_id: CallId) -> None:
        assert self.anchor is not None
        try:
            await self.anchor.delete(call_id)
        except Exception as err:  # the call is over either way
            log.warning("call %s: the media relay did not delete it: %s", call_id, err)

    # --- hold audio ---------------------------------------------------------------------------------------
    async def play(self, call_id: CallId, audio: str | None) -> None:
        call = self._calls.get(call_id)
        if call is None or call.state is CallState.ended:
            raise UnknownCall(f"call {call_id} does not exist or has ended")
        call.audio = audio
        if audio is not None:
            call.last_audio = audio
        elif call.state is CallState.answered:
            call.last_audio = None  # stopped while waiting: not started again by a failed offer
        if not self._waiting(call):
            return  # audio is only sent to a customer waiting; while an operator's phone rings he hears ringback
        self._stop_player(call)
        if audio is None:
            return
        path = self._audio_path(audio)
        media = sdp.audio_media(self._media_sdp(call))
        if media is None:
            raise TelephonyError(f"call {call_id}: the far end gave no audio address")
        codec = sdp.pick_codec(media)
        if codec is None:
            raise TelephonyError(f"call {call_id}: the far end accepts neither PCMA nor PCMU")
        try:
            mtime = os.stat(path).st_mtime
            encoded = await asyncio.to_thread(load_audio, path, codec, mtime)
        except (OSError, AudioError) as err:
            if path not in self._bad_audio:  # once per file: a campaign names it for every waiting customer
                self._bad_audio.add(path)
                log.warning("hold audio %r cannot be played (%s): waiting customers hear silence", audio, err)
            raise TelephonyError(f"cannot play {audio}: {err}") from err
        self._bad_audio.discard(path)
        sock = await self.rtp.socket(call.rtp_port)
        if not self._waiting(call) or call.audio != audio or call.player is not None:
            return  # connected, ended or told otherwise while the file loaded
        call.player = RtpSender(sock, (media.host, media.port), codec, encoded, clock=self.clock)
        call.player.start()

    @staticmethod
    def _waiting(call: _Call) -> bool:
        """The customer listens to our media: waiting for an operator, or held during a consultation."""
        return call.state is CallState.answered or (call.state is CallState.connected and call.on_hold)

    def _audio_path(self, audio: str) -> str:
        """A campaign's audio name → its file: absolute paths as they are, other names inside hold_audio_dir
        (never outside it), ``.wav`` added when the name has no extension."""
        if os.path.isabs(audio):
            return audio
        base = self.settings.hold_audio_dir
        if not base:
            raise TelephonyError("no hold_audio_dir configured for relative audio names")
        root = os.path.realpath(base)
        path = os.path.realpath(os.path.join(root, audio))
        if os.path.commonpath([root, path]) != root:
            raise TelephonyError(f"audio {audio!r} is outside the hold audio directory")
        if not os.path.splitext(path)[1] and not os.path.exists(path):
            path += ".wav"
        return path

    async def _ringback(self, call: _Call) -> None:
        """While the operator's phone rings the customer hears a ringback tone (425 Hz, 1 s in 5), not silence and
        not the hold audio, which stops; the tone stops when the phone answers or the offer ends."""
        self._stop_player(call)
        media = sdp.audio_media(self._media_sdp(call))
        codec = sdp.pick_codec(media) if media is not None else None
        if media is None or codec is None:
            return
        sock = await self.rtp.socket(call.rtp_port)
        if call.state is not CallState.connecting or call.player is not None or call.endpoint_answered:
            return
        call.player = RtpSender(sock, (media.host, media.port), codec, ringback(codec), clock=self.clock)
        call.player.start()

    def _stop_player(self, call: _Call) -> None:
        if call.player is not None:
            call.player.stop()
            call.player = None

    # --- connecting to an operator ------------------------------------------------------------------------
    async def connect(self, call_id: CallId, endpoint: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.answered or call.external_number is not None:
            raise UnknownCall(f"call {call_id} is not waiting for an operator")
        binding = self._free_binding(endpoint)
        call.move(CallInput.offer)
        call.endpoint = endpoint
        self._by_endpoint[endpoint] = call
        flow = self._connect_flow1 if call.trunk.config.connect_flow != "delayed_offer" else self._connect_delayed
        call.connect_task = asyncio.get_running_loop().create_task(self._connect(call, binding, flow),
                                                                   name=f"sip connect {call_id}")

    def _free_binding(self, endpoint: str) -> _Binding:
        binding = self.registrar.binding(endpoint)
        if binding is None:
            raise EndpointUnavailable(f"endpoint {endpoint} is not registered")
        if not binding.registration.reachable:
            raise EndpointUnavailable(f"endpoint {endpoint} does not answer")
        busy = self._by_endpoint.get(endpoint)
        if busy is not None:
            raise EndpointUnavailable(f"endpoint {endpoint} is busy with call {busy.id}")
        return binding

    def _operator_leg(self, call: _Call, binding: _Binding, *, consult: bool = False) -> Leg:
        reg = binding.registration
        number = call.request.number
        peer = self.registrar.route_to(binding)
        host, port = self.local_address(peer.transport)
        contact = self._contact(peer)
        leg = Leg.new(call_id=f"{uuid.uuid4().hex}@{host}",
                      local=Address(Uri("sip", number.removeprefix("+"), host), display=number),
                      remote=Address(Uri("sip", reg.login, self.settings.realm)), target=Uri.parse(reg.contact),
                      peer=peer, contact=contact, via_host=host, via_port=port, role="operator",
                      origin_host=host, fixed_peer=True)
        leg.route = list(binding.path)
        if consult:
            call.consult = leg
        else:
            call.operator = leg
        self._legs[leg.call_id] = (call, leg)
        return leg

    def _operator_headers(self, binding: _Binding) -> list[tuple[str, str]]:
        headers = [("User-Agent", self.settings.user_agent), ("Allow", ALLOW)]
        if binding.account.auto_answer:
            host, _ = self.local_address()
            headers += [("Call-Info", f"<sip:{host}>;answer-after=0"),
                        ("Alert-Info", f"<sip:{host}>;info=alert-autoanswer;delay=0"),
                        ("Answer-Mode", "Auto")]
        return headers

    def _no_answer(self, call: _Call, op: Leg) -> str:
        """Why an INVITE to the operator's phone got no final answer: it rang out, or it never responded at all —
        then the phone is down and reported unreachable (the engine pauses its operator until it answers again)."""
        if op.provisional:
            return "the phone did not answer"
        detail = f"the phone does not respond (nothing within {self.settings.device_timeout_s:g} s)"
        if call.endpoint is not None:
            self.registrar.mark_unreachable(call.endpoint, detail)
        return detail

    async def _invite_wait(self, leg: Leg, body: bytes, headers: list[tuple[str, str]],
                           on_provisional: Callable[[Message], None] | None = None,
                           answer_within: float | None = None,
                           respond_within: float | None = None) -> Message | None:
        """INVITE (or re-INVITE) on ``leg`` and wait for its final response; None on no answer in time.

        ``answer_within`` bounds an INVITE to a phone, which is then CANCELled; ``respond_within`` gives up earlier on
        a phone that has not responded at all (not even 100 Trying): it is down (a live one answers at once). A
        re-INVITE has no bound of its own, and its transaction waits as long as it takes once a provisional response
        came (timer B belongs to Calling only): it is given up after 64·T1 here, without a CANCEL, and a late answer
        is ignored."""
        fut: asyncio.Future[Message | None] = self.layer.loop.create_future()

        def final(resp: Message | None) -> None:
            if not fut.done():
                fut.set_result(resp)

        invite = leg.request("INVITE", body=body, headers=headers)
        reinvite = leg.confirmed
        peer = self._hop(leg) if reinvite else leg.peer
        self._send_invite(leg, invite, peer, on_provisional or (lambda r: None), final)
        if answer_within is None and not reinvite:
            return await fut
        limit = answer_within if answer_within is not None else 64 * self.settings.t1_s
        silent: Cancellable | None = None
        if respond_within is not None:
            def no_response() -> None:
                if not leg.provisional and not fut.done():
                    fut.set_result(None)
                    self._cancel(leg)  # a late provisional gets the CANCEL, a late 2xx an ACK and BYE
            silent = self.clock.call_later(respond_within, no_response)
        try:
            return await wait_for(self.clock, asyncio.shield(fut), limit)
        except TimeoutError:
            if answer_within is not None:
                self._cancel(leg)
            elif leg.invite is not None and leg.final_cseq != leg.invite.cseq[0]:
                leg.final_cseq = leg.invite.cseq[0]  # its answer, if one still comes, is no news
                leg.reinviting = False
            return None
        finally:
            if silent is not None:
                silent.cancel()

    async def _connect(self, call: _Call, binding: _Binding,
                       flow: Callable[[_Call, _Binding], Awaitable[str | None]]) -> None:
        try:
            await self._media_settled(call)
            failure = await flow(call, binding) if call.state is CallState.connecting else None
        except asyncio.CancelledError:
            raise
        except MediaRelayError as err:
            log.warning("call %s: %s; hanging up", call.id, err)
            self._teardown(call, Side.dialer, str(err))
            return
        except Exception as err:  # a bug must not leave the call half-connected
            log.exception("connecting call %s failed", call.id)
            failure = f"internal error: {err}"
        if failure is None or call.state is CallState.ended:
            return
        # the operator could not be reached: the customer keeps waiting, on hold again
        call.connect_task = None
        self._abandon_connect(call, failure, failed=failure != "withdrawn")
        await self._hold_again(call)

    def _abandon_connect(self, call: _Call, detail: str, *, failed: bool) -> None:
        """Give up connecting ``call`` to its operator: his leg is ended (CANCEL while it rings, ACK and BYE when
        a 200 crosses it), a carrier offer still waiting for our answer gets our own description back, and the
        customer waits for an operator again. ``failed``: the offer failed by itself (not withdrawn), which the
        ``hung_up`` event tells the engine so that it offers the customer to someone else at once."""
        self._stop_player(call)  # the ringback; the hold audio he heard before comes back (_hold_again)
        op = call.operator
        if op is not None:
            self._end_leg(op)
        cust = call.customer
        if cust.pending_ack and not cust.ended and cust.invite is not None and not cust.invite.body:
            # delayed offer: the carrier's 200 carried his offer; answer it with our media (hold audio)
            if call.anchored:
                self._spawn(self._relay_back_to_us(call), f"sip relay back {call.id}")
            else:
                cust.local_sdp = sdp.with_origin(sdp.offer(cust.origin, self._host, call.rtp_port), cust.origin)
                self._ack(cust, cust.local_sdp)
        endpoint = call.endpoint
        call.operator, call.endpoint, call.withdrawing, call.endpoint_answered = None, None, False, False
        call.external_number = None  # an external transfer withdrawn while it rang
        self._release_external_trunk(call)
        if endpoint is not None:
            if self._by_endpoint.get(endpoint) is call:
                del self._by_endpoint[endpoint]
            self._emit(EndpointEvent(endpoint, EndpointEventKind.hung_up, self.clock.now(), detail=detail,
                                     call_id=call.id, offer_failed=failed))
        if call.state is CallState.connecting:
            call.move(CallInput.back)

    async def _relay_back_to_us(self, call: _Call) -> None:
        """Delayed offer given up with the carrier's offer un-ACKed (anchored call): his offer passes the relay, our
        media answers it, and the relay's answer goes back in the ACK."""
        cust = call.customer
        try:
            call.relay_sdp = await self._relay(call, "offer", cust.remote_sdp, offerer=CUSTOMER_TAG)
            answer = await self._relay(call, "answer", sdp.offer(cust.origin, self._host, call.rtp_port),
                                       offerer=CUSTOMER_TAG)
        except MediaRelayError as err:
            self._teardown(call, Side.dialer, str(err))
            return
        if cust.pending_ack and not cust.ended:
            cust.local_sdp = sdp.with_origin(answer, cust.origin)
            self._ack(cust, cust.local_sdp)
        await self._hold_again(call)

    async def _hold_again(self, call: _Call) -> None:
        """A customer back to waiting hears the hold audio he heard before the offer."""
        audio = call.audio or call.last_audio
        if call.state is CallState.answered and audio is not None and call.player is None:
            with contextlib.suppress(TelephonyError):
                await self.play(call.id, audio)

    async def withdraw(self, call_id: CallId) -> None:
        """Take back the offer of an answered call from an operator who has not picked up (the engine's offer
        timeout): the INVITE to his phone is CANCELled — a 200 crossing the CANCEL is ACKed and BYEd — and the
        customer waits again, on the hold audio he heard before, so that :meth:`connect` may offer him to another
        operator at once. A call already waiting (its offer failed by itself) is left as it is.

        Raises UnknownCall when the call is over, not answered yet, connected, or when the operator's phone has
        already answered (``connected`` follows)."""
        call = self._calls.get(call_id)
        if call is None or call.state not in (CallState.answered, CallState.connecting):
            raise UnknownCall(f"call {call_id} is not being offered to an operator")
        if call.state is CallState.answered:
            return
        if call.endpoint_answered:
            raise UnknownCall(f"call {call_id}: the operator picked up; it is being connected")
        task = call.connect_task
        if task is not None and call.operator is None and call.customer.reinviting:
            # delayed offer, the carrier is answering our re-INVITE: the flow stops before it invites the phone and
            # answers the carrier's offer with our media. Wait for that briefly (carriers answer in milliseconds);
            # a carrier slower than that still gets its ACK, and the customer is waiting again when it is sent.
            call.withdrawing = True
            try:
                await wait_for(self.clock, asyncio.shield(task), max(1.0, 4 * self.settings.t1_s))
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are cancelled, not the flow (which a hang-up ends)
            if call.state is CallState.connecting:
                return
        else:
            call.connect_task = None
            if task is not None and task is not asyncio.current_task():
                await _stop(task)
            if call.state is CallState.connecting:
                self._abandon_connect(call, "withdrawn", failed=False)
        if call.state is not CallState.answered:
            raise UnknownCall(f"call {call_id} ended while its offer was withdrawn")
        await self._hold_again(call)

    def _operator_ringing(self, call: _Call, resp: Message) -> None:
        if resp.status in (180, 183) and call.endpoint is not None and call.state is CallState.connecting:
            self._emit(EndpointEvent(call.endpoint, EndpointEventKind.ringing, self.clock.now(), call_id=call.id))

    def _operator_answered(self, call: _Call) -> None:
        if call.endpoint is not None:
            call.endpoint_answered = True
            self._emit(EndpointEvent(call.endpoint, EndpointEventKind.answered, self.clock.now(), call_id=call.id))

    def _connected_unless_gone(self, call: _Call, op: Leg) -> None:
        """Both legs now talk to each other; an operator who hung up meanwhile ends the call at once."""
        call.move(CallInput.bridge)
        call.connect_task = None
        self._emit(CallEvent(call.id, CallEventKind.connected, self.clock.now(), endpoint=call.endpoint))
        if op.ended:
            self._teardown(call, Side.operator, "operator hung up")
        elif self.settings.device_ping_s > 0 and op.role == "operator":
            call.keepalive = self.clock.call_later(self.settings.device_ping_s, self._keepalive, call, op)

    def _keepalive(self, call: _Call, op: Leg) -> None:
        """An in-dialog OPTIONS to the operator's phone every ``device_ping_s`` of a conversation. A phone that died
        (no answer within ``device_timeout_s``) or lost the call (481, 408: rebooted, its dialog gone) would leave
        the customer on dead air: the call is ended at once — BYE to the carrier — and a silent phone is reported
        unreachable, so that the engine keeps its operator out of "ready" until it answers again."""
        if call.state is not CallState.connected or call.operator is not op or op.ended:
            return
        timeout = self.settings.device_timeout_s
        request = op.request("OPTIONS", headers=[("User-Agent", self.settings.user_agent),
                                                 ("Accept", "application/sdp")])
        done = False

        def answered(resp: Message) -> None:
            nonlocal done
            if (resp.status or 0) < 200 or done:
                return
            done = True
            if call.keepalive is not None:
                call.keepalive.cancel()
            if call.state is not CallState.connected or op.ended:
                return
            if resp.status in (408, 481):
                self._phone_lost(call, f"the operator's phone lost the call ({resp.status} {resp.reason} to an "
                                       "in-dialog OPTIONS)", unreachable=False)
                return
            if call.endpoint is not None:
                self.registrar.touch(call.endpoint)
            call.keepalive = self.clock.call_later(self.settings.device_ping_s, self._keepalive, call, op)

        def silent() -> None:
            nonlocal done
            if done:
                return
            done = True
            if call.state is CallState.connected and not op.ended:
                self._phone_lost(call, f"the operator's phone stopped answering (no answer to an in-dialog OPTIONS "
                                       f"within {timeout:g} s)", unreachable=True)

        call.keepalive = self.clock.call_later(timeout, silent)
        self.layer.send_request(request, self._hop(op), answered, silent)

    def _phone_lost(self, call: _Call, cause: str, *, unreachable: bool) -> None:
        """The operator's phone is gone mid-call: the customer is rescued, not hung up on — his leg is re-INVITEd onto
        our media (hold audio), the phone's leg ended, and its ``hung_up`` says ``phone_lost`` so that the engine
        offers him to another operator at once. A silent phone is reported unreachable first."""
        log.warning("call %s: %s; the customer waits for another operator", call.id, cause)
        if unreachable and call.endpoint is not None:
            self.registrar.mark_unreachable(call.endpoint, cause)
        self._back_to_waiting(call, cause, phone_lost=True)

    # --- back to waiting, transfers -----------------------------------------------------------------------
    def _back_to_waiting(self, call: _Call, detail: str, *, phone_lost: bool = False,
                         refer_status: tuple[int, str] | None = (200, "OK")) -> None:
        """End the operator's leg of a connected call (``hung_up`` of his endpoint with ``detail``) and put the
        customer back onto our media: a re-INVITE with our description (through the relay when anchored), then the
        hold audio he heard before. A phone's pending REFER hears ``refer_status`` first (None: it stays pending,
        its leg kept up until the outcome is known — the transfer it asked for goes on)."""
        if call.keepalive is not None:
            call.keepalive.cancel()
            call.keepalive = None
        if call.consult is not None or call.consult_endpoint is not None:
            self._end_consult_leg(call, detail)
        op, endpoint = call.operator, call.endpoint
        refer = call.refer
        if refer is not None and refer.leg is op and refer_status is not None:
            self._refer_done(call, *refer_status)
        if op is not None and not (refer is not None and refer.leg is op and refer_status is None):
            self._end_leg(op)
        call.operator, call.endpoint, call.endpoint_answered, call.on_hold = None, None, False, False
        if endpoint is not None:
            if self._by_endpoint.get(endpoint) is call:
                del self._by_endpoint[endpoint]
            self._emit(EndpointEvent(endpoint, EndpointEventKind.hung_up, self.clock.now(), detail=detail,
                                     call_id=call.id, phone_lost=phone_lost))
        self._release_external_trunk(call)
        call.move(CallInput.back)
        self._hold_customer(call, then_play=True)

    def _hold_customer(self, call: _Call, *, then_play: bool, mute_operator: bool = False) -> None:
        """Re-INVITE the customer onto our media in the background (``media_task``; flows wait for it). With
        ``mute_operator`` (a consultation) the operator's phone is then held too (``_mute_operator``)."""
        previous = call.media_task

        async def hold() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(previous)
            failure = await self._reinvite_to_us(call)
            if failure is None and mute_operator:
                muted = await self._mute_operator(call)
                if muted is not None and call.state is CallState.connected and call.consult_endpoint is not None:
                    # the consulted phone is not rung (its flow waits for this task): the customer goes back
                    if call.media_task is task:
                        call.media_task = None
                    await self._consult_over(call, muted, failed=True)
                    return
            if call.media_task is task:
                call.media_task = None
            if failure is not None:
                if call.state is not CallState.ended:
                    log.warning("call %s: %s; hanging up", call.id, failure)
                    self._teardown(call, Side.dialer, failure)
                return
            if then_play:
                await self._hold_again(call)
            elif call.on_hold and call.player is None:
                # held for a consultation: the hold audio he heard before, else the default one
                audio = call.last_audio or self.settings.default_hold_audio
                if audio is not None:
                    with contextlib.suppress(TelephonyError, UnknownCall):
                        await self.play(call.id, audio)

        task = asyncio.get_running_loop().create_task(_run(hold()), name=f"sip hold {call.id}")
        call.media_task = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reinvite_to_us(self, call: _Call) -> str | None:
        """The customer's leg re-INVITEd with our own media; None when done, else why it failed."""
        cust = call.customer
        if cust.ended or call.state is CallState.ended:
            return None
        try:
            ours = sdp.offer(cust.origin, self._host, call.rtp_port)
            cust.local_sdp = sdp.with_origin(await self._relay(call, "offer", ours, offerer=DIALER_TAG), cust.origin)
            resp = await self._invite_wait(cust, cust.local_sdp, [("User-Agent", self.settings.user_agent)])
            if call.state is CallState.ended or cust.ended:
                return None
            if resp is None or (resp.status or 0) >= 300 or not resp.body:
                if resp is not None and (resp.status or 0) < 300:
                    self._ack(cust, b"")
                detail = "no answer" if resp is None else f"{resp.status} {resp.reason}"
                return f"the customer could not be put back on hold audio: the re-INVITE got {detail}"
            cust.confirm(resp)
            self._ack(cust, b"")
            if call.anchored:
                call.relay_sdp = await self._relay(call, "answer", resp.body, offerer=DIALER_TAG)
        except MediaRelayError as err:
            return str(err)
        return None

    async def _mute_operator(self, call: _Call) -> str | None:
        """A consultation's privacy: the operator's phone is re-INVITEd with our media, ``a=inactive`` (RFC 3264
        §8.4), so that it stops sending to the customer — with direct media his RTP would otherwise still reach the
        customer's address while the consulted phone rings. None when done (or nothing to do), else why it failed."""
        op = call.operator
        if op is None or op.ended or call.state is not CallState.connected or not call.on_hold:
            return None
        op.local_sdp = sdp.offer(op.origin, self._host, call.rtp_port, direction="inactive")
        resp = await self._invite_wait(op, op.local_sdp, [("User-Agent", self.settings.user_agent)])
        if call.state is not CallState.connected or op.ended or call.operator is not op:
            return None
        if resp is None or (resp.status or 0) >= 300:
            detail = "no answer" if resp is None else f"{resp.status} {resp.reason}"
            return f"the operator's phone could not be held for the consultation: the re-INVITE got {detail}"
        op.confirm(resp)
        self._ack(op, b"")
        return None

    async def _media_settled(self, call: _Call) -> None:
        """Wait for a re-INVITE of the customer in progress (a flow must not cross it: 491)."""
        task = call.media_task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def _join(self, call: _Call, first: Leg, second: Leg) -> str | None:
        """Make ``first`` and ``second`` (both confirmed) talk to each other by 3PCC: a re-INVITE of ``first`` without
        SDP draws its offer, which re-INVITEs ``second``; the answer goes back to ``first`` in its ACK. SDP bound to
        or from the customer passes the relay. None when done, else why not (both legs are left consistent)."""
        cust = call.customer
        resp_a = await self._invite_wait(first, b"", [("User-Agent", self.settings.user_agent)])
        if call.state is CallState.ended:
            return "the call ended"
        if resp_a is None or (resp_a.status or 0) >= 300 or not resp_a.body:
            if resp_a is not None and (resp_a.status or 0) < 300:
                first.confirm(resp_a)
                self._ack(first, sdp.with_origin(first.local_sdp, first.origin) if first.local_sdp else b"")
            detail = "no answer" if resp_a is None else f"{resp_a.status} {resp_a.reason}"
            return f"the re-INVITE got {detail}"
        first.confirm(resp_a)
        offer = resp_a.body
        if second is cust:
            offer = await self._relay(call, "offer", offer, offerer=DIALER_TAG)
        elif first is cust:
            offer = await self._relay(call, "offer", offer, offerer=CUSTOMER_TAG)
        second.local_sdp = sdp.with_origin(offer, second.origin)
        resp_b = await self._invite_wait(second, second.local_sdp, [("User-Agent", self.settings.user_agent)])
        if call.state is CallState.ended:
            return "the call ended"
        if resp_b is None or (resp_b.status or 0) >= 300 or not resp_b.body:
            if resp_b is not None and (resp_b.status or 0) < 300:
                second.confirm(resp_b)
                self._ack(second, b"")
            # ``first`` gets back what it had: our last description for it
            self._ack(first, sdp.with_origin(first.local_sdp, first.origin) if first.local_sdp else b"")
            detail = "no answer" if resp_b is None else f"{resp_b.status} {resp_b.reason}"
            return f"the re-INVITE got {detail}"
        second.confirm(resp_b)
        self._ack(second, b"")
        answer = resp_b.body
        if second is cust:
            answer = await self._relay(call, "answer", answer, offerer=DIALER_TAG)
        elif first is cust:
            answer = await self._relay(call, "answer", answer, offerer=CUSTOMER_TAG)
        first.local_sdp = sdp.with_origin(answer, first.origin)
        self._ack(first, first.local_sdp)
        return None

    def _connected_call(self, call_id: CallId) -> _Call:
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.connected or call.operator is None:
            raise UnknownCall(f"call {call_id} is not connected")
        return call

    def _take_refer(self, call: _Call) -> None:
        """The consumer carries out a transfer: a phone's pending REFER is no longer declined by its timer."""
        refer = call.refer
        if refer is not None and not refer.taken:
            refer.taken = True
            if refer.timer is not None:
                refer.timer.cancel()

    async def release(self, call_id: CallId) -> None:
        """Blind transfer, first step: the operator's leg ends (``hung_up`` detail "released") and the customer waits
        again on hold audio. A phone's pending REFER hears 200 (its customer is handed on). Raises UnknownCall."""
        call = self._connected_call(call_id)
        self._take_refer(call)
        self._back_to_waiting(call, "released")

    async def consult(self, call_id: CallId, endpoint: str) -> None:
        """Attended transfer: the customer is put on our media (hold audio) and ``endpoint`` rung; when it answers,
        the operator's phone is re-INVITEd to talk to it. Raises UnknownCall, EndpointUnavailable."""
        call = self._connected_call(call_id)
        if call.consult_endpoint is not None or call.endpoint is None or call.endpoint.startswith("external:"):
            raise UnknownCall(f"call {call_id} cannot consult now (a consultation is on, or no operator's phone)")
        binding = self._free_binding(endpoint)
        self._take_refer(call)
        call.consult_endpoint, call.consult_answered, call.on_hold = endpoint, False, True
        self._by_endpoint[endpoint] = call
        if call.keepalive is not None:
            call.keepalive.cancel()
            call.keepalive = None
        self._hold_customer(call, then_play=False, mute_operator=True)
        call.consult_task = asyncio.get_running_loop().create_task(self._consult_flow(call, binding),
                                                                   name=f"sip consult {call_id}")

    async def _consult_flow(self, call: _Call, binding: _Binding) -> None:
        endpoint = call.consult_endpoint
        assert endpoint is not None
        try:
            await self._media_settled(call)
            if call.state is not CallState.connected or call.consult_endpoint != endpoint:
                return
            op = call.operator
            assert op is not None
            second = self._operator_leg(call, binding, consult=True)

            def ringing(resp: Message) -> None:
                if resp.status in (180, 183) and call.consult is second:
                    self._emit(EndpointEvent(endpoint, EndpointEventKind.ringing, self.clock.now(), call_id=call.id))

            resp = await self._invite_wait(second, b"", self._operator_headers(binding), ringing,
                                           self.settings.operator_answer_timeout_s, self.settings.device_timeout_s)
            if call.consult is not second:
                return
            if resp is None or (resp.status or 0) >= 300 or not resp.body:
                if resp is not None and (resp.status or 0) < 300:
                    second.confirm(resp)
                    self._ack(second, b"")
                detail = (self._no_answer_consult(endpoint, second) if resp is None
                          else f"{resp.status} {resp.reason}" if (resp.status or 0) >= 300
                          else "the phone answered without an SDP offer")
                await self._consult_over(call, detail, failed=True)
                return
            second.confirm(resp)
            self._emit(EndpointEvent(endpoint, EndpointEventKind.answered, self.clock.now(), call_id=call.id))
            # the first operator's phone takes the consulted phone's offer; its answer goes back in the ACK
            op.local_sdp = sdp.with_origin(resp.body, op.origin)
            resp_op = await self._invite_wait(op, op.local_sdp, [("User-Agent", self.settings.user_agent)])
            if call.consult is not second or call.state is not CallState.connected:
                self._ack(second, b"")
                return
            if resp_op is None or (resp_op.status or 0) >= 300 or not resp_op.body:
                if resp_op is not None and (resp_op.status or 0) < 300:
                    self._ack(op, b"")
                self._ack(second, b"")
                detail = "no answer" if resp_op is None else f"{resp_op.status} {resp_op.reason}"
                await self._consult_over(call, f"the operator's phone refused the re-INVITE: {detail}", failed=True)
                return
            op.confirm(resp_op)
            self._ack(op, b"")
            second.local_sdp = resp_op.body
            self._ack(second, resp_op.body)
            call.consult_answered = True
        except MediaRelayError as err:
            self._teardown(call, Side.dialer, str(err))
        finally:
            if call.consult_task is asyncio.current_task():
                call.consult_task = None

    def _no_answer_consult(self, endpoint: str, leg: Leg) -> str:
        if leg.provisional:
            return "the phone did not answer"
        detail = f"the phone does not respond (nothing within {self.settings.device_timeout_s:g} s)"
        self.registrar.mark_unreachable(endpoint, detail)
        return detail

    def _end_consult_leg(self, call: _Call, detail: str, *, failed: bool = False) -> None:
        """End the consulted phone's leg and report its ``hung_up``."""
        leg, endpoint = call.consult, call.consult_endpoint
        task = call.consult_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        call.consult, call.consult_endpoint, call.consult_answered, call.consult_task = None, None, False, None
        if leg is not None:
            self._end_leg(leg)
        if endpoint is not None:
            if self._by_endpoint.get(endpoint) is call:
                del self._by_endpoint[endpoint]
            self._emit(EndpointEvent(endpoint, EndpointEventKind.hung_up, self.clock.now(), detail=detail,
                                     call_id=call.id, offer_failed=failed))

    async def _consult_over(self, call: _Call, detail: str, *, failed: bool) -> None:
        """The consultation ends (cancelled or failed): the consulted leg ends and the first operator talks to the
        customer again (his phone's offer re-INVITEs the customer). A phone's REFER hears 503."""
        self._end_consult_leg(call, detail, failed=failed)
        if call.refer is not None and call.refer.taken:
            self._refer_done(call, 503, "Service Unavailable")
        await self._media_settled(call)
        op = call.operator
        if call.state is not CallState.connected or op is None:
            return
        self._stop_player(call)
        call.on_hold = False
        failure = await self._join(call, op, call.customer)
        if failure is not None and call.state is CallState.connected:
            self._teardown(call, Side.dialer, f"the operator could not be reconnected after a consultation: {failure}")
            return
        if call.state is CallState.connected and self.settings.device_ping_s > 0 and call.keepalive is None:
            call.keepalive = self.clock.call_later(self.settings.device_ping_s, self._keepalive, call, op)

    async def complete(self, call_id: CallId) -> None:
        """The consulted phone takes the customer: its offer re-INVITEs the customer (hold audio stops), the first
        operator's leg ends (``hung_up`` detail "transferred"), then ``connected`` with the new endpoint. A phone's
        REFER hears 200 first. Raises UnknownCall when no consultation is answered."""
        call = self._connected_call(call_id)
        if call.consult is None or not call.consult_answered or call.consult_endpoint is None:
            raise UnknownCall(f"call {call_id} has no answered consultation")
        second, endpoint = call.consult, call.consult_endpoint
        call.consult_task = asyncio.get_running_loop().create_task(self._complete_flow(call, second, endpoint),
                                                                   name=f"sip complete {call_id}")

    async def _complete_flow(self, call: _Call, second: Leg, endpoint: str) -> None:
        try:
            await self._media_settled(call)
            if call.consult is not second or call.state is not CallState.connected:
                return
            self._stop_player(call)
            failure = await self._join(call, second, call.customer)
            if call.state is not CallState.connected:
                return
            if failure is not None:
                await self._consult_over(call, f"the transfer failed: {failure}", failed=True)
                return
            first, first_endpoint = call.operator, call.endpoint
            self._refer_done(call, 200, "OK")
            if first is not None:
                self._end_leg(first)
            if first_endpoint is not None:
                if self._by_endpoint.get(first_endpoint) is call:
                    del self._by_endpoint[first_endpoint]
                self._emit(EndpointEvent(first_endpoint, EndpointEventKind.hung_up, self.clock.now(),
                                         detail="transferred", call_id=call.id))
            call.operator, call.endpoint, call.on_hold = second, endpoint, False
            call.consult, call.consult_endpoint, call.consult_answered = None, None, False
            self._emit(CallEvent(call.id, CallEventKind.connected, self.clock.now(), endpoint=endpoint))
            if second.ended:
                self._teardown(call, Side.operator, "operator hung up")
            elif self.settings.device_ping_s > 0:
                call.keepalive = self.clock.call_later(self.settings.device_ping_s, self._keepalive, call, second)
        except MediaRelayError as err:
            self._teardown(call, Side.dialer, str(err))
        finally:
            if call.consult_task is asyncio.current_task():
                call.consult_task = None

    async def cancel_consult(self, call_id: CallId) -> None:
        """End a consultation, ringing or answered: the consulted leg ends (``hung_up``) and the first operator talks
        to the customer again. Raises UnknownCall when there is none."""
        call = self._connected_call(call_id)
        if call.consult_endpoint is None:
            raise UnknownCall(f"call {call_id} has no consultation")
        await self._consult_over(call, "consultation cancelled", failed=False)

    async def transfer_external(self, call_id: CallId, number: str, caller_id: str | None = None) -> None:
        """Blind transfer to ``number`` through a trunk that is up (chosen as for ``originate``): the operator's leg
        ends at once (``hung_up`` detail "transferred"), the customer holds on our media while the number rings (an
        INVITE without SDP); when it answers, its offer re-INVITEs the customer and the customer's answer goes back
        in the ACK — ``connected`` with ``external:<number>``. If it does not answer, ``external:<number>`` is reported
        ``hung_up`` with ``offer_failed`` and the customer waits again. A phone's REFER hears the outcome (200 or the
        failure's status). Raises UnknownCall, TrunkUnavailable, TelephonyError (not an E.164 number)."""
        call = self._calls.get(call_id)
        if (call is None or call.state not in (CallState.answered, CallState.connected)
                or call.external_number is not None or call.consult_endpoint is not None
                or (call.state is CallState.answered and call.media_task is None and call.connect_task is not None)):
            raise UnknownCall(f"call {call_id} is neither connected nor waiting")
        if not number.startswith("+") or not number[1:].isdigit() or len(number) < 4:
            raise TelephonyError(f"{number!r} is not an E.164 number")
        request = Originate(number=number, caller_id=caller_id or call.request.caller_id,
                            answer_timeout_s=call.request.answer_timeout_s,
                            variables={k: v for k, v in call.request.variables.items() if k == "trunk_id"})
        trunk = self._pick_trunk(request)
        trunk.calls += 1
        call.external_trunk, call.external_number = trunk, number
        if call.state is CallState.connected:
            self._take_refer(call)
            self._back_to_waiting(call, "transferred", refer_status=None)
        else:
            self._stop_player(call)
            await self._hold_again(call)
        call.connect_task = asyncio.get_running_loop().create_task(self._external_flow(call, trunk, request),
                                                                   name=f"sip external {call_id}")

    def _release_external_trunk(self, call: _Call) -> None:
        trunk, call.external_trunk = call.external_trunk, None
        if trunk is not None:
            trunk.calls -= 1

    async def _external_flow(self, call: _Call, trunk: _Trunk, request: Originate) -> None:
        number = request.number
        endpoint = f"external:{number}"
        try:
            failure = await self._dial_external(call, trunk, request, endpoint)
        except MediaRelayError as err:
            self._teardown(call, Side.dialer, str(err))
            return
        finally:
            if call.connect_task is asyncio.current_task():
                call.connect_task = None
        if failure is None or call.state is CallState.ended:
            return
        code, reason, detail = failure
        log.info("call %s: the transfer to %s failed: %s", call.id, number, detail)
        self._refer_done(call, code, reason)
        self._stop_player(call)
        op = call.operator
        if op is not None and op.role == "external":
            self._end_leg(op)
            call.operator = None
        call.endpoint, call.external_number, call.endpoint_answered = None, None, False
        self._release_external_trunk(call)
        self._emit(EndpointEvent(endpoint, EndpointEventKind.hung_up, self.clock.now(), detail=detail,
                                 call_id=call.id, offer_failed=True))
        if call.state is CallState.connecting:
            call.move(CallInput.back)
        await self._hold_again(call)

    async def _dial_external(self, call: _Call, trunk: _Trunk, request: Originate,
                             endpoint: str) -> tuple[int, str, str] | None:
        """The external party's INVITE (no SDP) and the 3PCC that connects it; None when connected, else the
        (status, reason) a REFER hears and why it failed."""
        await self._media_settled(call)
        if call.state is not CallState.answered:
            return None
        cfg = trunk.config
        assert trunk.peer is not None
        host, port = self.local_address(trunk.peer.transport)
        number = request.number.removeprefix("+") if cfg.strip_plus else request.number
        caller = request.caller_id or cfg.caller_id or "anonymous"
        if cfg.strip_plus:
            caller = caller.removeprefix("+")
        tparams = {"transport": trunk.peer.transport} if trunk.peer.reliable else {}
        leg = Leg.new(call_id=f"{uuid.uuid4().hex}@{host}",
                      local=Address(Uri("sip", caller, cfg.from_domain or cfg.host)),
                      remote=Address(Uri("sip", cfg.dial_prefix + number, cfg.host)),
                      target=Uri("sip", cfg.dial_prefix + number, cfg.host, trunk.peer.port, dict(tparams)),
                      peer=trunk.peer, contact=self._contact(trunk.peer), via_host=host, via_port=port,
                      role="external", origin_host=host, credentials=trunk.credentials)
        self._legs[leg.call_id] = (call, leg)
        call.move(CallInput.offer)
        call.operator, call.endpoint = leg, endpoint
        resp = await self._invite_wait(leg, b"", [("User-Agent", self.settings.user_agent), ("Allow", ALLOW)],
                                       None, request.answer_timeout_s)
        if call.state is not CallState.connecting:
            return None
        if resp is None:
            return 408, "Request Timeout", f"no answer within {request.answer_timeout_s:g} s"
        code = resp.status or 0
        if code >= 300:
            leg.fire(DialogEvent.rejected)
            self._forget_leg(leg)
            return code, resp.reason, f"{code} {resp.reason}".strip()
        leg.confirm(resp)
        if not resp.body:
            self._ack(leg, b"")
            return 488, "Not Acceptable Here", "the external party answered without an SDP offer"
        self._stop_player(call)
        cust = call.customer
        cust.local_sdp = sdp.with_origin(await self._relay(call, "offer", resp.body, offerer=DIALER_TAG), cust.origin)
        resp_c = await self._invite_wait(cust, cust.local_sdp, [("User-Agent", self.settings.user_agent)])
        if call.state is not CallState.connecting:
            return None
        if resp_c is None or (resp_c.status or 0) >= 300 or not resp_c.body:
            if resp_c is not None and (resp_c.status or 0) < 300:
                self._ack(cust, b"")
            detail = "no answer" if resp_c is None else f"{resp_c.status} {resp_c.reason}"
            return 503, "Service Unavailable", f"the carrier refused the re-INVITE: {detail}"
        cust.confirm(resp_c)
        self._ack(cust, b"")
        leg.local_sdp = await self._relay(call, "answer", resp_c.body, offerer=DIALER_TAG)
        self._ack(leg, leg.local_sdp)
        call.external_number = None
        self._refer_done(call, 200, "OK")
        self._connected_unless_gone(call, leg)
        return None

    # --- a phone's own transfer (REFER, RFC 3515) ------------------------------------------------------------
    def _on_refer(self, call: _Call, leg: Leg, msg: Message, tx: ServerTransaction) -> None:
        """202 and ``TransferRequested`` for a blind REFER from the phone of a connected call; anything else is
        refused with its reason (never 200 and dropped)."""
        refer_to = msg.get("Refer-To") or msg.get("r") or ""
        if leg.role != "operator" or leg is not call.operator or call.state is not CallState.connected:
            tx.respond(msg.response(403, "Transfers are taken from a connected operator's phone only"))
            return
        if "replaces" in refer_to.lower():
            tx.respond(msg.response(501, "Attended transfer by the phone (Replaces) is not supported"))
            return
        if call.refer is not None or call.consult_endpoint is not None:
            tx.respond(msg.response(491, "A transfer of this call is in progress"))
            return
        try:
            target = Address.parse(refer_to).uri.user or ""
        except (ParseError, ValueError):
            target = ""
        if not target:
            tx.respond(msg.response(400, "Refer-To names no user"))
            return
        tx.respond(msg.response(202, headers=[("Contact", leg.contact)]))
        refer = call.refer = _Refer(leg)
        self._notify(leg, 100, "Trying", final=False)
        refer.timer = self.clock.call_later(self.refer_wait_s, self._refer_expired, call, refer)
        assert call.endpoint is not None
        self._emit(TransferRequested(call.id, call.endpoint, target, self.clock.now()))

    def _refer_expired(self, call: _Call, refer: _Refer) -> None:
        if call.refer is refer and not refer.taken:
            self._refer_done(call, 603, "Declined")

    def _refer_done(self, call: _Call, code: int, reason: str) -> None:
        """The final NOTIFY of a phone's REFER; its leg, if no longer the call's, is ended after it."""
        refer, call.refer = call.refer, None
        if refer is None:
            return
        if refer.timer is not None:
            refer.timer.cancel()
        if refer.leg.ended:
            return
        self._notify(refer.leg, code, reason, final=True)
        if refer.leg is not call.operator and refer.leg is not call.consult:
            self._end_leg(refer.leg)

    def _notify(self, leg: Leg, code: int, reason: str, *, final: bool) -> None:
        state = "terminated;reason=noresource" if final else "active;expires=60"
        body = f"SIP/2.0 {code} {reason}\r\n".encode()
        request = leg.request("NOTIFY", headers=[("Event", "refer"), ("Subscription-State", state),
                                                 ("User-Agent", self.settings.user_agent),
                                                 ("Content-Type", "message/sipfrag;version=2.0")])
        request = Message.request("NOTIFY", request.uri or "", list(request.headers), body)
        self.layer.send_request(request, self._hop(leg), lambda r: None, lambda: None)

    async def _connect_flow1(self, call: _Call, binding: _Binding) -> str | None:
        """RFC 3725 flow I: INVITE the phone without SDP; its offer re-INVITEs the customer; the customer's
        answer goes to the phone in the ACK."""
        await self._ringback(call)
        cust = call.customer
        op = self._operator_leg(call, binding)
        resp = await self._invite_wait(op, b"", self._operator_headers(binding),
                                       lambda r: self._operator_ringing(call, r),
                                       self.settings.operator_answer_timeout_s, self.settings.device_timeout_s)
        if resp is None:
            return self._no_answer(call, op)
        if (resp.status or 0) >= 300:
            return f"{resp.status} {resp.reason}"
        self._stop_player(call)
        op.confirm(resp)
        self._operator_answered(call)
        if op.ended:
            self._ack(op, b"")
            return "the operator hung up while connecting"
        offer = resp.body
        if not offer:
            return "the phone answered without an SDP offer"
        cust.local_sdp = sdp.with_origin(await self._relay(call, "offer", offer, offerer=DIALER_TAG), cust.origin)
        resp_c = await self._invite_wait(cust, cust.local_sdp, [("User-Agent", self.settings.user_agent)])
        if resp_c is None or (resp_c.status or 0) >= 300 or not resp_c.body:
            # give the phone an answer so that its call can be ended cleanly, then the caller ends it
            detail = "no answer" if resp_c is None else f"{resp_c.status} {resp_c.reason}"
            if resp_c is not None and (resp_c.status or 0) < 300:
                self._ack(cust, b"")
            return f"the carrier refused the re-INVITE: {detail}"
        cust.confirm(resp_c)
        self._ack(cust, b"")
        op.local_sdp = await self._relay(call, "answer", resp_c.body, offerer=DIALER_TAG)
        self._ack(op, op.local_sdp)
        self._connected_unless_gone(call, op)
        return None

    async def _connect_delayed(self, call: _Call, binding: _Binding) -> str | None:
        """Delayed offer: re-INVITE the customer without SDP; his offer goes to the phone in our INVITE; the
        phone's answer goes back to the customer in the ACK."""
        await self._ringback(call)
        cust = call.customer
        resp_c = await self._invite_wait(cust, b"", [("User-Agent", self.settings.user_agent)])
        if resp_c is None or (resp_c.status or 0) >= 300:
            detail = "no answer" if resp_c is None else f"{resp_c.status} {resp_c.reason}"
            return f"the carrier refused the re-INVITE: {detail}"
        cust.confirm(resp_c)
        if not resp_c.body:
            self._ack(cust, sdp.with_origin(cust.local_sdp, cust.origin))
            return "the carrier's 200 to the re-INVITE carried no offer"
        if call.withdrawing:
            return "withdrawn"  # the failure path answers the carrier's offer with our own media
        op = self._operator_leg(call, binding)
        # the customer's 200 is retransmitted until our ACK: the phone has 64·T1 to answer
        limit = min(self.settings.operator_answer_timeout_s, 60 * self.settings.t1_s)
        to_phone = await self._relay(call, "offer", resp_c.body, offerer=CUSTOMER_TAG)
        resp = await self._invite_wait(op, to_phone, self._operator_headers(binding),
                                       lambda r: self._operator_ringing(call, r), limit, self.settings.device_timeout_s)
        if resp is None or (resp.status or 0) >= 300 or not resp.body:
            # put the customer back on our media: answer his offer with our own description
            answer = await self._relay(call, "answer", sdp.offer(cust.origin, self._host, call.rtp_port),
                                       offerer=CUSTOMER_TAG)
            call.relay_sdp = to_phone
            cust.local_sdp = sdp.with_origin(answer, cust.origin)
            self._ack(cust, cust.local_sdp)
            if resp is None:
                return self._no_answer(call, op)
            if (resp.status or 0) < 300:
                op.confirm(resp)
                self._ack(op, b"")
                return "the phone answered without SDP"
            return f"{resp.status} {resp.reason}"
        self._stop_player(call)
        op.confirm(resp)
        self._operator_answered(call)
        self._ack(op, b"")
        cust.local_sdp = sdp.with_origin(await self._relay(call, "answer", resp.body, offerer=CUSTOMER_TAG),
                                         cust.origin)
        self._ack(cust, cust.local_sdp)
        self._connected_unless_gone(call, op)
        return None

    def _ack(self, leg: Leg, body: bytes) -> None:
        assert leg.invite is not None
        leg.pending_ack = False
        leg.ack = leg.ack_for(leg.invite, body)
        self.layer.send_stateless(leg.ack, self._hop(leg))

    def _hop(self, leg: Leg) -> Peer:
        """The next hop of an in-dialog request, resolved without blocking (names known from the trunks)."""
        hop = leg.next_hop()
        if leg.peer.transport == "tls" and hop.transport == "tls":
            # in-dialog requests over TLS go through the connection whose certificate was checked (the trunk's, or
            # the phone's own): a Contact or Record-Route naming another address gets no unchecked connection
            return leg.peer
        if _is_ip(hop.host):
            return hop
        ip = self._dns.get(hop.host)
        return Peer(hop.transport, ip, hop.port) if ip is not None else leg.peer

    # --- inbound calls -------------------------------------------------------------------------------------
    def _trunk_of(self, peer: Peer) -> _Trunk | None:
        """The configured trunk a request came from (by source address: the trunk's resolved targets, its current
        peer, or its host when that is an address); None for anyone else."""
        for trunk in self._trunks.values():
            hosts = {t.host for t in trunk.targets}
            if trunk.peer is not None:
                hosts.add(trunk.peer.host)
            if _is_ip(trunk.config.host):
                hosts.add(trunk.config.host)
            if peer.host in hosts:
                return trunk
        return None

    def _incoming(self, msg: Message, peer: Peer, tx: InviteServerTransaction, trunk: _Trunk) -> None:
        """An INVITE from a trunk outside any dialog: a new inbound call, ringing until ``answer`` or a refusal."""
        try:
            caller_uri = msg.from_.uri
            dialled_uri = Uri.parse(msg.uri or "")
            contact = msg.contact()
            local = msg.to
        except (ParseError, KeyError) as err:
            tx.respond(msg.response(400, f"Bad request: {err}", to_tag=new_tag()))
            return
        if not msg.body:
            # without an offer the caller would expect ours in the 200 and answer in the ACK: not taken (yet)
            tx.respond(msg.response(488, "An SDP offer is required", to_tag=new_tag()))
            return
        host, port = self.local_address(peer.transport)
        call_id = CallId(msg.call_id)
        leg = Leg.new(call_id=call_id, local=local, remote=msg.from_,
                      target=contact.uri if contact is not None else caller_uri, peer=peer,
                      contact=self._contact(peer), via_host=host, via_port=port, role="customer", origin_host=host,
                      credentials=trunk.credentials)
        leg.route = list(msg.all("Record-Route"))  # the callee keeps the order (RFC 3261 §12.1.1)
        leg.remote_sdp = msg.body
        caller = caller_uri.user or "anonymous"
        dialled = dialled_uri.user or (local.uri.user or "")
        call = _Call(call_id, Originate(number=caller, caller_id=dialled, variables={"direction": "inbound"}), trunk,
                     leg, self.rtp.allocate(), inbound_tx=tx)
        call.anchored = self._wants_relay(call.request)
        self._calls[call_id] = call
        self._legs[call_id] = (call, leg)
        trunk.calls += 1
        tx.respond(msg.response(180, to_tag=leg.local.tag, headers=[("Contact", leg.contact)]))
        call.timers.append(self.clock.call_later(self.settings.inbound_answer_s, self._inbound_timeout, call))
        self._emit(IncomingCall(call_id, caller, dialled, self.clock.now(), trunk.config.id))

    def _inbound_timeout(self, call: _Call) -> None:
        if call.state is CallState.ringing and not call.inbound_answered:
            self._refuse(call, 480, f"nobody took the inbound call within {self.settings.inbound_answer_s:g} s")

    def _refuse(self, call: _Call, status: int, cause: str, *, side: Side = Side.dialer) -> None:
        """End a ringing inbound call with a final error response to its INVITE; ``hung_up`` by ``side``."""
        tx = call.inbound_tx
        leg = call.customer
        if tx is not None and not call.inbound_answered:
            tx.respond(tx.request.response(status, to_tag=leg.local.tag))
        if not leg.ended:
            leg.fire(DialogEvent.rejected)
        self._forget_leg(leg)
        self._finish(call, CallEvent(call.id, CallEventKind.hung_up, self.clock.now(), side=side, cause=cause,
                                     code=status))

    async def answer(self, call_id: CallId) -> None:
        """Answer a ringing inbound call: 200 with our media (hold audio and messages come from us until it is
        connected); ``answered`` is reported when the caller's ACK arrives."""
        call = self._calls.get(call_id)
        if call is None or not call.inbound or call.state is not CallState.ringing or call.inbound_answered:
            raise UnknownCall(f"call {call_id} is not an inbound call ringing")
        try:
            await self.rtp.socket(call.rtp_port)
        except OSError as err:
            raise TelephonyError(f"cannot bind RTP port {call.rtp_port}: {err}") from err
        if call.state is not CallState.ringing or call.inbound_tx is None:
            raise UnknownCall(f"call {call_id} ended while it was being answered")
        leg = call.customer
        host, _ = self.local_address(leg.peer.transport)
        ours = sdp.offer(leg.origin, host, call.rtp_port)
        if call.anchored:
            # the caller's offer passes the relay (its reply is where our RTP goes); our answer comes back through it
            try:
                call.relay_sdp = await self._relay(call, "offer", leg.remote_sdp, offerer=CUSTOMER_TAG)
                ours = sdp.with_origin(await self._relay(call, "answer", ours, offerer=CUSTOMER_TAG), leg.origin)
            except MediaRelayError as err:
                if call.state is CallState.ringing and not call.inbound_answered:
                    self._refuse(call, 503, str(err))
                raise
            if call.state is not CallState.ringing or call.inbound_tx is None or call.inbound_answered:
                raise UnknownCall(f"call {call_id} ended while it was being answered")
        leg.local_sdp = ours
        call.inbound_answered = True
        for timer in call.timers:
            timer.cancel()
        call.timers = [self.clock.call_later(self.settings.max_call_s, self._too_long, call)]
        leg.fire(DialogEvent.answered)
        call.inbound_tx.respond(call.inbound_tx.request.response(
            200, to_tag=leg.local.tag, body=leg.local_sdp,
            headers=[("Contact", leg.contact), ("Allow", ALLOW), ("User-Agent", self.settings.user_agent),
                     ("Content-Type", "application/sdp")]))

    def _on_ack(self, msg: Message, peer: Peer) -> None:
        """The ACK of a 2xx we sent: for an inbound call just answered, the call is up."""
        entry = self._legs.get(msg.call_id)
        if entry is None:
            return
        call, leg = entry
        if (call.inbound and leg is call.customer and call.state is CallState.ringing and call.inbound_answered
                and call.inbound_tx is not None and msg.cseq[0] == call.inbound_tx.request.cseq[0]):
            call.move(CallInput.answer)
            self._emit(CallEvent(call.id, CallEventKind.answered, self.clock.now(), answered_by=AnsweredBy.human,
                                 code=200, cause="200 OK"))

    # --- requests from peers ------------------------------------------------------------------------------
    def _on_request(self, msg: Message, peer: Peer, tx: ServerTransaction) -> None:
        method = msg.method
        if method == "REGISTER":
            self.registrar.handle(msg, peer, tx)
            return
        entry = self._legs.get(msg.call_id)
        if method not in ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "UPDATE", "REFER"):
            status = 405 if method in NOT_ALLOWED else 501
            to_tag = None if ";tag=" in (msg.get("To") or "") else new_tag()
            tx.respond(msg.response(status, to_tag=to_tag, headers=[("Allow", ALLOW)]))
            return
        if entry is None:
            if method == "OPTIONS":
                tx.respond(msg.response(200, to_tag=new_tag(), headers=[("Allow", ALLOW),
                                                                       ("Accept", "application/sdp")]))
            elif method == "INVITE":
                trunk = self._trunk_of(peer)
                if trunk is None or self._closed or not self._started or not isinstance(tx, InviteServerTransaction):
                    tx.respond(msg.response(403, "Inbound calls are not taken here", to_tag=new_tag()))
                else:
                    self._incoming(msg, peer, tx, trunk)
            elif method == "REFER":
                tx.respond(msg.response(403, "A transfer needs a connected call", to_tag=new_tag()))
            elif method != "ACK":
                tx.respond(msg.response(481))
            return
        call, leg = entry
        if leg.role == "operator" and call.endpoint is not None:
            self.registrar.touch(call.endpoint)
        if method == "BYE":
            tx.respond(msg.response(200))
            self._remote_bye(call, leg, msg)
        elif method == "REFER":
            self._on_refer(call, leg, msg, tx)
        elif method in ("INVITE", "UPDATE"):
            if leg.reinviting:
                tx.respond(msg.response(491))
                return
            if msg.body:
                leg.remote_sdp = msg.body
            # an offer gets our answer; an INVITE without one gets our offer (what we last gave this leg)
            wants_sdp = bool(msg.body) or method == "INVITE"
            body = sdp.with_origin(leg.local_sdp, leg.origin) if wants_sdp and leg.local_sdp else b""
            headers = [("Contact", leg.contact)] + ([("Content-Type", "application/sdp")] if body else [])
            tx.respond(msg.response(200, headers=headers, body=body))
        elif method == "OPTIONS":
            tx.respond(msg.response(200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")]))
        elif (call.inbound and leg is call.customer and call.state is CallState.ringing
              and not call.inbound_answered and call.inbound_tx is not None
              and msg.cseq[0] == call.inbound_tx.request.cseq[0]):
            # the caller gives up while it rings: 200 to the CANCEL, 487 to his INVITE (§9.2)
            tx.respond(msg.response(200))
            self._refuse(call, 487, "the caller gave up while it rang", side=Side.customer)
        else:  # a CANCEL of a request already answered (§9.2: 200 to the CANCEL, nothing else changes)
            tx.respond(msg.response(200))

    def _remote_bye(self, call: _Call, leg: Leg, msg: Message) -> None:
        leg.fire(DialogEvent.bye)
        self._forget_leg(leg)
        reason = msg.get("Reason") or ""
        if call.refer is not None and leg is call.refer.leg and leg is not call.operator:
            call.refer = None  # the phone that asked for the transfer left before its outcome
            return
        if leg is call.consult:
            if call.state is CallState.connected:
                self._spawn(self._consult_over(call, reason or "the consulted operator hung up", failed=False),
                            f"sip consult over {call.id}")
            return
        if leg is not call.customer and leg is not call.operator:
            return  # a leg the call no longer uses
        if leg is call.operator and call.consult_endpoint is not None and call.state is CallState.connected:
            # the consulting operator hung up: the customer waits again (the engine offers him on)
            self._back_to_waiting(call, reason or "operator hung up during a consultation")
            return
        if leg is call.customer:
            if call.state is CallState.ringing and call.inbound:
                self._teardown(call, Side.customer, reason or "the caller hung up")
                return
            if call.state is CallState.ringing:
                return
            self._teardown(call, Side.customer, reason or "normal clearing")
        elif call.state is CallState.connected:
            self._teardown(call, Side.operator, reason or "operator hung up")
        # while connecting, the flow sees ``leg.ended`` when its next answer arrives

    def _on_stray_response(self, msg: Message, peer: Peer) -> None:
        """A 2xx retransmitted after its transaction ended: re-send the leg's ACK."""
        if (msg.status or 0) >= 300 or msg.status is None or msg.status < 200:
            return
        entry = self._legs.get(msg.call_id)
        if entry is None:
            return
        leg = entry[1]
        if leg.ack is not None and leg.ack.cseq[0] == msg.cseq[0]:
            self.layer.send_stateless(leg.ack, self._hop(leg))

    def _on_missing_ack(self, tx: InviteServerTransaction) -> None:
        """Timer H of an INVITE we answered (a re-INVITE from the carrier or from a phone): our final response was
        retransmitted for 64·T1 and never ACKed. After a 2xx the dialog is dead (RFC 3261 §13.3.1.4): the call is
        ended with a BYE on both legs and reported ``hung_up`` by the dialer. A refused INVITE (491, 403) set nothing
        up: nothing to end."""
        status = tx.last.status if tx.last is not None else None
        if status is None or not 200 <= status < 300:
            return
        entry = self._legs.get(tx.request.call_id)
        if entry is None:
            return
        call, leg = entry
        if leg.ended or call.state is CallState.ended:
            return
        whose = "customer" if leg is call.customer else "operator's phone"
        cause = f"no ACK from the {whose} to our {status} for its re-INVITE within {64 * self.settings.t1_s:g} s"
        log.warning("call %s: %s; ending the call", call.id, cause)
        if call.inbound and call.state is CallState.ringing:
            self._teardown(call, Side.dialer, cause.replace("for its re-INVITE", "for its INVITE"))
            return
        if call.state is CallState.ringing:
            self._finish(call, CallEvent(call.id, CallEventKind.failed, self.clock.now(), cause=cause))
            self._cancel(call.customer)
            return
        self._teardown(call, Side.dialer, cause)


async def _run(coro: Awaitable[None]) -> None:
    await coro


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _outbound_ip() -> str:
    """The address this host uses towards the outside (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
            return str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1"
