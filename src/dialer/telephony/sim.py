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
    state: str = "ringing"  # ringing | answered | connected | ended
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


@dataclass
class _Endpoint:
    name: str
    answer_after_s: float
    call: CallId | None = None


class SimTelephony:
    """The simulated driver. ``max_concurrent`` makes ``originate`` refuse beyond that many live calls."""

    def __init__(self, clock: Clock, scenario: Scenario, *, seed: int | None = None,
                 patience_s: Distribution | None = None, ring_after_s: float = 0.5,
                 connect_after_s: float = 0.2, machine_message_s: float = 30.0,
                 max_concurrent: int | None = None) -> None:
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
        self._endpoints[name] = _Endpoint(name, answer_after_s)
        self._emit(EndpointEvent(name, EndpointEventKind.registered, self.clock.now()))

    def unregister_endpoint(self, name: str) -> None:
        if self._endpoints.pop(name, None) is not None:
            self._emit(EndpointEvent(name, EndpointEventKind.unregistered, self.clock.now()))

    def operator_hangup(self, endpoint: str) -> None:
        """The operator hangs up the call on his endpoint."""
        ep = self._endpoints.get(endpoint)
        if ep is None or ep.call is None:
            raise UnknownCall(f"endpoint {endpoint} has no call")
        self._end(self._calls[ep.call], Side.operator, "operator hung up")

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
        ep = self._endpoints.get(endpoint)
        if ep is None:
            raise EndpointUnavailable(f"endpoint {endpoint} is not registered")
        if ep.call is not None:
            raise EndpointUnavailable(f"endpoint {endpoint} is busy with call {ep.call}")
        ep.call = call.id
        call.endpoint = endpoint
        call.state = "connecting"
        self._emit(EndpointEvent(endpoint, EndpointEventKind.ringing, self.clock.now()))
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
            self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, self.clock.now()))
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
        elif call.state == "ringing":
            self._finish(call, CallEvent(call.id, CallEventKind.no_answer, self.clock.now(), cause="cancelled"))
        else:
            self._end(call, Side.dialer, cause)

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
        if call.endpoint is not None:
            ep = self._endpoints.get(call.endpoint)
            if ep is not None and ep.call == call.id:
                ep.call = None
                self._emit(EndpointEvent(ep.name, EndpointEventKind.hung_up, event.at))
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
        """An answered human: waits for an operator with his patience, then talks for his talk time."""
        clock, fate = self.clock, call.fate
        patience = call.hold_patience_s if call.hold_patience_s is not None else self.patience_s.sample(self._rng)
        gives_up_at = clock.now() + patience
        while True:
            waited = await self._wait_connected(call, max(0.0, gives_up_at - clock.now()))
            if not waited:
                self._end(call, Side.customer, "customer hung up waiting for an operator")
                return
            assert call.endpoint is not None
            ep = self._endpoints[call.endpoint]
            if await self._wait_withdrawn(call, ep.answer_after_s + self.connect_after_s):
                continue  # the offer was taken back before the operator picked up: wait again
            break
        call.state = "connected"
        self._emit(EndpointEvent(ep.name, EndpointEventKind.answered, clock.now()))
        self._emit(CallEvent(call.id, CallEventKind.connected, clock.now(), endpoint=ep.name))
        await clock.sleep(fate.talk_s)
        self._end(call, Side.customer, "normal clearing")

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
