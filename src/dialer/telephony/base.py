"""The telephony driver interface: what the engine asks of the simulator and of the SIP driver alike.

A driver places outbound calls, reports their progress as events, connects an answered call to an
operator's endpoint (a softphone or desk phone), plays hold audio to a waiting call and hangs up.
It also reports the state of operators' endpoints. Everything a driver reports arrives on one
ordered stream, :meth:`Telephony.events`; the engine never polls.

Rules every driver keeps (the contract tests in ``tests/telephony/contract.py`` check them):

* ``originate`` returns at once with a new :data:`CallId`; progress follows as events, in order
  ``trying`` → (``ringing``) → exactly one final result: ``answered`` (then later ``hung_up``),
  ``busy``, ``no_answer``, ``rejected`` or ``failed``. ``no_answer`` is reported by the driver
  itself when ``answer_timeout_s`` passes without an answer.
* ``hung_up`` is the last event of an answered call and says which side ended it.
* ``connect`` may only be called for an answered call; it reports ``connected`` when the customer
  and the operator can hear each other, or raises :class:`EndpointUnavailable`.
* ``hangup`` of a call that is still ringing cancels it (``no_answer`` with cause ``cancelled``);
  ``hangup`` of an unknown or finished call raises :class:`UnknownCall`.
* Errors of the transport are translated at the edge into :class:`TelephonyError` subclasses.

Optional capabilities, looked up with ``getattr`` by the engine (a driver without them still works):

* ``withdraw(call_id)`` (:class:`WithdrawsOffers`): take back an offer made by ``connect`` that the operator
  has not picked up — his phone stops ringing, the customer waits again (on hold audio) and may be connected to
  someone else. Raises :class:`UnknownCall` when there is nothing to take back (the call ended, or the operator
  picked up: ``connected`` follows). Without it the engine lets the phone ring on.
* ``registrations()``: the operators' phones online now (the SIP driver's registrar).
* ``answer(call_id)`` (:class:`AnswersInbound`): take an inbound call (below).

Answering machines: ``Originate.detect_machine`` asks the driver to listen to the first seconds of an answered call
before it reports ``answered``: the event then says ``answered_by`` human or machine, and its ``at`` is still the
moment the call was answered (the time spent deciding counts toward the engine's wait for an operator). A customer
who hangs up while the driver listens is reported ``answered`` (human) and then ``hung_up``. With
``machine_message`` a machine's call is reported ``answered`` (machine), the message is played after the greeting and
the driver hangs up (``hung_up`` side ``dialer``, cause "machine message left").

Transfers (the optional :class:`TransfersCalls`, the simulator and the SIP driver have it): the customer of a
connected call goes to another operator (blind, or attended after a consultation), back to waiting for any operator
of a pool, or to an external number through a trunk. The call keeps its :data:`CallId` throughout.

Inbound calls (customers calling the caller IDs back; the simulator and the SIP driver have them):

* A call arriving from a trunk is reported by :class:`IncomingCall` (its own :data:`CallId`, the caller's and the
  dialled number as the network gave them); it rings until the consumer decides. A SIP driver takes calls only from
  its configured trunks' addresses (anyone else still gets 403).
* ``answer(call_id)`` takes it: ``answered`` (``answered_by`` human) follows once the call is up, and from then on it
  is an answered call like an outbound one — ``connect``, ``play``, ``withdraw`` and ``hangup`` work the same, and
  ``hung_up`` is its last event.
* ``hangup(call_id)`` of an inbound call still ringing refuses it (SIP: 486 Busy Here); ``hung_up`` follows with side
  ``dialer``. A caller who gives up while it rings (SIP: CANCEL) ends it with ``hung_up`` side ``customer``. A
  driver may refuse a call nobody answers within its own limit the same way. An inbound call never reports
  ``trying``, ``ringing``, ``busy``, ``no_answer``, ``rejected`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType, Protocol, runtime_checkable

CallId = NewType("CallId", str)


class CallEventKind(StrEnum):
    trying = "trying"
    ringing = "ringing"
    answered = "answered"
    busy = "busy"
    no_answer = "no_answer"
    rejected = "rejected"
    failed = "failed"
    connected = "connected"
    hung_up = "hung_up"


#: The results that end a call before it was answered.
UNANSWERED_RESULTS = frozenset({CallEventKind.busy, CallEventKind.no_answer, CallEventKind.rejected,
                                CallEventKind.failed})


class AnsweredBy(StrEnum):
    human = "human"
    machine = "machine"


class Side(StrEnum):
    customer = "customer"
    operator = "operator"
    dialer = "dialer"


class EndpointEventKind(StrEnum):
    registered = "registered"
    unregistered = "unregistered"
    ringing = "ringing"
    answered = "answered"
    hung_up = "hung_up"
    unreachable = "unreachable"


@dataclass(frozen=True, slots=True)
class Originate:
    """One outbound call to place."""

    number: str  # E.164
    caller_id: str | None = None
    answer_timeout_s: float = 30.0
    #: Opaque values the driver passes back (attempt id, campaign id) and may put into signalling.
    variables: Mapping[str, str] = field(default_factory=dict)
    #: Answering-machine detection (see "Answering machines" in the module docstring).
    detect_machine: bool = False
    #: With ``detect_machine``: a message (an audio name, as for ``play``) left on a machine after its greeting; the
    #: driver plays it once and hangs up. None: a machine is reported at once and the engine hangs up.
    machine_message: str | None = None
    #: Record the call (a driver with a media plane; see :class:`Records`). Ignored by drivers without one.
    record: bool = False


@dataclass(frozen=True, slots=True)
class CallEvent:
    call_id: CallId
    kind: CallEventKind
    #: Clock reading (seconds, monotonic) when it happened.
    at: float
    answered_by: AnsweredBy | None = None
    #: Who ended the call (``hung_up``).
    side: Side | None = None
    #: Human-readable cause of a failure or hang-up, e.g. "503 Service Unavailable", "cancelled".
    cause: str = ""
    #: Protocol code behind the result where there is one (SIP status).
    code: int | None = None
    #: The operator endpoint of ``connected`` / ``hung_up`` after a connection.
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    endpoint: str
    kind: EndpointEventKind
    at: float
    detail: str = ""
    #: The call an offer to this endpoint belongs to (``ringing``, ``answered``, ``hung_up`` of an operator's leg).
    call_id: CallId | None = None
    #: ``hung_up``: the offer of ``call_id`` failed by itself — the phone refused it (486, 603, 4xx, 5xx), did not
    #: answer within its ring time, or cannot be reached — and the customer is waiting again: the engine offers him
    #: to someone else at once. (A ``withdraw`` or the end of the call is not a failed offer.)
    offer_failed: bool = False
    #: ``hung_up`` of a *connected* call's operator whose phone was lost mid-call (stopped answering, lost the dialog,
    #: a browser softphone disconnected): the driver has put the customer back to waiting (hold audio), and the engine
    #: offers him to another operator at once — the customer is rescued, not hung up on.
    phone_lost: bool = False


@dataclass(frozen=True, slots=True)
class TrunkEvent:
    """A trunk stopped answering (``up`` false: its calls are not placed) or answers again."""

    trunk_id: int
    name: str
    up: bool
    at: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A call arriving from a trunk (see the module docstring): ringing until answered or refused."""

    call_id: CallId
    #: The caller's number as the network gave it (SIP: the user part of From), not normalised.
    caller: str
    #: The number he dialled (SIP: the user part of the Request-URI), not normalised.
    dialled: str
    at: float
    #: The trunk it came through, where the driver knows trunks.
    trunk_id: int | None = None


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """An operator's phone asked to transfer its call itself (SIP REFER): the consumer decides and carries it out with
    :class:`TransfersCalls` (the driver answers the phone accordingly)."""

    call_id: CallId
    endpoint: str
    #: What the phone asked for: an operator's login / extension, or a number, as given (SIP: Refer-To's user part).
    target: str
    at: float
    #: Attended (the phone consulted the target first, SIP Replaces) rather than blind.
    attended: bool = False


