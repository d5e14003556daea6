"""What the engine's collaborators share: the typed context, the actor's messages and the collaborators' faces.

The engine is one actor (:mod:`dialer.engine.runner`): a single task owns all state below and handles one message
at a time, so nothing needs a lock. Its work is split into collaborators, each a class of a few hundred lines that
gets the :class:`EngineContext` and reaches the others only through the small protocols defined here:

============  ======================================================================  ===========================
collaborator  what it does                                                            module
============  ======================================================================  ===========================
runner        mailbox, dispatch table, timers by :class:`TimerKind`, life and drain   :mod:`~dialer.engine.runner`
control       campaign status, schedules, pacers, hopper refill, finishing            :mod:`~dialer.engine.control`
placement     decide, pick, insert, originate, previews, manual dial                  :mod:`~dialer.engine.placement`
calls         telephony events, connect, offers, limits                               :mod:`~dialer.engine.calls`
roster        operator transitions, commands                                          :mod:`~dialer.engine.roster`
results       complete, finish, auto-stop                                             :mod:`~dialer.engine.results`
inbound       inbound calls: matching, the attempt, queue, message and callback       :mod:`~dialer.engine.inbound`
transfers     transfers (blind, pool, skill, external, attended), REFER, rescues      :mod:`~dialer.engine.transfers`
============  ======================================================================  ===========================

No collaborator imports another: the runner builds them all and puts each on the context under its face
(``ctx.control``, ``ctx.placement``, ``ctx.calls``, ``ctx.roster``, ``ctx.results``, ``ctx.inbound``,
``ctx.transfers``).

Work accounting
    Under a :class:`~dialer.core.clock.VirtualClock` time may only move when the engine has caught up
    (:func:`dialer.engine.virtual.advance`). Every message posted, every task started with :meth:`EngineContext.spawn`
    and every counted hopper refill is *work*; the engine is idle when none is outstanding. Timers sleeping on the
    clock are not work (they are what time moving wakes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from dialer.core.clock import Clock
from dialer.core.tasks import TaskRegistry
from dialer.engine import repository as repo
from dialer.engine.assign import Assignment, Chooser
from dialer.engine.bus import Bus
from dialer.engine.commands import Command
from dialer.engine.journal import Journal
from dialer.engine.operator_fsm import OperatorEvent
from dialer.engine.pacing import Observation
from dialer.engine.selection import Candidate
from dialer.engine.state import CampaignRuntime, Completion, LiveCall, OperatorSlot
from dialer.models.enums import OperatorState, OutcomeCategory
from dialer.telephony.base import CallEvent as TelephonyCallEvent
from dialer.telephony.base import EndpointEvent, Telephony

__all__ = [
    "BUSY",
    "CallIn",
    "Calls",
    "Control",
    "EngineConfig",
    "EngineContext",
    "FinishChecked",
    "IdleExplained",
    "Inbound",
    "OperatorHook",
    "Placement",
    "Refilled",
    "Results",
    "Roster",
    "Stop",
    "Submit",
    "Tick",
    "TimerFired",
    "TimerKind",
    "Transfers",
    "WakeCommands",
    "WakeControl",
]

log = logging.getLogger(__name__)

S = OperatorState

#: Operator states in which he is working on a call.
BUSY = frozenset({S.reserved, S.ringing, S.in_call, S.wrap_up})

OperatorHook = Callable[[OperatorSlot, OperatorState], None]


@dataclasses.dataclass
class EngineConfig:
    """Knobs of the engine; the defaults are the product's."""

    tick_s: float = 1.0
    #: Campaign statuses and queued commands are read this often (wall-clock seconds: they are changed by people
    #: and other processes in real time, also while a test runs the engine in virtual time; ``Engine.wake``
    #: reads them at once).
    control_poll_s: float = 1.0
    #: Heartbeats, configuration and roster reloads are wall-clock too.
    heartbeat_s: float = 2.0
    #: A run without a heartbeat for this long is dead (its calls are recovered by the next start).
    dead_after_s: float = 15.0
    config_reload_s: float = 10.0
    roster_reload_s: float = 5.0
    #: Candidates older than this are dropped from the hopper (windows, DNC and contacts change).
    hopper_ttl_s: float = 60.0
    hopper_min: int = 20
    #: The hopper is refilled below ``hopper_per_operator`` × operators (and to twice that).
    hopper_per_operator: int = 1
    hopper_max: int = 5000
    #: After a refill that found nothing, wait this long before asking again.
    refill_backoff_s: float = 5.0
    finish_check_s: float = 5.0
    assignment: Assignment = Assignment.longest_idle
    #: The state an operator goes to when his wrap-up times out: ready, or paused (reason "wrap-up timeout").
    after_wrap_up_timeout: OperatorState = OperatorState.ready
    #: Safety auto-stop (001): this many error results in a row within the window auto-pause the campaign (0: off).
    auto_stop_errors: int = 5
    auto_stop_window_s: float = 30.0
    #: On stop, how long calls in progress may finish before they are cut.
    drain_s: float = 30.0
    #: Hold audio for campaigns without their own.
    hold_audio: str = "hold-music"
    #: An operator offered a call has this long to pick up; then the offer is withdrawn, the customer is offered to
    #: another operator and the miss is counted (the strategy's ``auto_pause_after_missed`` pauses him). 0: no limit.
    offer_timeout_s: float = 15.0
    #: Inbound calls (engine/inbound.py): an inbound caller waits at most this long for a free operator (bounded
    #: further by the campaign's ``max_hold_s``), on hold audio;
    inbound_queue_s: float = 30.0
    #: then — or at once outside the campaign's hours — he hears this message (a file of the hold audio directory)
    inbound_message: str = "callback-message"
    #: for this long, a callback is booked for his contact this long after the call, and he is hung up.
    inbound_message_s: float = 8.0
    inbound_callback_after_s: float = 60.0
    #: Media (engine/media.py): where the WAV files named by campaigns are (None: the hold-audio directory of the
    #: settings), and how soon the callback of an abandoned customer who heard the abandon message is due (None:
    #: ``DIALER_ABANDON_CALLBACK_AFTER_S``).
    audio_dir: str | None = None
    abandon_callback_after_s: float | None = None
    #: Commands queued longer ago than this when the engine starts are refused.
    command_ttl_s: float = 60.0
    #: At most this many records wait for the journal; the engine waits for it beyond.
    max_pending_writes: int = 20_000
    seed: int | None = None
    host: str = dataclasses.field(default_factory=socket.gethostname)
    pid: int = dataclasses.field(default_factory=os.getpid)


