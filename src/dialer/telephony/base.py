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


Event = CallEvent | EndpointEvent | TrunkEvent | IncomingCall


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
class AnswersInbound(Protocol):
    """The optional capability of taking inbound calls (see the module docstring); the simulator and the SIP driver
    have it."""

    async def answer(self, call_id: CallId) -> None:
        """Answer a ringing inbound call; ``answered`` follows when it is up. Raises UnknownCall when the call is not
        an inbound call ringing (the caller gave up meanwhile: its ``hung_up`` follows)."""