Event = CallEvent | EndpointEvent | TrunkEvent | IncomingCall | TransferRequested


class TelephonyError(Exception):
    """Base of what a driver raises."""


class TrunkUnavailable(TelephonyError):
    """No call can be placed now (trunk down, over its limits)."""


class UnknownCall(TelephonyError):
    """The call does not exist or has already ended."""


class EndpointUnavailable(TelephonyError):
    """The operator's endpoint is not registered, not answering, or busy."""


@runtime_checkable
class Telephony(Protocol):
    """A telephony driver. Implementations: ``telephony.sim.SimTelephony``, ``telephony.sip`` (real).

    Both also implement the optional :class:`WithdrawsOffers`."""

    async def start(self) -> None:
        """Open transports and begin reporting endpoint states."""

    async def close(self) -> None:
        """Hang up what is still up and release resources; ``events()`` then ends."""

    async def originate(self, request: Originate) -> CallId:
        """Place one outbound call; its progress arrives on :meth:`events`. Raises TrunkUnavailable."""

    def events(self) -> AsyncIterator[Event]:
        """The single ordered stream of call and endpoint events (one consumer)."""

    async def connect(self, call_id: CallId, endpoint: str) -> None:
        """Connect an answered call to an operator's endpoint; ``connected`` follows when both hear each other.

        Raises UnknownCall, EndpointUnavailable."""

    async def play(self, call_id: CallId, audio: str | None) -> None:
        """Play hold music or a message (a file name; None stops it) to an answered call waiting for an operator."""

    async def hangup(self, call_id: CallId, cause: str = "normal") -> None:
        """End a call in any state: cancels a ringing call, hangs up an answered one. Raises UnknownCall."""