# --- the actor's messages --------------------------------------------------------------------------------------
# Besides these, the telephony driver's CallEvent, EndpointEvent and TrunkEvent are posted as they come.


class Tick:
    """Every ``tick_s`` of the clock: schedules, hoppers, allocation, heartbeat."""


class WakeCommands:
    """A command was NOTIFYed: read the queue."""


class WakeControl:
    """Read campaign statuses, configuration and commands now."""


class Stop:
    """Drain and stop."""


class TimerKind(StrEnum):
    """What a timer is for; the runner's dispatch table maps each to its handler."""

    grace = "grace"  # the regulatory wait for an operator after an answer (abandoned from then on)
    hold_limit = "hold_limit"  # max hold: the customer still without an operator is hung up
    duration = "duration"  # max call duration
    offer = "offer"  # an operator did not pick up an offered call
    wrap = "wrap"  # the wrap-up time ran out: the default code
    preview = "preview"  # the preview time ran out: the call is placed
    inbound_wait = "inbound_wait"  # an inbound caller waited the longest queue time: message and callback
    inbound_message = "inbound_message"  # the message to an inbound caller has played: he is hung up
    consent = "consent"  # the recording-consent message has played: the customer is offered to an operator
    abandon_message = "abandon_message"  # the abandon message has played: the customer is hung up
    transfer_wait = "transfer_wait"  # a transferred or rescued customer waited the longest: message and callback
    transfer_message = "transfer_message"  # the message to him has played: he is hung up


@dataclasses.dataclass(slots=True)
class TimerFired:
    kind: TimerKind
    target: Any
    token: int


@dataclasses.dataclass(slots=True)
class Submit:
    """A command applied in-process (simulated operators, tests); ``future`` gets its result."""

    command: Command
    future: asyncio.Future[dict[str, Any]] | None


@dataclasses.dataclass(slots=True)
class Refilled:
    campaign: CampaignRuntime
    candidates: list[Candidate]


@dataclasses.dataclass(slots=True)
class FinishChecked:
    campaign_id: int
    exhausted: bool


