"""Simulated telephony: a seeded, reproducible driver with the same interface as the SIP driver.

Each placed call gets its fate from a :class:`~dialer.telephony.traffic.TrafficSampler` (live
answer, answering machine, busy, failed, rejected or no answer, with its delays and talk time),
then lives as an asyncio task that sleeps on the injected :class:`~dialer.core.clock.Clock`.
With the system clock it runs in real time (the demo); with a virtual clock the same code runs
hours of calling in seconds (benchmarks, tests).

Simulated operator endpoints are registered with :meth:`SimTelephony.register_endpoint`; a
connected customer talks for the fate's talk time and then hangs up, unless the dialer or the
operator (:meth:`SimTelephony.operator_hangup`) ends the call first. A live customer that nobody
connects hangs up after his patience runs out.

Inbound calls (:meth:`SimTelephony.incoming`): a customer calls a caller ID; the call rings (reported by
:class:`~dialer.telephony.base.IncomingCall`) until :meth:`SimTelephony.answer` takes it, ``hangup`` refuses it, or
the caller gives up; once answered it lives like an answered outbound call (waits for an operator with his patience,
talks for his talk time).

Transfers (:class:`~dialer.telephony.base.TransfersCalls`): ``release`` puts a connected customer back to waiting,
``consult``/``complete``/``cancel_consult`` ring a second simulated endpoint (it answers after its ``answer_after_s``)
while the customer holds, ``transfer_external`` ends the operator's leg at once and "dials" the number, which answers
after ``external_answer_s`` unless :attr:`SimTelephony.failing_numbers` names it (then the customer waits again). A
customer's talk time is his whole conversation, whoever he talks to. :meth:`SimTelephony.operator_refer` makes an
operator's phone ask for a transfer itself (reported as ``TransferRequested``); :meth:`SimTelephony.phone_lost` makes an
operator's phone die mid-call (the customer waits again, ``hung_up`` with ``phone_lost``, the endpoint
``unreachable`` until registered again).

Answering-machine detection (``Originate.detect_machine``): the answer is reported after a decision delay
(``amd_human_s`` for a person, the scenario's ``machine_detect_s`` for a machine) with its ``at`` at the moment of the
answer; with ``machine_message`` a machine hears the message (``message_s`` long) and the dialer hangs up ("machine
message left"). Without ``detect_machine`` a machine is reported as the network would (after ``machine_detect_s``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dialer.core.clock import Clock
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
    TrunkUnavailable,
    UnknownCall,
)
from dialer.telephony.traffic import CallFate, Distribution, Outcome, Scenario, TrafficSampler, Uniform

#: Signalling causes the simulator reports, as a SIP trunk would.
CAUSES = {
    Outcome.busy: ("486 Busy Here", 486),
    Outcome.rejected: ("603 Decline", 603),
    Outcome.failed: ("503 Service Unavailable", 503),
    Outcome.no_answer: ("no answer", 408),
}


@dataclass
class _Call:
    id: CallId
    request: Originate
    fate: CallFate
    placed_at: float
    state: str = "ringing"  # ringing | deciding | answered | connecting | connected | transferring | ended
    answered_by: AnsweredBy | None = None
    endpoint: str | None = None
    task: asyncio.Task[None] | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    withdrawn: asyncio.Event = field(default_factory=asyncio.Event)
    #: An inbound call (:meth:`SimTelephony.incoming`); ``taken`` is set when it is answered.
    inbound: bool = False
    taken: asyncio.Event = field(default_factory=asyncio.Event)
    #: How long the waiting customer keeps waiting for an operator (None: the driver's patience).
    hold_patience_s: float | None = None
    #: Set when a connected customer goes back to waiting (released, phone lost, external transfer started).
    requeued: asyncio.Event = field(default_factory=asyncio.Event)
    #: The moment the customer answered (``at`` of an ``answered`` reported after machine detection).
    answered_at: float | None = None
    #: A consultation: the consulted endpoint and whether it has answered; its task rings it.
    consult: str | None = None
    consult_answered: bool = False
    consult_task: asyncio.Task[None] | None = None
    #: An external transfer ringing: its task "dials" the number.
    external_task: asyncio.Task[None] | None = None


@dataclass
class _Endpoint:
    name: str
    answer_after_s: float
    call: CallId | None = None
    #: False after :meth:`SimTelephony.phone_lost` until it registers again.
    reachable: bool = True


class SimTelephony:
    """The simulated driver. ``max_concurrent`` makes ``originate`` refuse beyond that many live calls."""

    def __init__(self, clock: Clock, scenario: Scenario, *, seed: int | None = None,
                 patience_s: Distribution | None = None, ring_after_s: float = 0.5,
                 connect_after_s: float = 0.2, machine_message_s: float = 30.0,
                 max_concurrent: int | None = None, amd_human_s: float = 1.0, message_s: float = 10.0,
                 external_answer_s: float = 2.0) -> None:
        self.clock = clock
        self.scenario = scenario
        self.sampler = TrafficSampler(scenario, seed=seed)
        self._rng = random.Random((seed if seed is not None else scenario.seed) + 7919)
        # the caller's patience, else the scenario's, else 5–30 s
        self.patience_s = patience_s or scenario.patience_s or Uniform(5.0, 30.0)
        self._zone = ZoneInfo(scenario.time_zone) if scenario.hour_basis == "clock" else None
        self.ring_after_s = ring_after_s
        self.connect_after_s = connect_after_s
        self.machine_message_s = machine_message_s
        self.max_concurrent = max_concurrent
        #: Machine detection's decision time for a person; the length of a message left on a machine.
        self.amd_human_s = amd_human_s
        self.message_s = message_s
        #: How long an external number rings before it answers; numbers that do not answer, with the cause.
        self.external_answer_s = external_answer_s
        self.failing_numbers: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._calls: dict[CallId, _Call] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._started_at: float | None = None
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._started_at = self.clock.now()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for call in list(self._calls.values()):
            if call.task is not None:
                call.task.cancel()
        await asyncio.gather(*(c.task for c in self._calls.values() if c.task), return_exceptions=True)
        self._calls.clear()
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    # --- endpoints ----------------------------------------------------------------------------------------
    def register_endpoint(self, name: str, *, answer_after_s: float = 0.0) -> None:
        """A simulated operator phone comes online (auto-answering after ``answer_after_s``)."""
        known = self._endpoints.get(name)
        self._endpoints[name] = _Endpoint(name, answer_after_s, call=known.call if known is not None else None)
        self._emit(EndpointEvent(name, EndpointEventKind.registered, self.clock.now()))

    def unregister_endpoint(self, name: str) -> None:
        if self._endpoints.pop(name, None) is not None:
            self._emit(EndpointEvent(name, EndpointEventKind.unregistered, self.clock.now()))

    def operator_hangup(self, endpoint: str) -> None:
        """The operator hangs up the call on his endpoint (a consulted endpoint ends the consultation)."""
        ep = self._endpoints.get(endpoint)
        if ep is None or ep.call is None:
            raise UnknownCall(f"endpoint {endpoint} has no call")
        call = self._calls[ep.call]
        if call.consult == endpoint:
            self._end_consult(call, "consulted operator hung up")
            return
        self._end(call, Side.operator, "operator hung up")

    def phone_lost(self, endpoint: str) -> None:
        """The phone of ``endpoint`` dies in the middle of a connected call: it is reported ``unreachable`` (until
        it registers again), its leg ``hung_up`` with ``phone_lost`` and the customer waits again (hold audio)."""
        ep = self._endpoints.get(endpoint)
        call = self._calls.get(ep.call) if ep is not None and ep.call is not None else None
        if ep is None or call is None or call.state != "connected" or call.endpoint != endpoint:
            raise UnknownCall(f"endpoint {endpoint} has no connected call")
        now = self.clock.now()
        ep.reachable = False
        self._emit(EndpointEvent(endpoint, EndpointEventKind.unreachable, now, detail="the phone stopped answering"))
        if call.consult is not None:
            self._end_consult(call, "the consulting operator's phone was lost")
        self._drop_operator(call, "the phone stopped answering", phone_lost=True)
        self._requeue(call)

    def operator_refer(self, endpoint: str, target: str, *, attended: bool = False) -> None:
        """The operator's phone asks to transfer its connected call to ``target`` (SIP REFER): reported as
        ``TransferRequested``; nothing changes until the consumer carries a transfer out."""
        ep = self._endpoints.get(endpoint)
        call = self._calls.get(ep.call) if ep is not None and ep.call is not None else None
        if ep is None or call is None or call.state != "connected" or call.endpoint != endpoint:
            raise UnknownCall(f"endpoint {endpoint} has no connected call")
        self._emit(TransferRequested(call.id, endpoint, target, self.clock.now(), attended=attended))

    # --- calls --------------------------------------------------------------------------------------------
    def live_calls(self) -> int:
        return len(self._calls)

    async def originate(self, request: Originate) -> CallId:
        if self._closed:
            raise TrunkUnavailable("the simulated trunk is closed")
        if self.max_concurrent is not None and len(self._calls) >= self.max_concurrent:
            raise TrunkUnavailable(f"over the limit of {self.max_concurrent} concurrent calls")
        now = self.clock.now()
        started = self._started_at if self._started_at is not None else now
        # answer rates by hours since the start, or by the hour of the day on the clock (hour_basis "clock")
        hour = self.clock.utcnow().astimezone(self._zone).hour if self._zone is not None else None
        call = _Call(CallId(f"sim-{next(self._ids)}"), request, self.sampler.fate(now - started, hour=hour), now)
        self._calls[call.id] = call
        self._emit(CallEvent(call.id, CallEventKind.trying, now))
        call.task = asyncio.create_task(self._life(call), name=f"sim call {call.id}")
        return call.id

    def incoming(self, caller: str, dialled: str, *, talk_s: float = 60.0, ring_patience_s: float = 30.0,
                 hold_patience_s: float | None = None, trunk_id: int | None = 1) -> CallId:
        """A customer calls ``dialled`` from ``caller``: reported as :class:`IncomingCall`, ringing until answered
        (:meth:`answer`), refused (``hangup``) or given up after ``ring_patience_s``. Once answered he waits for an
        operator for ``hold_patience_s`` (default: the driver's patience) and talks ``talk_s`` when connected."""
        if self._closed:
            raise TrunkUnavailable("the simulated trunk is closed")
        now = self.clock.now()
        fate = CallFate(Outcome.human, 0.0, 0.0, talk_s, 0.0)
        call = _Call(CallId(f"sim-in-{next(self._ids)}"), Originate(number=caller, caller_id=dialled), fate, now,
                     inbound=True, hold_patience_s=hold_patience_s)
        self._calls[call.id] = call
        self._emit(IncomingCall(call.id, caller, dialled, now, trunk_id))
        call.task = asyncio.create_task(self._inbound_life(call, ring_patience_s), name=f"sim call {call.id}")
        return call.id

    async def answer(self, call_id: CallId) -> None:
        """Answer a ringing inbound call: ``answered`` is reported at once."""
        call = self._calls.get(call_id)
        if call is None or not call.inbound or call.state != "ringing":
            raise UnknownCall(f"call {call_id} is not an inbound call ringing")
        call.state, call.answered_by = "answered", AnsweredBy.human
        self._emit(CallEvent(call.id, CallEventKind.answered, self.clock.now(), answered_by=AnsweredBy.human,
                             code=200))
        call.taken.set()

    async def connect(self, call_id: CallId, endpoint: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.state not in ("answered",):
            raise UnknownCall(f"call {call_id} is not waiting for an operator")
        ep = self._free_endpoint(endpoint)
        ep.call = call.id
        call.endpoint = endpoint
        call.state = "connecting"
        self._emit(EndpointEvent(endpoint, EndpointEventKind.ringing, self.clock.now(), call_id=call.id))
        call.connected.set()

    async def withdraw(self, call_id: CallId) -> None:
        """Stop offering an answered call to the operator it was connected to (he did not pick up): his phone stops
        ringing and the customer waits again, as before :meth:`connect`. An optional driver operation the engine
        uses for its offer timeout. Raises UnknownCall when the call is not being offered."""
        call = self._calls.get(call_id)
        if call is None or call.state != "connecting":
            raise UnknownCall(f"call {call_id} is not being offered to an operator")
        ep = self._endpoints.get(call.endpoint or "")
        if ep is not None and ep.call == call.id:
            ep.call = None
            self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, self.clock.now(), detail="withdrawn",
                                     call_id=call.id))
        call.endpoint = None
        call.state = "answered"
        call.connected.clear()
        call.withdrawn.set()

    async def play(self, call_id: CallId, audio: str | None) -> None:
        if call_id not in self._calls:
            raise UnknownCall(f"call {call_id} does not exist or has ended")

    async def hangup(self, call_id: CallId, cause: str = "normal") -> None:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} does not exist or has ended")
        if call.state == "ringing" and call.inbound:
            self._end(call, Side.dialer, f"refused: {cause}")
        elif call.state == "deciding":  # hung up while the machine detection listens: a person, hung up on
            self._answered(call, AnsweredBy.human)
            self._end(call, Side.dialer, cause)
        elif call.state == "ringing":
            self._finish(call, CallEvent(call.id, CallEventKind.no_answer, self.clock.now(), cause="cancelled"))
        else:
            self._end(call, Side.dialer, cause)

    # --- transfers ----------------------------------------------------------------------------------------
    async def release(self, call_id: CallId) -> None:
        """End the operator's leg of a connected call (``hung_up`` detail "released"); the customer waits again."""
        call = self._connected(call_id)
        if call.consult is not None:
            self._end_consult(call, "released")
        self._drop_operator(call, "released")
        self._requeue(call)

    async def consult(self, call_id: CallId, endpoint: str) -> None:
        """The customer holds while ``endpoint`` rings (``ringing``, then ``answered`` after its answer delay)."""
        call = self._connected(call_id)
        if call.consult is not None:
            raise EndpointUnavailable(f"call {call_id} is already consulting {call.consult}")
        ep = self._free_endpoint(endpoint)
        ep.call = call.id
        call.consult, call.consult_answered = endpoint, False
        self._emit(EndpointEvent(endpoint, EndpointEventKind.ringing, self.clock.now(), call_id=call.id))
        call.consult_task = asyncio.create_task(self._ring_consulted(call, ep), name=f"sim consult {call.id}")

    async def _ring_consulted(self, call: _Call, ep: _Endpoint) -> None:
        try:
            await self.clock.sleep(ep.answer_after_s + self.connect_after_s)
        except asyncio.CancelledError:
            return
        if call.consult == ep.name and call.state == "connected":
            call.consult_answered = True
            self._emit(EndpointEvent(ep.name, EndpointEventKind.answered, self.clock.now(), call_id=call.id))

    async def complete(self, call_id: CallId) -> None:
        """The consulted endpoint takes the customer: the first operator's ``hung_up`` (detail "transferred"), then
        ``connected`` with the new endpoint."""
        call = self._calls.get(call_id)
        if call is None or call.state != "connected" or call.consult is None or not call.consult_answered:
            raise UnknownCall(f"call {call_id} has no answered consultation")
        target = call.consult
        call.consult, call.consult_answered, call.consult_task = None, False, None
        self._drop_operator(call, "transferred")
        call.endpoint = target
        self._emit(CallEvent(call.id, CallEventKind.connected, self.clock.now(), endpoint=target))

    async def cancel_consult(self, call_id: CallId) -> None:
        """The consulted endpoint's leg ends (``hung_up``); the first operator talks to the customer again."""
        call = self._calls.get(call_id)
        if call is None or call.state != "connected" or call.consult is None:
            raise UnknownCall(f"call {call_id} has no consultation")
        self._end_consult(call, "consultation cancelled")

    async def transfer_external(self, call_id: CallId, number: str, caller_id: str | None = None) -> None:
        """Blind transfer to ``number``: the operator's leg (if any) ends at once (detail "transferred"), the customer
        holds while it rings; ``connected`` with ``external:<number>`` when it answers, or the customer waits again
        and ``external:<number>`` is reported ``hung_up`` with ``offer_failed``."""
        call = self._calls.get(call_id)
        if call is None or call.state not in ("connected", "answered"):
            raise UnknownCall(f"call {call_id} is neither connected nor waiting")
        if self._closed:
            raise TrunkUnavailable("the simulated trunk is closed")
        if not number.startswith("+") or not number[1:].isdigit():
            raise TelephonyError(f"{number!r} is not an E.164 number")
        if call.state == "connected":
            if call.consult is not None:
                self._end_consult(call, "transferred")
            self._drop_operator(call, "transferred")
            self._requeue(call)
        call.state = "transferring"
        call.external_task = asyncio.create_task(self._dial_external(call, number), name=f"sim external {call.id}")

    async def _dial_external(self, call: _Call, number: str) -> None:
        endpoint = f"external:{number}"
        try:
            await self.clock.sleep(self.external_answer_s)
        except asyncio.CancelledError:
            return
        call.external_task = None
        if call.state != "transferring":
            return
        failure = self.failing_numbers.get(number)
        if failure is not None:
            call.state = "answered"
            self._emit(EndpointEvent(endpoint, EndpointEventKind.hung_up, self.clock.now(), detail=failure,
                                     call_id=call.id, offer_failed=True))
            return
        call.endpoint = endpoint
        call.connected.set()

    def _connected(self, call_id: CallId) -> _Call:
        call = self._calls.get(call_id)
        if call is None or call.state != "connected" or call.endpoint is None:
            raise UnknownCall(f"call {call_id} is not connected")
        return call

    def _free_endpoint(self, endpoint: str) -> _Endpoint:
        ep = self._endpoints.get(endpoint)
        if ep is None:
            raise EndpointUnavailable(f"endpoint {endpoint} is not registered")
        if not ep.reachable:
            raise EndpointUnavailable(f"endpoint {endpoint} does not answer")
        if ep.call is not None:
            raise EndpointUnavailable(f"endpoint {endpoint} is busy with call {ep.call}")
        return ep

    def _drop_operator(self, call: _Call, detail: str, *, phone_lost: bool = False) -> None:
        """End the leg of the call's operator (external parties have none), reporting its ``hung_up``."""
        endpoint = call.endpoint
        call.endpoint = None
        ep = self._endpoints.get(endpoint or "")
        if ep is not None and ep.call == call.id:
            ep.call = None
            self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, self.clock.now(), detail=detail,
                                     call_id=call.id, phone_lost=phone_lost))

    def _end_consult(self, call: _Call, detail: str) -> None:
        endpoint = call.consult
        if call.consult_task is not None and call.consult_task is not asyncio.current_task():
            call.consult_task.cancel()
        call.consult, call.consult_answered, call.consult_task = None, False, None
        ep = self._endpoints.get(endpoint or "")
        if ep is not None and ep.call == call.id:
            ep.call = None
            self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, self.clock.now(), detail=detail,
                                     call_id=call.id))

    def _requeue(self, call: _Call) -> None:
        """A connected customer waits for an operator again (his conversation task starts waiting anew)."""
        call.state = "answered"
        call.connected.clear()
        call.requeued.set()

    # --- internals ----------------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def _finish(self, call: _Call, event: CallEvent) -> None:
        """Final event of a call; the call is forgotten and its task stopped."""
        if call.state == "ended":
            return
        call.state = "ended"
        self._calls.pop(call.id, None)
        for side_task in (call.consult_task, call.external_task):
            if side_task is not None and side_task is not asyncio.current_task():
                side_task.cancel()
        if call.consult is not None:
            ep = self._endpoints.get(call.consult)
            if ep is not None and ep.call == call.id:
                ep.call = None
                self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, event.at, detail=event.cause,
                                         call_id=call.id))
        if call.endpoint is not None:
            ep = self._endpoints.get(call.endpoint)
            if ep is not None and ep.call == call.id:
                ep.call = None
                self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, event.at, detail=event.cause,
                                         call_id=call.id))
        self._emit(event)
        current = asyncio.current_task()
        if call.task is not None and call.task is not current:
            call.task.cancel()

    def _end(self, call: _Call, side: Side, cause: str) -> None:
        self._finish(call, CallEvent(call.id, CallEventKind.hung_up, self.clock.now(), side=side, cause=cause,
                                     endpoint=call.endpoint))

    async def _life(self, call: _Call) -> None:
        clock, fate, req = self.clock, call.fate, call.request
        timeout = req.answer_timeout_s
        picks_up = fate.outcome in (Outcome.human, Outcome.machine) and fate.signal_s < timeout
        if picks_up:
            result_at = fate.signal_s
        elif fate.outcome in (Outcome.busy, Outcome.rejected, Outcome.failed):
            result_at = min(fate.signal_s, timeout)
        else:  # nobody picks up before the dialer's own answer timeout
            result_at = timeout
        try:
            if result_at > self.ring_after_s:
                await clock.sleep(self.ring_after_s)
                self._emit(CallEvent(call.id, CallEventKind.ringing, clock.now()))
                await clock.sleep(result_at - self.ring_after_s)
            else:
                await clock.sleep(result_at)
            if not picks_up:
                outcome = fate.outcome if fate.outcome not in (Outcome.human, Outcome.machine) else Outcome.no_answer
                cause, code = CAUSES[outcome]
                kind = {Outcome.busy: CallEventKind.busy, Outcome.rejected: CallEventKind.rejected,
                        Outcome.failed: CallEventKind.failed}.get(outcome, CallEventKind.no_answer)
                self._finish(call, CallEvent(call.id, kind, clock.now(), cause=cause, code=code))
                return
            if req.detect_machine:
                await self._detect(call)
                return
            if fate.outcome is Outcome.machine:
                await clock.sleep(fate.machine_detect_s)
                call.state, call.answered_by = "answered", AnsweredBy.machine
                self._emit(CallEvent(call.id, CallEventKind.answered, clock.now(), answered_by=AnsweredBy.machine,
                                     code=200))
                await clock.sleep(self.machine_message_s)
                self._end(call, Side.customer, "answering machine finished")
                return
            call.state, call.answered_by = "answered", AnsweredBy.human
            self._emit(CallEvent(call.id, CallEventKind.answered, clock.now(), answered_by=AnsweredBy.human, code=200))
            await self._conversation(call)
        except asyncio.CancelledError:
            return

    def _answered(self, call: _Call, answered_by: AnsweredBy) -> None:
        call.state, call.answered_by = "answered", answered_by
        at = call.answered_at if call.answered_at is not None else self.clock.now()
        self._emit(CallEvent(call.id, CallEventKind.answered, at, answered_by=answered_by, code=200))

    async def _detect(self, call: _Call) -> None:
        """Answering-machine detection: the answer is reported once decided, ``at`` the moment of the answer."""
        clock, fate = self.clock, call.fate
        call.state, call.answered_at = "deciding", clock.now()
        machine = fate.outcome is Outcome.machine
        await clock.sleep(fate.machine_detect_s if machine else self.amd_human_s)
        if not machine:
            self._answered(call, AnsweredBy.human)
            await self._conversation(call)
            return
        self._answered(call, AnsweredBy.machine)
        if call.request.machine_message is not None:
            await clock.sleep(self.message_s)
            self._end(call, Side.dialer, "machine message left")
            return
        await clock.sleep(self.machine_message_s)
        self._end(call, Side.customer, "answering machine finished")

    async def _inbound_life(self, call: _Call, ring_patience_s: float) -> None:
        try:
            if not await self._wait_event(call.taken, ring_patience_s):
                self._end(call, Side.customer, "the caller gave up while it rang")
                return
            await self._conversation(call)
        except asyncio.CancelledError:
            return

    async def _wait_event(self, event: asyncio.Event, delay: float) -> bool:
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
        return event.is_set()

    async def _conversation(self, call: _Call) -> None:
        """An answered human: waits for an operator with his patience, then talks for his talk time — in pieces when
        he is sent back to waiting (released, his operator's phone lost, an external transfer)."""
        clock, fate = self.clock, call.fate
        talk_left = fate.talk_s
        while True:
            patience = call.hold_patience_s if call.hold_patience_s is not None else self.patience_s.sample(self._rng)
            gives_up_at = clock.now() + patience
            while True:
                waited = await self._wait_connected(call, max(0.0, gives_up_at - clock.now()))
                if not waited:
                    self._end(call, Side.customer, "customer hung up waiting for an operator")
                    return
                assert call.endpoint is not None
                if call.endpoint.startswith("external:"):
                    break  # the external number answered
                ep = self._endpoints[call.endpoint]
                if await self._wait_withdrawn(call, ep.answer_after_s + self.connect_after_s):
                    continue  # the offer was taken back before the operator picked up: wait again
                self._emit(EndpointEvent(ep.name, EndpointEventKind.answered, clock.now(), call_id=call.id))
                break
            call.state = "connected"
            call.requeued.clear()
            self._emit(CallEvent(call.id, CallEventKind.connected, clock.now(), endpoint=call.endpoint))
            started = clock.now()
            if await self._wait_event(call.requeued, talk_left):
                talk_left = max(0.0, talk_left - (clock.now() - started))
                continue  # back to waiting for an operator
            self._end(call, Side.customer, "normal clearing")
            return

    async def _wait_withdrawn(self, call: _Call, delay: float) -> bool:
        """Wait ``delay`` (the operator picking up); True when the offer was withdrawn meanwhile."""
        call.withdrawn.clear()
        waiter = asyncio.ensure_future(call.withdrawn.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
        return call.withdrawn.is_set()

    async def _wait_connected(self, call: _Call, patience: float) -> bool:
        """Wait, on the injected clock, until the call is connected or the customer's patience ends."""
        waiter = asyncio.ensure_future(call.connected.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(patience))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
        return call.connected.is_set()