@runtime_checkable
class WithdrawsOffers(Protocol):
    """The optional capability of taking back an offer (see the module docstring); the simulator and the SIP driver
    have it."""

    async def withdraw(self, call_id: CallId) -> None:
        """Stop offering an answered call to the operator it is being connected to; the customer waits again.

        Raises UnknownCall when the call is not being offered (ended, or the operator already picked up)."""


@runtime_checkable
class TransfersCalls(Protocol):
    """The optional capability of transferring a connected call (see the module docstring).

    Events: ``release`` ends the operator's leg with an ``EndpointEvent`` ``hung_up`` of his endpoint (``call_id`` set,
    ``offer_failed`` false, detail "released"), and the customer waits again (``connect`` may follow). During a
    consultation the second endpoint reports ``ringing``/``answered``/``hung_up`` with the same ``call_id``;
    ``complete`` reports ``connected`` with the new ``endpoint`` after the first operator's ``hung_up``. An external
    transfer reports ``connected`` with ``endpoint`` ``"external:<number>"`` once the number answers; if it does not,
    the customer waits again and ``EndpointEvent`` ``hung_up`` of ``"external:<number>"`` with ``offer_failed`` true
    follows. A phone's own transfer (SIP REFER) is reported as :class:`TransferRequested` and carried out only when
    the consumer calls one of these methods (``release`` then ``connect``, ``consult``/``complete``, or
    ``transfer_external``); the phone is told the outcome of the first one (SIP: NOTIFY 200, or the failure), and a
    request nobody acts on within the driver's limit (SIP: 10 s) is declined — the operator keeps his customer."""

    async def release(self, call_id: CallId) -> None:
        """Blind transfer, first step: end the operator's leg of a connected call; the customer waits again on hold
        audio (``connect`` then offers him to the next operator). Raises UnknownCall unless connected."""

    async def consult(self, call_id: CallId, endpoint: str) -> None:
        """Attended transfer: put the customer of a connected call on hold audio and ring ``endpoint``; when it
        answers, its phone and the first operator's phone talk to each other. Raises UnknownCall,
        EndpointUnavailable."""

    async def complete(self, call_id: CallId) -> None:
        """End a consultation by connecting the customer to the consulted endpoint and ending the first operator's
        leg. Raises UnknownCall when no consultation is answered."""

    async def cancel_consult(self, call_id: CallId) -> None:
        """End a consultation (ringing or answered): the consulted leg ends and the first operator talks to the
        customer again. Raises UnknownCall when there is none."""

    async def transfer_external(self, call_id: CallId, number: str, caller_id: str | None = None) -> None:
        """Send the customer of a connected (or waiting) call to ``number`` (E.164) through a trunk, blind: the
        operator's leg ends at once (``hung_up`` detail "transferred") and the customer holds (hold audio) while the
        number rings; ``connected`` with ``"external:<number>"`` when it answers, else the customer waits for an
        operator again (see the class docstring). Raises UnknownCall, TrunkUnavailable, TelephonyError (not E.164)."""


@runtime_checkable
class Records(Protocol):
    """The optional capability of recording calls (a driver with a media plane, ``Originate.record``)."""

    async def start_recording(self, call_id: CallId) -> None:
        """Start (or resume) recording an answered call. Raises UnknownCall."""

    async def stop_recording(self, call_id: CallId) -> None:
        """Stop recording; what was recorded is kept. Raises UnknownCall."""


@runtime_checkable
class AnswersInbound(Protocol):
    """The optional capability of taking inbound calls (see the module docstring); the simulator and the SIP driver
    have it."""

    async def answer(self, call_id: CallId) -> None:
        """Answer a ringing inbound call; ``answered`` follows when it is up. Raises UnknownCall when the call is not
        an inbound call ringing (the caller gave up meanwhile: its ``hung_up`` follows)."""