@dataclasses.dataclass(slots=True)
class IdleExplained:
    """Why a campaign's hopper is empty, as the database says (engine/idle.py)."""

    campaign_id: int
    reasons: list[dict[str, Any]]


@dataclasses.dataclass(slots=True)
class CallIn:
    """Run a coroutine factory inside the actor (its own follow-ups; tests and tools touching state safely)."""

    fn: Callable[[], Coroutine[Any, Any, Any]]
    future: asyncio.Future[Any] | None


TICK = Tick()
WAKE = WakeCommands()


# --- the collaborators' faces ----------------------------------------------------------------------------------


class Control(Protocol):
    def maybe_refill(self, c: CampaignRuntime) -> None: ...

    def wake(self) -> None: ...

    async def hangup_quietly(self, call: LiveCall, cause: str) -> None: ...


class Placement(Protocol):
    def observe(self, c: CampaignRuntime) -> Observation: ...

    def end_preview(self, call: LiveCall, how: str) -> None: ...

    async def dial_preview(self, call: LiveCall, how: str) -> None: ...

    async def manual_dial(self, op: OperatorSlot, payload: Mapping[str, Any]) -> dict[str, Any]: ...


class Calls(Protocol):
    async def connect(self, call: LiveCall) -> bool: ...

    def waiting_calls(self) -> list[LiveCall]: ...

    def may_take(self, op: OperatorSlot, call: LiveCall) -> bool: ...


class Roster(Protocol):
    async def reload(self) -> None: ...

    async def load_commands(self) -> None: ...

    def transition(self, op: OperatorSlot, event: OperatorEvent, *, reason: str = "") -> None: ...

    def after_free(self, op: OperatorSlot) -> None: ...


class Inbound(Protocol):
    """Inbound calls (:mod:`dialer.engine.inbound`): what :mod:`~dialer.engine.calls` hands over of them."""

    def owns(self, call: LiveCall) -> bool: ...

    async def on_answered(self, call: LiveCall, at: float, code: int | None) -> None: ...

    def on_ended(self, call: LiveCall) -> None: ...

    def forget(self, call: LiveCall) -> None: ...

    def wrapped_up(self, op: OperatorSlot) -> bool: ...

    def waiting(self) -> list[LiveCall]: ...


class Transfers(Protocol):
    """Transfers and rescues (:mod:`dialer.engine.transfers`): what the other collaborators hand over of them."""

    def may_take(self, op: OperatorSlot, call: LiveCall) -> bool: ...

    def candidates(self, call: LiveCall) -> list[OperatorSlot] | None: ...

    def waiting(self) -> list[LiveCall]: ...

    async def command(self, op: OperatorSlot, cmd: Command) -> dict[str, Any]: ...

    def on_endpoint(self, ev: EndpointEvent) -> bool: ...

    def on_external_failed(self, ev: EndpointEvent) -> bool: ...

    def on_call_event(self, call: LiveCall, ev: TelephonyCallEvent) -> bool: ...

    def on_connected(self, call: LiveCall, op: OperatorSlot) -> None: ...

    def on_hung_up(self, call: LiveCall) -> bool: ...

    def end_handover(self, op: OperatorSlot, completion: Completion, *, timeout: bool) -> None: ...


class Results(Protocol):
    def default_code(self, c: CampaignRuntime) -> int | None: ...

    def time_out(self, op: OperatorSlot) -> None: ...

    def complete(self, op: OperatorSlot, completion: Completion, *, timeout: bool) -> None: ...

    def finish(self, call: LiveCall, category: OutcomeCategory, code_id: int | None, *, event: Any,
               completion: Completion | None = None, operator: OperatorSlot | None = None) -> None: ...


# --- the context -----------------------------------------------------------------------------------------------


class EngineContext:
    """The engine's state and services, owned by the actor task; see the module docstring."""

    control: Control
    placement: Placement
    calls: Calls
    roster: Roster
    results: Results
    inbound: Inbound
    transfers: Transfers

    def __init__(self, maker: async_sessionmaker[AsyncSession], telephony: Telephony, clock: Clock, bus: Bus,
                 config: EngineConfig) -> None:
        self.maker = maker
        self.telephony = telephony
        self.clock = clock
        self.bus = bus
        self.config = config
        self.journal = Journal(maker)
        self.chooser = Chooser(config.assignment, seed=config.seed)
        self.run_id: int | None = None
        self.codes: dict[str, int] = {}
        self.operators: dict[int, OperatorSlot] = {}
        self.by_endpoint: dict[str, OperatorSlot] = {}
        self.campaigns: dict[int, CampaignRuntime] = {}
        #: Live calls by the driver's call id, and by attempt id.
        self.by_call_id: dict[str, LiveCall] = {}
        self.attempts: dict[int, LiveCall] = {}
        self.hooks: list[OperatorHook] = []
        #: Endpoints (operators' phones) the driver reports unreachable or unregistered: an operator whose phone is
        #: here is kept out of "ready" (paused "phone offline") until it answers or registers again (engine/calls.py).
        self.phones_down: set[str] = set()
        #: Campaigns whose pacer must decide again after this batch.
        self.dirty: set[int] = set()
        self.stopping = False
        # measurements
        self.decision_ms: list[float] = []
        #: No trunk took the last call (:class:`TrunkUnavailable`): nothing is placed before this clock reading,
        #: then one call probes; the wait doubles while it keeps failing (engine/placement.py).
        self.no_trunk_until = -1e18
        self.no_trunk_backoff_s = 0.0
        self.placed = 0
        self.finished = 0
        self.skipped_candidates = 0
        # the mailbox and its work accounting
        self.inbox: deque[Any] = deque()
        self.inbox_ready = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self._busy = 0
        self._token = 0
        #: Side tasks that count as work (finish checks, cancellations); hopper refills and timers do not.
        self.work = TaskRegistry("engine", on_done=lambda _t: self.done_work(1))
        self.side = TaskRegistry("engine side")
        self._bind: AsyncEngine | None = maker.kw.get("bind")
        self._fast: AsyncConnection | None = None

    # --- the mailbox ----------------------------------------------------------------------------------------------
    def post(self, msg: Any) -> None:
        self.inbox.append(msg)
        self.count_work()
        self.inbox_ready.set()

    def count_work(self) -> None:
        self._busy += 1
        self.idle.clear()

    def done_work(self, n: int) -> None:
        self._busy -= n
        if self._busy <= 0:
            self._busy = 0
            self.idle.set()

    def is_idle(self) -> bool:
        return self._busy == 0

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A side task that counts as engine work until it ends (virtual time waits for it)."""
        self.count_work()
        return self.work.spawn(coro, name=name)

    def timer(self, delay: float, kind: TimerKind, target: Any) -> tuple[asyncio.Task[None], int]:
        """Post :class:`TimerFired` after ``delay`` seconds of the clock; cancel the task to drop it."""
        self._token += 1
        token = self._token

        async def fire() -> None:
            await self.clock.sleep(delay)
            self.post(TimerFired(kind, target, token))

        return self.side.spawn(fire(), name=f"engine timer {kind.value}"), token

    def wake(self) -> None:
        """Read campaign statuses, configuration and queued commands now (instead of at the next poll)."""
        self.post(WakeControl())

    # --- writes committed before a call is placed -----------------------------------------------------------------
    async def _autocommit(self) -> AsyncConnection | None:
        """The engine's own connection in autocommit mode, for the writes that must be committed before a call is
        placed: one statement, one round trip (a single INSERT or UPDATE is atomic on its own)."""
        if self._bind is None:
            return None
        if self._fast is None or self._fast.closed or self._fast.invalidated:
            conn = await self._bind.connect()
            self._fast = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._fast

    async def commit_now(self, write: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``write(db)`` committed before returning: on the autocommit connection, or in a short unit."""
        try:
            conn = await self._autocommit()
            if conn is not None:
                return await write(conn)
        except Exception:
            if self._fast is not None:
                with contextlib.suppress(Exception):
                    await self._fast.invalidate()
                self._fast = None
            raise
        async with self.maker() as session, session.begin():
            return await write(session)

    async def close_connection(self) -> None:
        if self._fast is not None:
            with contextlib.suppress(Exception):
                await self._fast.close()
            self._fast = None

    def add_operator(self, info: repo.OperatorInfo) -> OperatorSlot:
        op = OperatorSlot(info=info, since=self.clock.now(), since_utc=self.clock.utcnow(), idle_since=self.clock.now())
        self.operators[info.id] = op
        self.by_endpoint[info.endpoint] = op
        return op
