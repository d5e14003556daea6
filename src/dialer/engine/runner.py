"""The long-lived dialing engine: campaigns, operators and calls, from the first dial to the recorded result.

Shape
    :class:`Engine` runs as one asyncio ``TaskGroup``: an *actor* task owns all state and handles, one batch at a
    time, everything that happens (telephony events, timers, ticks, commands); a pump feeds it the driver's events;
    a ticker posts a tick every ``tick_s``; a listener wakes it on NOTIFYed commands; the journal writes behind.
    Only the actor mutates operators, calls and campaigns, so nothing needs a lock, and the order of events is the
    order of their effects. The engine imports no web framework: the API reaches it through the database
    (``engine_commands``) and it speaks to the world through the bus.

Per running campaign, on every tick and after every batch of events that changed something
    the pacer gets an :class:`~dialer.engine.pacing.Observation` of the campaign's operators and calls (as
    ``pacing_bench`` feeds it), says how many calls to place, and that many candidates are taken from the
    campaign's in-memory hopper (refilled in batches by :func:`~dialer.engine.selection.fill_hopper`). Each call's
    attempt row is inserted — committed — *before* the call is placed: the partial unique indexes refuse a second
    live attempt on a contact or a number (that candidate is skipped), and crash recovery finds every placed call.
    Progressive, preview and personal-callback calls reserve their operator when dialled (an answer always finds
    him: 0 % abandoned by construction); predictive and fixed-lines calls get one on answer.

A call's life (states of :mod:`dialer.engine.call_fsm`)
    ringing, then an answer: a machine is hung up (``no_answer`` with the system code ``answering_machine``); a
    human is connected to a free eligible operator (:mod:`dialer.engine.assign`). If none is connected within the
    campaign's threshold (strategy ``operator_wait_s``, default 2 s: the regulatory definition) the call counts as
    abandoned for the statistics and hears hold audio while the engine keeps trying; if the customer hangs up
    first the attempt ends ``abandoned`` ("Клиент упущен"), if an operator comes it is connected (and still counts
    as abandoned: both facts stay on the attempt as ``answered_at``/``connected_at``). Busy, no answer, rejected
    and failed end with their system codes, the SIP cause and code kept. A connected call ends in wrap-up; the
    operator's completion code — or the strategy's default code when ``wrap_up_s`` runs out — finishes the attempt
    and :func:`~dialer.engine.outcome.apply_result` schedules what happens to the contact next. Every attempt ends
    ``done`` in exactly one of the six categories with a completion code.

Limits
    A customer still without an operator ``max_hold_s`` after the answer is hung up ("no operator", abandoned); a
    conversation longer than ``max_call_duration_s`` is cut ("max duration", wrap-up as usual); an operator who does
    not pick up an offered call within ``offer_timeout_s`` loses it to another operator (:meth:`Engine._missed_offer`).
    A candidate is dropped from the hopper once its calling window has closed, and the attempt INSERT refuses a
    number on a DNC list in the same statement.

Control
    Campaign statuses are read every tick (changes by the API take effect within a second); a draft whose
    ``start_at`` has come is started; outside the schedule
    (:func:`~dialer.engine.selection.campaign_open`) nothing new is dialled; pause stops new calls; stop also
    cancels its ringing calls and previews and releases its operators (000 §2.23); a finite campaign finishes when
    nothing is left to dial and nothing is in flight; ``auto_stop_errors`` error results in a row within
    ``auto_stop_window_s`` auto-pause the campaign until a supervisor acknowledges (001).

Recovery
    See :func:`dialer.engine.repository.start_run`: at start, attempts of dead runs are closed as errors ("engine
    restarted"), previews that were never placed are dropped, open operator periods are closed.

Time
    Everything reads the injected :class:`~dialer.core.clock.Clock`. Under a
    :class:`~dialer.core.clock.VirtualClock` the engine reports when it is idle (:meth:`Engine.quiescent`) so
    that :func:`dialer.engine.virtual.advance` moves time only when the engine has caught up — database work
    included — and the same code runs hours of calling in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import signal
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from dialer.campaign import service as campaign_service
from dialer.campaign.status import Action
from dialer.core.clock import Clock, SystemClock
from dialer.engine import call_fsm, manual, operator_fsm
from dialer.engine import repository as repo
from dialer.engine.assign import Assignment, Chooser, allocate, allocate_one, eligible, in_pools, move
from dialer.engine.bus import COMMAND_CHANNEL, Bus, listen_raw
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.commands import Command, CommandKind
from dialer.engine.events import (
    AttemptFinished,
    CallAnswered,
    CallConnected,
    CallEnded,
    CallOnHold,
    CallPlaced,
    CallRinging,
    CampaignAutoPaused,
    CampaignFinished,
    CampaignScheduleChanged,
    CampaignStatusChanged,
    CommandFailed,
    DeviceStateChanged,
    EngineStarted,
    EngineStopped,
    OperatorMissedCall,
    OperatorStateChanged,
    PreviewEnded,
    PreviewStarted,
    TrunkStateChanged,
)
from dialer.engine.journal import ENGINE_ACTOR, Journal
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.outcome import AttemptResult
from dialer.engine.pacing import (
    DialResult,
    FixedLinesPacer,
    Observation,
    Pacer,
    PredictivePacer,
    PreviewPacer,
    ProgressivePacer,
)
from dialer.engine.selection import CampaignPlan, Candidate, campaign_open, fill_hopper, load_plan, work_left
from dialer.engine.state import CampaignRuntime, Completion, Hopper, LiveCall, OperatorSlot
from dialer.exceptions import DialerError, IllegalTransition
from dialer.models.enums import AttemptState, CampaignKind, CampaignStatus, DialMode, OperatorState, OutcomeCategory
from dialer.telephony.base import (
    AnsweredBy,
    CallEventKind,
    EndpointEvent,
    EndpointEventKind,
    EndpointUnavailable,
    Originate,
    Telephony,
    TelephonyError,
    TrunkEvent,
    TrunkUnavailable,
    UnknownCall,
)
from dialer.telephony.base import CallEvent as TelephonyCallEvent

__all__ = ["Engine", "EngineConfig", "OperatorHook", "install_signal_handlers", "make_pacer_for"]

#: Endpoint events that change what the supervisor sees of a phone (registration state).
_DEVICE_STATES = frozenset({EndpointEventKind.registered, EndpointEventKind.unregistered,
                            EndpointEventKind.unreachable})

log = logging.getLogger(__name__)

S = OperatorState
A = AttemptState

#: Telephony results of unanswered calls → (outcome category, system code key, what the pacer learns).
UNANSWERED: dict[CallEventKind, tuple[OutcomeCategory, str, DialResult]] = {
    CallEventKind.busy: (OutcomeCategory.busy, "busy", DialResult.busy),
    CallEventKind.no_answer: (OutcomeCategory.no_answer, "no_answer", DialResult.no_answer),
    CallEventKind.rejected: (OutcomeCategory.rejected, "rejected", DialResult.rejected),
    CallEventKind.failed: (OutcomeCategory.error, "error", DialResult.failed),
}

#: Operator states in which he is working on a call.
BUSY = frozenset({S.reserved, S.ringing, S.in_call, S.wrap_up})

OperatorHook = Callable[[OperatorSlot, OperatorState], None]


@dataclasses.dataclass
class EngineConfig:
    """Knobs of the engine; the defaults are the product's."""

    tick_s: float = 1.0
    #: Campaign statuses and queued commands are read this often (wall-clock seconds: they are changed by people
    #: and other processes in real time, also while a test runs the engine in virtual time; :meth:`Engine.wake`
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
    #: Commands queued longer ago than this when the engine starts are refused.
    command_ttl_s: float = 60.0
    #: At most this many records wait for the journal; the engine waits for it beyond.
    max_pending_writes: int = 20_000
    seed: int | None = None
    host: str = dataclasses.field(default_factory=socket.gethostname)
    pid: int = dataclasses.field(default_factory=os.getpid)


def make_pacer_for(mode: DialMode, params: Mapping[str, Any], cap_pct: float, abandon_after_s: float) -> Pacer:
    """The campaign's pacer: dial mode → algorithm, with the campaign's parameters."""
    if mode is DialMode.predictive:
        window_min = float(params.get("abandon_window_min", 60))
        return PredictivePacer(cap=cap_pct / 100.0, window_s=window_min * 60.0, abandon_after_s=abandon_after_s)
    if mode is DialMode.fixed_lines:
        return FixedLinesPacer(int(params.get("max_lines", 1)))
    if mode is DialMode.preview:
        return PreviewPacer()
    return ProgressivePacer()


# --- actor messages -------------------------------------------------------------------------------------------


class _Tick:
    pass


class _WakeCommands:
    pass


class _WakeControl:
    pass


class _Stop:
    pass


@dataclasses.dataclass(slots=True)
class _Timer:
    kind: str  # grace | wrap | preview | sim
    target: Any
    token: int


@dataclasses.dataclass(slots=True)
class _Submit:
    command: Command
    future: asyncio.Future[dict[str, Any]] | None


@dataclasses.dataclass(slots=True)
class _Refilled:
    campaign: CampaignRuntime
    candidates: list[Candidate]


@dataclasses.dataclass(slots=True)
class _FinishChecked:
    campaign_id: int
    exhausted: bool


@dataclasses.dataclass(slots=True)
class _Call:
    """Run a coroutine factory inside the actor (its own follow-ups; tests and tools touching state safely)."""

    fn: Callable[[], Coroutine[Any, Any, Any]]
    future: asyncio.Future[Any] | None


_TICK = _Tick()
_WAKE = _WakeCommands()


class Engine:
    """The dialing engine. ``await engine.run(stop)`` runs it until ``stop`` is set; see the module docstring.

    ``maker`` opens database sessions; ``telephony`` is the driver (the engine starts and closes it); ``clock`` is
    the time source (default: the system clock); ``database_url`` enables the NOTIFY command listener (without
    it commands are polled every tick).
    """

    def __init__(self, maker: async_sessionmaker[AsyncSession], telephony: Telephony, *, clock: Clock | None = None,
                 bus: Bus | None = None, config: EngineConfig | None = None, database_url: str | None = None) -> None:
        self.maker = maker
        self.telephony = telephony
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or Bus()
        self.config = config or EngineConfig()
        self.database_url = database_url
        self.journal = Journal(maker)
        self.bus.add_sink(self.journal.event)
        self.chooser = Chooser(self.config.assignment, seed=self.config.seed)

        self._bind: AsyncEngine | None = maker.kw.get("bind")
        self._fast: AsyncConnection | None = None
        self.run_id: int | None = None
        self.recovery: repo.Recovery | None = None
        self.operators: dict[int, OperatorSlot] = {}
        self._by_endpoint: dict[str, OperatorSlot] = {}
        self.campaigns: dict[int, CampaignRuntime] = {}
        self._calls: dict[str, LiveCall] = {}  # by telephony call id
        self.attempts: dict[int, LiveCall] = {}
        self.codes: dict[str, int] = {}
        self.hooks: list[OperatorHook] = []
        #: Called once the engine runs (simulated operators register their phones and go ready).
        self.startup_hooks: list[Callable[[Engine], Any]] = []
        #: Called when the engine has stopped.
        self.shutdown_hooks: list[Callable[[], None]] = []

        self._inbox: deque[Any] = deque()
        self._inbox_ready = asyncio.Event()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._dirty: set[int] = set()
        self._stopping = False
        self._exit = False
        self._tick_pending = False
        self._token = 0
        self._commands_seen: set[int] = set()
        #: Campaigns whose scheduled start was refused (not runnable), with the start time that was tried.
        self._start_refused: dict[int, datetime | None] = {}
        self._last_command_id = 0
        self._next_config = 0.0
        self._next_roster = 0.0
        self._next_heartbeat = 0.0
        self._next_poll = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        # measurements
        self.decision_ms: list[float] = []
        self.placed = 0
        self.finished = 0
        self.skipped_candidates = 0
        self.dropped_events = 0

    # --- life -----------------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start (recovery, run row, roster), run until ``stop`` is set or :meth:`request_stop`, then drain."""
        stop = stop or asyncio.Event()
        self._stop_event = stop
        await self._startup()
        try:
            async with asyncio.TaskGroup() as tg:
                journal_task = tg.create_task(self.journal.run(), name="engine journal")
                actor = tg.create_task(self._actor(), name="engine actor")
                helpers = [tg.create_task(self._pump(), name="engine telephony pump"),
                           tg.create_task(self._ticker(), name="engine ticker")]
                if self.database_url:
                    helpers.append(tg.create_task(self._command_listener(), name="engine command listener"))
                self.started.set()
                for hook in self.startup_hooks:
                    result = hook(self)
                    if asyncio.iscoroutine(result):
                        await result
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, actor}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not actor.done():
                    self._post(_Stop())
                    await actor
                for task in helpers:
                    task.cancel()
                for task in [*self._tasks, *self._timers]:
                    task.cancel()
                self.journal.close()
                await journal_task
        finally:
            if self._fast is not None:
                with contextlib.suppress(Exception):
                    await self._fast.close()
                self._fast = None
            for shutdown in self.shutdown_hooks:
                with contextlib.suppress(Exception):
                    shutdown()
            with contextlib.suppress(Exception):
                await self.telephony.close()
            self.stopped.set()

    def request_stop(self) -> None:
        """Ask the engine to drain and stop (what SIGTERM does)."""
        stop = getattr(self, "_stop_event", None)
        if stop is not None:
            stop.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Engine]:
        """Run in the background for the duration of a block (tests, tools); stop and drain when leaving it."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="engine")
        started = asyncio.ensure_future(self.started.wait())
        await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            started.cancel()
            task.result()  # raises the start-up error
        try:
            yield self
        finally:
            stop.set()
            await task

    async def _startup(self) -> None:
        utc = self.clock.utcnow()
        async with self.maker() as session, session.begin():
            self.codes = await repo.system_codes(session)
            self.run_id, self.recovery = await repo.start_run(
                session, host=self.config.host, pid=self.config.pid, now_utc=utc,
                dead_after_s=self.config.dead_after_s, error_code_id=self.codes.get("error"))
            await repo.expire_commands(session, self.config.command_ttl_s)
            # phones registered with an earlier engine's registrar must register again with ours
            await repo.mark_registrations_offline(session, "engine restarted")
            infos = await repo.roster(session)
        for info in infos:
            self._add_operator(info)
        await self.telephony.start()
        if self.recovery.closed_attempts:
            log.warning("recovered %d attempts of dead engine runs %s as errors",
                        len(self.recovery.closed_attempts), self.recovery.dead_runs)
        self.bus.publish(EngineStarted(at=utc, run_id=self.run_id, host=self.config.host, pid=self.config.pid,
                                       recovered_attempts=len(self.recovery.closed_attempts)))
        await self._load_campaigns()
        wall = time.monotonic()
        self._next_roster = wall + self.config.roster_reload_s
        self._next_config = wall + self.config.config_reload_s
        self._next_poll = wall + self.config.control_poll_s

    # --- the actor ----------------------------------------------------------------------------------------------
    def _post(self, msg: Any) -> None:
        self._inbox.append(msg)
        self._busy += 1
        self._idle.clear()
        self._inbox_ready.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A side task that counts as engine work until it ends (virtual time waits for it)."""
        self._busy += 1
        self._idle.clear()
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("engine task %s failed", name, exc_info=t.exception())
            self._done_work(1)

        task.add_done_callback(done)
        return task

    def _done_work(self, n: int) -> None:
        self._busy -= n
        if self._busy <= 0:
            self._busy = 0
            self._idle.set()

    def is_idle(self) -> bool:
        return self._busy == 0

    async def quiescent(self) -> None:
        """Wait until the engine has handled everything posted to it (timers sleeping on the clock do not count)."""
        await self._idle.wait()

    async def _actor(self) -> None:
        while True:
            if not self._inbox:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
                continue
            batch = list(self._inbox)
            self._inbox.clear()
            for msg in batch:
                try:
                    await self._handle(msg)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("engine failed handling %r", msg)
            try:
                await self._decide_dirty()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine decision failed")
            if self.journal.pending() > self.config.max_pending_writes:
                await self.journal.drained()  # back-pressure: the database sets the pace
            self._done_work(len(batch))
            if self._exit:
                return

    async def _handle(self, msg: Any) -> None:
        if isinstance(msg, TelephonyCallEvent):
            await self._on_call_event(msg)
        elif isinstance(msg, EndpointEvent):
            self._on_endpoint_event(msg)
        elif isinstance(msg, TrunkEvent):
            self._on_trunk_event(msg)
        elif isinstance(msg, _Tick):
            self._tick_pending = False
            await self._on_tick()
        elif isinstance(msg, _Timer):
            await self._on_timer(msg)
        elif isinstance(msg, _Submit):
            result = await self._apply_command(msg.command)
            if msg.future is not None and not msg.future.done():
                msg.future.set_result(result)
        elif isinstance(msg, _WakeCommands):
            await self._load_commands()
        elif isinstance(msg, _WakeControl):
            await self._poll_control(force=True)
        elif isinstance(msg, _Refilled):
            self._on_refilled(msg)
        elif isinstance(msg, _FinishChecked):
            self._on_finish_checked(msg)
        elif isinstance(msg, _Call):
            try:
                value = await msg.fn()
            except Exception as err:
                if msg.future is None:
                    raise
                msg.future.set_exception(err)
            else:
                if msg.future is not None:
                    msg.future.set_result(value)
        elif isinstance(msg, _Stop):
            await self._drain()
            self._exit = True

    async def call_in_actor(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``fn()`` inside the actor, between two batches (safe access to the engine's state)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._post(_Call(fn, future))
        return await future

    # --- helpers feeding the actor ----------------------------------------------------------------------------
    async def _pump(self) -> None:
        async for event in self.telephony.events():
            self._post(event)

    async def _ticker(self) -> None:
        while True:
            await self.clock.sleep(self.config.tick_s)
            if not self._tick_pending:  # a slow engine gets one tick, not a backlog of them
                self._tick_pending = True
                self._post(_TICK)

    async def _command_listener(self) -> None:
        assert self.database_url is not None
        async for _payload in listen_raw(self.database_url, COMMAND_CHANNEL):
            self._post(_WAKE)

    def _timer(self, delay: float, kind: str, target: Any) -> tuple[asyncio.Task[None], int]:
        self._token += 1
        token = self._token

        async def fire() -> None:
            await self.clock.sleep(delay)
            self._post(_Timer(kind, target, token))

        task = asyncio.create_task(fire(), name=f"engine timer {kind}")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        return task, token

    # --- ticks ------------------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Read campaign statuses, configuration and queued commands now (instead of at the next poll)."""
        self._post(_WakeControl())

    async def _poll_control(self, *, force: bool = False) -> None:
        wall = time.monotonic()
        if not force and wall < self._next_poll:
            return
        self._next_poll = wall + self.config.control_poll_s
        if force or wall >= self._next_roster:
            self._next_roster = wall + self.config.roster_reload_s
            await self._reload_roster()
        reload = force or wall >= self._next_config
        if reload:
            self._next_config = wall + self.config.config_reload_s
        await self._start_due_campaigns()
        await self._refresh_statuses(reload=reload)
        await self._load_commands()
        if force:
            self._dirty.update(self.campaigns)

    async def _start_due_campaigns(self) -> None:
        """Campaigns in draft whose launch time (``start_at``, 000 §12.1) has come are started, as by the API's
        start action (the status machine, the runnability check, the audit entry as the engine). One that is not
        runnable stays in draft; it is tried again only after its start time is changed."""
        utc = self.clock.utcnow()
        async with self.maker() as session:
            due = [(cid, at) for cid, at in await repo.due_drafts(session, utc)
                   if self._start_refused.get(cid) != at]
        for cid, at in due:
            try:
                async with self.maker() as session, session.begin():
                    session.info["actor"] = ENGINE_ACTOR
                    await campaign_service.change_status(session, cid, Action.start, "start time reached")
            except DialerError as err:
                self._start_refused[cid] = at
                log.warning("campaign %s was not started at its start time: %s", cid, err.detail)

    async def _on_tick(self) -> None:
        now = self.clock.now()
        await self._poll_control()
        utc = self.clock.utcnow()
        for c in list(self.campaigns.values()):
            if c.status in (CampaignStatus.stopped, CampaignStatus.finished) and not c.calls:
                del self.campaigns[c.id]  # its last call is over: nothing keeps it
                continue
            was = c.open
            c.open = campaign_open(c.plan, utc)
            if was != c.open:
                self.bus.publish(CampaignScheduleChanged(at=utc, campaign_id=c.id, open=c.open))
                if not c.open:
                    c.hopper.clear()
            if c.hopper.expire(now):
                c.refill_empty_at = None  # what expired is likely dialable again: ask at once
            for contact_id, until in list(c.skipped.items()):
                if until <= now:
                    del c.skipped[contact_id]
            self._maybe_check_finish(c)
        allocate(self.operators.values(), list(self.campaigns.values()))
        self._dirty.update(self.campaigns)
        wall = time.monotonic()
        if wall >= self._next_heartbeat:
            self._next_heartbeat = wall + self.config.heartbeat_s
            stats = self.stats()
            run_id = self.run_id
            assert run_id is not None

            async def beat(session: AsyncSession) -> None:
                await repo.heartbeat(session, run_id, stats)

            self.journal.job("heartbeat", beat)

    async def _reload_roster(self) -> None:
        async with self.maker() as session:
            infos = await repo.roster(session)
        seen = set()
        for info in infos:
            seen.add(info.id)
            op = self.operators.get(info.id)
            if op is None:
                self._add_operator(info)
                continue
            if op.info.endpoint != info.endpoint:
                self._by_endpoint.pop(op.endpoint, None)
                self._by_endpoint[info.endpoint] = op
            op.info = info
            if not info.is_active and op.state in (S.ready, S.paused):
                self._transition(op, OE.log_out)
        for op_id, op in list(self.operators.items()):
            if op_id not in seen and op.state in (S.ready, S.paused, S.offline):
                if op.state is not S.offline:
                    self._transition(op, OE.log_out)
                self._by_endpoint.pop(op.endpoint, None)
                del self.operators[op_id]

    def _add_operator(self, info: repo.OperatorInfo) -> OperatorSlot:
        op = OperatorSlot(info=info, since=self.clock.now(), since_utc=self.clock.utcnow(), idle_since=self.clock.now())
        self.operators[info.id] = op
        self._by_endpoint[info.endpoint] = op
        return op

    # --- campaigns ----------------------------------------------------------------------------------------------
    async def _load_campaigns(self) -> None:
        await self._refresh_statuses(reload=True)

    async def _refresh_statuses(self, *, reload: bool) -> None:
        """Follow campaign statuses in the database (the API changes them) and keep runtimes in step."""
        async with self.maker() as session:
            statuses = await repo.campaign_statuses(session, self.campaigns)
            new_ids = [cid for cid, (status, _) in statuses.items()
                       if status is CampaignStatus.running and cid not in self.campaigns]
            load_ids = list(self.campaigns) + new_ids if reload else new_ids
            configs = await repo.campaign_configs(session, load_ids)
            plans: dict[int, CampaignPlan] = {}
            for cid in load_ids:
                if cid in configs:
                    try:
                        plans[cid] = await load_plan(session, cid)
                    except LookupError:
                        log.warning("campaign %s vanished while loading", cid)
        utc = self.clock.utcnow()
        for cid in new_ids:
            if cid in configs and cid in plans:
                cfg = configs[cid]
                c = CampaignRuntime(cfg=cfg, plan=plans[cid], pacer=await self._seeded_pacer(cfg),
                                    hopper=Hopper(self.config.hopper_ttl_s), status=CampaignStatus.running)
                c.open = campaign_open(c.plan, utc)
                self.campaigns[cid] = c
                self.bus.publish(CampaignStatusChanged(at=utc, campaign_id=cid, status=c.status.value,
                                                       previous=None, reason=cfg.status_reason))
        if reload:
            for cid, c in self.campaigns.items():
                if cid in configs and cid in plans and cid not in new_ids:
                    old = c.cfg
                    c.cfg, c.plan = configs[cid], plans[cid]
                    if old.version() != c.cfg.version():
                        # a new mode or cap: a new pacer, which starts from the campaign's recorded abandon rate
                        c.pacer = await self._seeded_pacer(c.cfg)
        for cid, c in list(self.campaigns.items()):
            status, reason = statuses.get(cid, (CampaignStatus.stopped, "deleted"))
            if c.expected_status is not None:
                if status is CampaignStatus.running and time.monotonic() < c.expected_until:
                    continue  # our own auto-pause or finish is not committed yet
                c.expected_status = None  # committed, or refused (a user acted first): the database decides
            if status is not c.status:
                self._set_campaign_status(c, status, reason)
            if c.status in (CampaignStatus.stopped, CampaignStatus.finished) and not c.calls:
                del self.campaigns[cid]
        if new_ids:
            allocate(self.operators.values(), list(self.campaigns.values()))

    def _pacer(self, cfg: repo.CampaignConfig) -> Pacer:
        return make_pacer_for(cfg.dial_mode, cfg.dial_params, float(cfg.abandon_cap_pct), float(cfg.operator_wait_s))

    async def _seeded_pacer(self, cfg: repo.CampaignConfig) -> Pacer:
        """The campaign's pacer; a predictive one is seeded from the attempts table, so that its whole-campaign and
        rolling-window abandon rates survive an engine restart or a configuration change."""
        pacer = self._pacer(cfg)
        if isinstance(pacer, PredictivePacer):
            try:
                async with self.maker() as session:
                    history = await repo.pacing_history(
                        session, cfg.id, now=self.clock.now(), now_utc=self.clock.utcnow(), window_s=pacer.window_s,
                        grace_s=float(cfg.operator_wait_s))
            except Exception:
                log.exception("reading the pacing history of campaign %s failed; its pacer starts afresh", cfg.id)
            else:
                pacer.seed(history)
        return pacer

    def _set_campaign_status(self, c: CampaignRuntime, status: CampaignStatus, reason: str) -> None:
        previous = c.status
        c.status = status
        utc = self.clock.utcnow()
        self.bus.publish(CampaignStatusChanged(at=utc, campaign_id=c.id, status=status.value,
                                               previous=previous.value, reason=reason))
        if status is CampaignStatus.running:
            self._dirty.add(c.id)
            return
        # paused, auto-paused, stopped, finished: nothing new; previews not yet placed are given back
        for call in [x for x in c.calls.values() if x.preview and x.state is A.queued]:
            self._end_preview(call, "cancelled")
        c.hopper.clear()
        if status in (CampaignStatus.stopped, CampaignStatus.finished):
            # 000 §2.23: the campaign lets its operators go; calls still ringing are cancelled
            for call in list(c.calls.values()):
                if call.state in (A.dialing, A.ringing) and call.call_id is not None:
                    call.hangup_by = "dialer"
                    self._spawn(self._hangup_quietly(call, "campaign stopped"), "cancel call")
            allocate(self.operators.values(), list(self.campaigns.values()))

    async def _hangup_quietly(self, call: LiveCall, cause: str) -> None:
        if call.call_id is None:
            return
        with contextlib.suppress(UnknownCall):
            await self.telephony.hangup(call.call_id, cause)

    # --- hopper -------------------------------------------------------------------------------------------------
    def _hopper_target(self, c: CampaignRuntime) -> tuple[int, int]:
        """(refill below, fill up to): about ``hopper_per_operator`` candidates per operator of the campaign."""
        ops = max(1, len(c.members))
        low = min(self.config.hopper_max, max(self.config.hopper_min, self.config.hopper_per_operator * ops))
        return low, min(self.config.hopper_max, 2 * low)

    def _maybe_refill(self, c: CampaignRuntime) -> None:
        if not c.dialing or self._stopping:
            return
        low, high = self._hopper_target(c)
        # A prefetch while candidates remain runs beside the engine; a refill of a nearly empty hopper is engine
        # work (virtual time waits for it, or operators would idle for want of candidates that are on their way).
        urgent = len(c.hopper) < max(1, low // 4)
        if c.refilling:
            if urgent and not c.refill_counted:
                self._count_refill(c)
            return
        if len(c.hopper) >= low:
            return
        now = self.clock.now()
        if c.refill_empty_at is not None and now - c.refill_empty_at < self.config.refill_backoff_s:
            return
        c.refilling = True
        # (a manual call to a number outside the lists has no contact: engine/manual.py)
        exclude = (set(c.hopper.contact_ids) | {x.contact_id for x in c.calls.values() if x.contact_id is not None}
                   | set(c.skipped))
        plan, utc, limit = c.plan, self.clock.utcnow(), high - len(c.hopper)

        async def refill() -> None:
            try:
                async with self.maker() as session, session.begin():
                    found = await fill_hopper(session, plan, utc, limit, exclude)
            except Exception:
                log.exception("refilling the hopper of campaign %s failed", c.id)
                found = []
            # the actor releases a counted refill when it takes the result (it may be counted until then)
            self._post(_Refilled(c, found))

        if urgent:
            self._count_refill(c)
        task = asyncio.create_task(refill(), name=f"hopper refill {c.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count_refill(self, c: CampaignRuntime) -> None:
        c.refill_counted = True
        self._busy += 1
        self._idle.clear()

    def _on_refilled(self, msg: _Refilled) -> None:
        c = msg.campaign
        c.refilling = False
        if c.refill_counted:
            c.refill_counted = False
            self._done_work(1)
        if self.campaigns.get(c.id) is not c or not c.dialing:
            return
        live = {x.contact_id for x in c.calls.values()}
        fresh = [x for x in msg.candidates if x.contact_id not in live and x.contact_id not in c.skipped]
        c.hopper.extend(self.clock.now(), fresh)
        c.refill_empty_at = self.clock.now() if not msg.candidates else None
        self._dirty.add(c.id)

    # --- finishing finite campaigns ---------------------------------------------------------------------------
    def _maybe_check_finish(self, c: CampaignRuntime) -> None:
        now = self.clock.now()
        if (c.cfg.kind is not CampaignKind.finite or not c.dialing or c.calls or len(c.hopper) or c.refilling
                or c.refill_empty_at is None or c.finish_checking
                or now - c.last_finish_check < self.config.finish_check_s):
            return
        c.finish_checking = True
        c.last_finish_check = now
        plan, utc = c.plan, self.clock.utcnow()

        async def check() -> None:
            try:
                async with self.maker() as session:
                    left = await work_left(session, plan, utc)
            except Exception:
                log.exception("checking whether campaign %s is finished failed", c.id)
                left = True
            self._post(_FinishChecked(c.id, not left))

        self._spawn(check(), f"finish check {c.id}")

    def _on_finish_checked(self, msg: _FinishChecked) -> None:
        c = self.campaigns.get(msg.campaign_id)
        if c is None:
            return
        c.finish_checking = False
        if not msg.exhausted or not c.dialing or c.calls or len(c.hopper):
            return
        c.expected_status = CampaignStatus.finished
        c.expected_until = time.monotonic() + 30.0
        utc = self.clock.utcnow()
        cid = c.id

        async def finish(session: AsyncSession) -> None:
            session.info["actor"] = ENGINE_ACTOR
            try:
                await campaign_service.finish(session, cid)
            except IllegalTransition:
                return
            self.bus.publish(CampaignFinished(at=utc, campaign_id=cid))

        self.journal.job(f"finish campaign {cid}", finish, after=self.wake)

    # --- decisions ----------------------------------------------------------------------------------------------
    async def _decide_dirty(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        # higher priority first: they get the shared free operators first
        for c in sorted((self.campaigns[i] for i in dirty if i in self.campaigns), key=lambda x: -x.priority):
            await self._decide(c)

    def observe(self, c: CampaignRuntime) -> Observation:
        """What the campaign's pacer sees now (as ``pacing_bench`` builds it)."""
        now = self.clock.now()
        logged = ready = in_call = wrap = 0
        talk: list[float] = []
        wraps: list[float] = []
        for op_id in c.members:
            op = self.operators.get(op_id)
            if op is None or op.state is S.offline:
                continue
            logged += 1
            st = op.state
            if st is S.ready:
                ready += 1
            elif st in (S.in_call, S.ringing) or (st is S.reserved and op.call is not None
                                                   and op.call.state is A.answered):
                in_call += 1
                talk.append(op.talk_started if st is S.in_call else now)
            elif st is S.wrap_up:
                wrap += 1
                wraps.append(op.since)
        # calls with a reserved operator are covered already: the forecast is for the others
        dialled = c.dialling.values()
        waiting = sum(1 for call in c.answered.values()
                      if not call.reserved and call.answered_by == "human" and call.operator is None)
        return Observation(now=now, operators_logged_in=logged, operators_ready=ready, operators_in_call=in_call,
                           operators_wrap_up=wrap, calls_dialling=len(dialled), calls_waiting=waiting,
                           dialled_at=list(dialled), talk_started_at=talk, wrap_up_started_at=wraps)

    async def _decide(self, c: CampaignRuntime) -> None:
        since = c.free_since_perf
        c.free_since_perf = None
        if self._stopping or not c.dialing:
            return
        self._maybe_refill(c)
        obs = self.observe(c)
        n = c.pacer.decide(obs)
        if n <= 0:
            return
        cfg = c.cfg
        if cfg.max_concurrent_calls is not None:
            n = min(n, cfg.max_concurrent_calls - len(c.calls))
        if c.mode is DialMode.predictive:
            ratio = float(cfg.dial_params.get("max_ratio", 3.0))
            working = sum(1 for i in c.members if (o := self.operators.get(i)) and o.state not in (S.offline, S.paused))
            n = min(n, math.floor(ratio * max(1, working)) - obs.calls_dialling - obs.calls_waiting)
        if n <= 0:
            return
        picks = self._pick(c, n)
        self._maybe_refill(c)
        if not picks:
            return
        if c.mode is DialMode.preview:
            await self._start_previews(c, picks)
        else:
            placed = await self._place(c, picks)
            if placed and since is not None:
                self.decision_ms.append((time.perf_counter() - since) * 1000.0)

    def _pick(self, c: CampaignRuntime, n: int) -> list[tuple[Candidate, OperatorSlot | None]]:
        """Up to ``n`` candidates with, where the call needs one now, the operator reserved for it."""
        reserve_all = c.mode in (DialMode.progressive, DialMode.preview)
        free = [self.operators[i] for i in c.members if i in self.operators and self.operators[i].state is S.ready]
        logged = [self.operators[i] for i in c.members
                  if i in self.operators and self.operators[i].state not in (S.offline, S.paused)]
        taken: set[int] = set()
        servable: dict[tuple[int | None, int | None, int | None], bool] = {}
        live = {call.contact_id for call in self.attempts.values()}

        def usable(cand: Candidate) -> Any:
            if cand.contact_id in live:
                return None
            if cand.operator_id is not None:  # a personal callback: only his operator, and only when free
                op = self.operators.get(cand.operator_id)
                if (op is None or op.state is not S.ready or op.id in taken or not eligible(op, c, cand)):
                    return None
                taken.add(op.id)
                return op
            if reserve_all:
                ops = [o for o in free if o.id not in taken and eligible(o, c, cand)]
                op = self.chooser.choose(ops)
                if op is None:
                    return None
                taken.add(op.id)
                return op
            key = (cand.skill_id, cand.min_skill_level, cand.pool_id)
            if key not in servable:  # someone logged in could take it on answer
                servable[key] = any(eligible(o, c, cand) for o in logged)
            return True if servable[key] else None

        picks = c.hopper.take(n, usable, scan=n + 200, now_utc=self.clock.utcnow())
        return [(cand, found if isinstance(found, OperatorSlot) else None) for cand, found in picks]

    async def _autocommit(self) -> AsyncConnection | None:
        """The engine's own connection in autocommit mode, for the writes that must be committed before a call is
        placed: one statement, one round trip (a single INSERT or UPDATE is atomic on its own)."""
        if self._bind is None:
            return None
        if self._fast is None or self._fast.closed or self._fast.invalidated:
            conn = await self._bind.connect()
            self._fast = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._fast

    async def _commit_now(self, write: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
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

    async def _insert(self, c: CampaignRuntime, picks: list[tuple[Candidate, OperatorSlot | None]],
                      state: AttemptState) -> list[LiveCall]:
        """Insert the attempts (committed) and make their live calls; candidates refused by the database drop out."""
        utc = self.clock.utcnow()
        rows = []
        callers: dict[int, str | None] = {}
        for cand, op in picks:
            callers[cand.contact_id] = caller = c.next_caller_id()
            rows.append({
                "campaign_id": c.id, "contact_id": cand.contact_id, "phone_id": cand.phone_id,
                "selection_id": cand.selection_id, "callback_id": cand.callback_id,
                "operator_id": op.id if (op is not None and state is A.queued) else None,
                "engine_run_id": self.run_id, "number": cand.number, "caller_id": caller, "state": state.value,
                "queued_at": utc, "dialed_at": utc if state is A.dialing else None, "hangup_cause": "",
                "comment": "",
            })
        try:
            ids = await self._commit_now(lambda db: repo.insert_attempts(db, rows))
        except Exception:
            # a row the database refuses for another reason (a contact deleted meanwhile): one by one
            log.warning("attempt batch refused; inserting one by one", exc_info=True)
            ids = {}
            for row in rows:
                try:
                    async with self.maker() as session, session.begin():
                        ids.update(await repo.insert_attempts(session, [row]))
                except Exception:
                    log.warning("attempt for contact %s refused", row["contact_id"], exc_info=True)
        calls = []
        for cand, op in picks:
            attempt_id = ids.get(cand.contact_id)
            if attempt_id is None:
                self.skipped_candidates += 1  # the contact or its number is being called, or the number is in DNC
                continue
            call = LiveCall(attempt_id=attempt_id, campaign=c, candidate=cand, caller_id=callers[cand.contact_id],
                            state=state, queued_utc=utc, operator=op, reserved=op is not None)
            c.calls[attempt_id] = call
            self.attempts[attempt_id] = call
            if op is not None:
                op.call = call
                move(op, c, self.campaigns)
                self._transition(op, OE.reserve)
            calls.append(call)
        return calls

    async def _place(self, c: CampaignRuntime, picks: list[tuple[Candidate, OperatorSlot | None]]) -> int:
        calls = await self._insert(c, picks, A.dialing)
        for call in calls:
            await self._originate(call, requeue=True)
        return len(calls)

    async def _originate(self, call: LiveCall, *, requeue: bool = False) -> None:
        """Place the call; ``requeue``: a call the driver cannot place for want of a trunk (:class:`TrunkUnavailable`)
        never happened (:meth:`_not_placed`) rather than ending as an error."""
        c = call.campaign
        call.placed_at = self.clock.now()
        try:
            call_id = await self.telephony.originate(Originate(
                number=call.number, caller_id=call.caller_id, answer_timeout_s=float(c.cfg.answer_timeout_s),
                variables={"attempt_id": str(call.attempt_id), "campaign_id": str(c.id)}))
        except TelephonyError as err:
            call.hangup_cause = str(err) or type(err).__name__
            if requeue and isinstance(err, TrunkUnavailable):
                self._not_placed(call)
                return
            self._finish(call, OutcomeCategory.error, self.codes.get("error"), event=CE.fail)
            return
        call.call_id = call_id
        self._calls[call_id] = call
        if not call.reserved:
            c.dialling[call.attempt_id] = call.placed_at
        self.placed += 1
        c.placed += 1
        self.journal.attempt(call.attempt_id, call_id=str(call_id))
        self.bus.publish(CallPlaced(at=call.queued_utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                    contact_id=call.contact_id, number=call.number, caller_id=call.caller_id,
                                    call_id=str(call_id), operator_id=call.operator.id if call.operator else None))

    def _not_placed(self, call: LiveCall) -> None:
        """No trunk could take the call (all down or at their limits): nothing left the dialer, so the attempt never
        happened. Its row is deleted, the contact is not counted and comes back with a later refill, and the campaign's
        hopper waits ``refill_backoff_s`` before it is refilled — no busy loop while the trunks are down."""
        c = call.campaign
        log.warning("campaign %s: call to %s not placed: %s", c.id, call.number, call.hangup_cause)
        call.finished = True
        c.calls.pop(call.attempt_id, None)
        c.dialling.pop(call.attempt_id, None)
        self.attempts.pop(call.attempt_id, None)
        self.journal.delete_queued(call.attempt_id)
        c.hopper.clear()
        c.refill_empty_at = self.clock.now()
        op = call.operator
        if op is not None and op.call is call:
            op.call = None
            if op.state is S.reserved:
                self._transition(op, OE.release)
                self._after_free(op)

    # --- previews -----------------------------------------------------------------------------------------------
    async def _start_previews(self, c: CampaignRuntime, picks: list[tuple[Candidate, OperatorSlot | None]]) -> None:
        calls = await self._insert(c, picks, A.queued)
        seconds = float(c.cfg.dial_params.get("preview_seconds", 10))
        for call in calls:
            call.preview = True
            assert call.operator is not None
            async with self.maker() as session:
                card = await repo.contact_card(session, call.contact_id, campaign_id=c.id, history=5)
            call.timer, _ = self._timer(seconds, "preview", call)
            self.bus.publish(PreviewStarted(at=self.clock.utcnow(), operator_id=call.operator.id, campaign_id=c.id,
                                            attempt_id=call.attempt_id, contact_id=call.contact_id,
                                            number=call.number, preview_seconds=seconds, card=card))

    async def _dial_preview(self, call: LiveCall, how: str) -> None:
        if call.state is not A.queued or call.finished:
            return
        if call.timer is not None:
            call.timer.cancel()
        utc = self.clock.utcnow()
        closes = call.candidate.closes_at
        # committed before the call is placed, like an insert: recovery must find every placed call; the number is
        # checked against DNC in the same statement, and the window once more (the operator may have read long)
        if (closes is not None and closes <= utc) or not await self._commit_now(
                lambda db: repo.start_dialing(db, call.attempt_id, utc)):
            self._end_preview(call, "cancelled")
            return
        call.state = call_fsm.next_state(call.state, CE.dial)
        assert call.operator is not None
        self.bus.publish(PreviewEnded(at=utc, operator_id=call.operator.id, campaign_id=call.campaign.id,
                                      attempt_id=call.attempt_id, how=how))
        await self._originate(call)

    def _end_preview(self, call: LiveCall, how: str) -> None:
        """A preview that will not be dialled (skipped, cancelled): the attempt never happened."""
        if call.timer is not None:
            call.timer.cancel()
        c = call.campaign
        call.finished = True
        c.calls.pop(call.attempt_id, None)
        self.attempts.pop(call.attempt_id, None)
        self.journal.delete_queued(call.attempt_id)
        op = call.operator
        if op is not None and op.call is call:
            op.call = None
            self.bus.publish(PreviewEnded(at=self.clock.utcnow(), operator_id=op.id, campaign_id=c.id,
                                          attempt_id=call.attempt_id, how=how))
            if op.state is S.reserved:
                self._transition(op, OE.release)
                self._after_free(op)

    # --- telephony events ---------------------------------------------------------------------------------------
    def _utc_at(self, at: float) -> datetime:
        return self.clock.utcnow() - timedelta(seconds=max(0.0, self.clock.now() - at))

    async def _on_call_event(self, ev: TelephonyCallEvent) -> None:
        call = self._calls.get(ev.call_id)
        if call is None or call.finished:
            return
        kind = ev.kind
        c = call.campaign
        if kind is CallEventKind.trying:
            return
        if kind is CallEventKind.ringing:
            if call.state is A.dialing:
                call.state = call_fsm.next_state(call.state, CE.ring)
                utc = self._utc_at(ev.at)
                self.journal.attempt(call.attempt_id, state=A.ringing, ringing_at=utc)
                self.bus.publish(CallRinging(at=utc, attempt_id=call.attempt_id, campaign_id=c.id))
            return
        if kind is CallEventKind.answered:
            await self._on_answered(call, ev)
            return
        if kind in UNANSWERED:
            category, key, result = UNANSWERED[kind]
            if call.placed_at is not None and ev.cause != "cancelled":
                c.pacer.on_call_result(call.placed_at, result, ev.at - call.placed_at)
            call.hangup_cause, call.sip_code = ev.cause, ev.code
            call.ended_at = ev.at
            call.hung_up_utc = self._utc_at(ev.at)
            self.bus.publish(CallEnded(at=call.hung_up_utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                       result=kind.value, side=None, cause=ev.cause, sip_code=ev.code))
            self._finish(call, category, self.codes.get(key), event=CE.unanswered)
            return
        if kind is CallEventKind.connected:
            self._on_connected(call, ev)
            return
        if kind is CallEventKind.hung_up:
            await self._on_hung_up(call, ev)

    async def _on_answered(self, call: LiveCall, ev: TelephonyCallEvent) -> None:
        c = call.campaign
        machine = ev.answered_by is AnsweredBy.machine
        if call.placed_at is not None:
            c.pacer.on_call_result(call.placed_at, DialResult.machine if machine else DialResult.human,
                                   ev.at - call.placed_at)
        call.state = call_fsm.next_state(call.state, CE.answer)
        c.dialling.pop(call.attempt_id, None)
        c.answered[call.attempt_id] = call
        self._dirty.add(c.id)  # a call ended its dialling phase: the pacer decides again
        call.answered_at = ev.at
        call.answered_by = AnsweredBy.machine.value if machine else AnsweredBy.human.value
        utc = self._utc_at(ev.at)
        self.journal.attempt(call.attempt_id, state=A.answered, answered_at=utc, answered_by=call.answered_by,
                             sip_code=ev.code)
        self.bus.publish(CallAnswered(at=utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                      answered_by=call.answered_by))
        if machine:
            call.hangup_by = "dialer"
            try:
                await self.telephony.hangup(ev.call_id, "answering machine")
            except UnknownCall:
                self._finish(call, OutcomeCategory.no_answer, self.codes.get("answering_machine"), event=CE.hang_up)
            return
        grace = float(c.cfg.operator_wait_s)
        call.timer, _ = self._timer(grace, "grace", call)
        if c.cfg.max_hold_s is not None:
            call.limit_timer, _ = self._timer(max(grace, float(c.cfg.max_hold_s)), "hold_limit", call)
        await self._connect(call)

    def _waiting_calls(self) -> list[LiveCall]:
        return [x for c in self.campaigns.values() for x in c.answered.values()
                if x.answered_by == "human" and x.operator is None and not x.finished]

    def _candidates_for(self, call: LiveCall) -> list[OperatorSlot]:
        """Free operators who may take ``call``: the campaign's own first, then shared ones of campaigns of no
        higher priority (a live customer is better served by a borrowed operator than by hold music)."""
        c = call.campaign
        own, shared = [], []
        for op_id in c.members:
            op = self.operators.get(op_id)
            if (op is not None and op.state is S.ready and op.id not in call.missed_by
                    and eligible(op, c, call.candidate)):
                own.append(op)
        if own:
            return own
        for op in self.operators.values():
            if (op.state is not S.ready or op.campaign_id == c.id or op.id in call.missed_by
                    or not eligible(op, c, call.candidate)):
                continue
            other = self.campaigns.get(op.campaign_id) if op.campaign_id is not None else None
            if other is None or other.priority <= c.priority:
                shared.append(op)
        return shared

    async def _connect(self, call: LiveCall) -> bool:
        """Connect an answered human to his reserved operator or to a free eligible one; False if none."""
        for _ in range(5):
            if call.finished or call.state is not A.answered or call.call_id is None:
                return False
            op = call.operator
            if op is None:
                op = self.chooser.choose(self._candidates_for(call))
                if op is None:
                    return False
                call.operator = op
                op.call = call
                move(op, call.campaign, self.campaigns)
                self._transition(op, OE.reserve)
            try:
                await self.telephony.connect(call.call_id, op.endpoint)
            except EndpointUnavailable as err:
                log.warning("operator %s cannot take calls: %s", op.id, err)
                call.operator, call.reserved = None, False
                op.call = None
                self._transition(op, OE.release)
                self._transition(op, OE.pause, reason="phone unavailable")
                continue
            except UnknownCall:
                return False  # the call is over; its hung_up event releases the operator
            if self.config.offer_timeout_s > 0:
                if call.offer_timer is not None:
                    call.offer_timer.cancel()
                call.offer_timer, _ = self._timer(self.config.offer_timeout_s, "offer", (op, call))
            if call.hold_playing:
                call.hold_playing = False
                with contextlib.suppress(TelephonyError):
                    await self.telephony.play(call.call_id, None)
            return True
        return False

    def _on_connected(self, call: LiveCall, ev: TelephonyCallEvent) -> None:
        c = call.campaign
        op = call.operator
        if op is None:
            op = self._by_endpoint.get(ev.endpoint or "")
            if op is None:
                return
            call.operator = op
            op.call = call
        call.state = call_fsm.next_state(call.state, CE.connect)
        c.answered.pop(call.attempt_id, None)
        call.connected_at = ev.at
        for timer in (call.timer, call.limit_timer, call.offer_timer):
            if timer is not None:
                timer.cancel()
        call.timer = call.offer_timer = None
        call.limit_timer = None
        if c.cfg.max_call_duration_s is not None:
            call.limit_timer, _ = self._timer(float(c.cfg.max_call_duration_s), "duration", call)
        op.missed_in_row = 0
        if op.state in (S.reserved, S.ringing):
            self._transition(op, OE.answer)
        op.talk_started = ev.at
        op.calls_handled += 1
        utc = self._utc_at(ev.at)
        self.journal.attempt(call.attempt_id, state=A.connected, connected_at=utc, operator_id=op.id)
        waited = call.waited_s(ev.at) or 0.0
        self.bus.publish(CallConnected(at=utc, attempt_id=call.attempt_id, campaign_id=c.id, operator_id=op.id,
                                       waited_s=round(waited, 3)))

    async def _on_hung_up(self, call: LiveCall, ev: TelephonyCallEvent) -> None:
        c = call.campaign
        call.ended_at = ev.at
        call.hung_up_utc = self._utc_at(ev.at)
        side = call.hangup_by if call.hangup_by and (ev.side is None or ev.side.value == "dialer") else (
            ev.side.value if ev.side else None)
        cause = call.forced_cause if call.forced_cause and side == "dialer" else ev.cause
        call.hangup_side, call.hangup_cause = side, cause
        self.bus.publish(CallEnded(at=call.hung_up_utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                   result="hung_up", side=side, cause=cause, sip_code=ev.code))
        if call.state is A.connected:
            call.state = call_fsm.next_state(call.state, CE.hang_up)
            op = call.operator
            self.journal.attempt(call.attempt_id, state=A.wrap_up, hung_up_at=call.hung_up_utc, hangup_side=side,
                                 hangup_cause=cause)
            if call.connected_at is not None:
                c.pacer.on_talk_ended(ev.at - call.connected_at)
            if op is None or op.call is not call:
                self._finish(call, OutcomeCategory.answered, self._default_code(c), event=CE.fail)
                return
            self._transition(op, OE.hang_up)
            if op.pending_completion is not None:
                completion, op.pending_completion = op.pending_completion, None
                self._complete(op, completion, timeout=False)
                return
            op.wrap_timer, _ = self._timer(float(c.cfg.wrap_up_s), "wrap", (op, call))
            return
        if call.state is A.answered:
            if call.answered_by == "machine":
                self._finish(call, OutcomeCategory.no_answer, self.codes.get("answering_machine"), event=CE.hang_up)
                return
            # a live customer nobody talked to: "Клиент упущен"
            if not call.abandoned:
                call.abandoned = True
                c.pacer.on_abandon(ev.at)
            op = call.operator
            if op is not None and op.call is call:
                op.call = None
                call.operator = None
                if op.state in (S.reserved, S.ringing):
                    self._transition(op, OE.release)
                    self._after_free(op)
            self._finish(call, OutcomeCategory.abandoned, self.codes.get("abandoned"), event=CE.hang_up)
            return
        # dialing/ringing never end with hung_up by the contract; treat as an error
        self._finish(call, OutcomeCategory.error, self.codes.get("error"), event=CE.fail)

    def _on_endpoint_event(self, ev: EndpointEvent) -> None:
        op = self._by_endpoint.get(ev.endpoint)
        if ev.kind in _DEVICE_STATES:
            self._device_state(ev, op)
        if op is None:
            return
        if ev.kind is EndpointEventKind.ringing and op.state is S.reserved:
            self._transition(op, OE.ring)
        elif ev.kind in (EndpointEventKind.unregistered, EndpointEventKind.unreachable) and op.state is S.ready:
            self._transition(op, OE.pause, reason="phone offline")

    def _device_state(self, ev: EndpointEvent, op: OperatorSlot | None) -> None:
        """Tell the world and the database that a phone registered, left or stopped answering."""
        login, kind = ev.endpoint, ev.kind
        self.bus.publish(DeviceStateChanged(at=self.clock.utcnow(), login=login,
                                            operator_id=op.id if op is not None else None,
                                            state=kind.value, detail=ev.detail))
        reg = None
        registrations = getattr(self.telephony, "registrations", None)
        if callable(registrations):
            reg = next((r for r in registrations() if getattr(r, "login", None) == login), None)
        online = kind is not EndpointEventKind.unregistered
        reachable = kind is EndpointEventKind.registered
        contact = str(getattr(reg, "contact", "") or "")
        source = str(getattr(reg, "source", "") or "")
        agent = str(getattr(reg, "user_agent", "") or "")
        expires = getattr(reg, "expires_at", None)
        expires_at = expires if isinstance(expires, datetime) else (
            datetime.fromtimestamp(expires, UTC) if isinstance(expires, int | float) and expires > 1e9 else None)

        async def job(session: AsyncSession) -> None:
            await repo.save_registration(session, login, online=online, reachable=reachable, contact=contact,
                                         source=source, user_agent=agent, expires_at=expires_at, detail=ev.detail)

        self.journal.job(f"registration of {login}", job)

    def _on_trunk_event(self, ev: TrunkEvent) -> None:
        self.bus.publish(TrunkStateChanged(at=self.clock.utcnow(), trunk_id=ev.trunk_id, name=ev.name, up=ev.up,
                                           detail=ev.detail))
        if not ev.up:
            log.warning("trunk %s (%s) is down: %s", ev.name, ev.trunk_id, ev.detail)

        async def job(session: AsyncSession) -> None:
            await repo.save_trunk_state(session, ev.trunk_id, up=ev.up, detail=ev.detail)

        self.journal.job(f"state of trunk {ev.trunk_id}", job)

    # --- timers -------------------------------------------------------------------------------------------------
    async def _on_timer(self, t: _Timer) -> None:
        if t.kind == "grace":
            call: LiveCall = t.target
            if call.finished or call.state is not A.answered or call.abandoned:
                return
            # the regulatory threshold passed without an operator: abandoned for the statistics from now on
            call.abandoned = True
            now = self.clock.now()
            call.campaign.pacer.on_abandon(now)
            waited = call.waited_s(now) or 0.0
            if call.operator is None and call.call_id is not None:
                call.hold_playing = True
                with contextlib.suppress(TelephonyError):
                    await self.telephony.play(call.call_id, call.campaign.cfg.hold_audio or self.config.hold_audio)
            self.bus.publish(CallOnHold(at=self.clock.utcnow(), attempt_id=call.attempt_id,
                                        campaign_id=call.campaign.id, waited_s=round(waited, 3)))
        elif t.kind == "hold_limit":
            hcall: LiveCall = t.target
            if not hcall.finished and hcall.state is A.answered and hcall.answered_by == "human":
                await self._cut(hcall, "no operator")
        elif t.kind == "duration":
            dcall: LiveCall = t.target
            if not dcall.finished and dcall.state is A.connected:
                await self._cut(dcall, "max duration")
        elif t.kind == "offer":
            oop, ocall = t.target
            if (not ocall.finished and ocall.state is A.answered and ocall.operator is oop and oop.call is ocall
                    and oop.state in (S.reserved, S.ringing)):
                await self._missed_offer(oop, ocall)
        elif t.kind == "wrap":
            op, wcall = t.target
            if op.state is S.wrap_up and op.call is wcall and op.wrap_timer is not None:
                self._complete(op, Completion(self._default_code(wcall.campaign) or 0), timeout=True)
        elif t.kind == "preview":
            pcall: LiveCall = t.target
            if pcall.state is A.queued and not pcall.finished:
                await self._dial_preview(pcall, "timeout")

    async def _cut(self, call: LiveCall, cause: str) -> None:
        """The engine hangs up a call by its own limit; the hung_up event that follows records ``cause``."""
        if call.call_id is None:
            return
        call.hangup_by = "dialer"
        call.forced_cause = cause
        with contextlib.suppress(UnknownCall):
            await self.telephony.hangup(call.call_id, cause)

    async def _missed_offer(self, op: OperatorSlot, call: LiveCall) -> None:
        """``op`` let the offer of ``call`` ring out: take it back, count the miss, pause him at the strategy's limit,
        and offer the customer to another operator (or let him wait on hold as usual).

        Taking an offer back needs the driver's optional ``withdraw(call_id)``; a driver without it keeps ringing the
        operator (the miss is still counted and published, and a due pause waits until that call ends)."""
        c = call.campaign
        withdraw = getattr(self.telephony, "withdraw", None)
        withdrawn = False
        if callable(withdraw) and call.call_id is not None:
            try:
                await withdraw(call.call_id)
                withdrawn = True
            except UnknownCall:
                return  # the call is over (or he picked up meanwhile): its own event follows
        op.missed_in_row += 1
        op.missed_total += 1
        limit = c.cfg.auto_pause_after_missed
        pause = limit is not None and op.missed_in_row >= limit
        self.bus.publish(OperatorMissedCall(at=self.clock.utcnow(), operator_id=op.id, campaign_id=c.id,
                                            attempt_id=call.attempt_id, missed_in_row=op.missed_in_row,
                                            missed_total=op.missed_total, paused=pause, withdrawn=withdrawn))
        if not withdrawn:
            if pause:
                op.pending = (S.paused, "missed call")
            return
        if pause:
            op.missed_in_row = 0
        call.missed_by.add(op.id)
        call.operator, call.reserved = None, False
        op.call = None
        call.offer_timer = None
        self._transition(op, OE.release)
        if pause:
            op.pending = None
            self._transition(op, OE.pause, reason="missed call")
        self._dirty.add(c.id)
        if not await self._connect(call) and call.abandoned and not call.hold_playing and call.call_id is not None:
            call.hold_playing = True
            with contextlib.suppress(TelephonyError):
                await self.telephony.play(call.call_id, c.cfg.hold_audio or self.config.hold_audio)
        if not pause:
            self._after_free(op)

    # --- operators ----------------------------------------------------------------------------------------------
    def _transition(self, op: OperatorSlot, event: OE, *, reason: str = "") -> None:
        """Apply one operator event: the table decides, the period is recorded, the world is told."""
        previous = op.state
        new = operator_fsm.next_state(previous, event)
        now = self.clock.now()
        utc = self.clock.utcnow()
        if previous is S.wrap_up:
            camp = self.campaigns.get(op.campaign_id) if op.campaign_id is not None else None
            if camp is not None:
                camp.pacer.on_wrap_up_ended(now - op.since)
        op.state = new
        op.reason = reason if new is S.paused else ""
        op.since, op.since_utc = now, utc
        if new is S.ready:
            op.idle_since = now
        if new is not S.wrap_up and op.wrap_timer is not None:
            op.wrap_timer.cancel()
            op.wrap_timer = None
        call = op.call if new in BUSY else None
        campaign_id = call.campaign.id if call is not None else op.campaign_id
        self.journal.period(repo.OperatorPeriod(op.id, new, op.reason, campaign_id,
                                                call.attempt_id if call is not None else None, utc))
        self.bus.publish(OperatorStateChanged(at=utc, operator_id=op.id, state=new.value, previous=previous.value,
                                              reason=op.reason, campaign_id=campaign_id,
                                              attempt_id=call.attempt_id if call is not None else None))
        if new is S.ready:
            for c in self.campaigns.values():
                if op.id in c.members or op.campaign_id == c.id or (
                        op.campaign_id is None and in_pools(op, c)):
                    if c.free_since_perf is None:
                        c.free_since_perf = time.perf_counter()
                    self._dirty.add(c.id)
        for hook in self.hooks:
            try:
                hook(op, previous)
            except Exception:
                log.exception("operator hook failed")

    def _after_free(self, op: OperatorSlot) -> None:
        """The operator just became free: apply a pending state, else serve the longest-waiting live customer."""
        if op.state is not S.ready:
            return
        if op.pending is not None:
            state, reason = op.pending
            op.pending = None
            if state is S.paused:
                self._transition(op, OE.pause, reason=reason)
                return
            if state is S.offline:
                self._transition(op, OE.log_out)
                return
        allocate_one(op, self.campaigns)
        waiting = [x for x in self._waiting_calls()
                   if op.id not in x.missed_by and eligible(op, x.campaign, x.candidate)
                   and (x.campaign.id == op.campaign_id or op.campaign_id not in self.campaigns
                        or self.campaigns[op.campaign_id].priority <= x.campaign.priority)]
        if waiting:
            # his own campaign first, then by priority, then the longest wait
            own = op.campaign_id
            waiting.sort(key=lambda x: (x.campaign.id != own, -x.campaign.priority, x.answered_at or 0.0))
            call = waiting[0]
            call.operator = op
            op.call = call
            move(op, call.campaign, self.campaigns)
            self._transition(op, OE.reserve)
            # connecting awaits the driver: the actor does it as its next piece of work
            self._post(_Call(lambda: self._connect(call), None))

    def _default_code(self, c: CampaignRuntime) -> int | None:
        return c.cfg.default_completion_code_id or self.codes.get("answered")

    def _complete(self, op: OperatorSlot, completion: Completion, *, timeout: bool) -> None:
        call = op.call
        assert call is not None and op.state is S.wrap_up
        c = call.campaign
        code_id = completion.completion_code_id or self._default_code(c)
        code = c.plan.codes.get(code_id) if code_id is not None else None
        category = code.category if code is not None else OutcomeCategory.answered
        call.state = call_fsm.next_state(call.state, CE.complete)
        op.call = None
        self._finish(call, category, code_id, event=None, completion=completion, operator=op)
        self._transition(op, OE.wrap_up_timeout if timeout else OE.complete)
        if timeout and self.config.after_wrap_up_timeout is S.paused and op.pending is None:
            op.pending = (S.paused, "wrap-up timeout")
        self._after_free(op)

    # --- finishing attempts -------------------------------------------------------------------------------------
    def _finish(self, call: LiveCall, category: OutcomeCategory, code_id: int | None, *, event: CE | None,
                completion: Completion | None = None, operator: OperatorSlot | None = None) -> None:
        """The attempt is done: exactly once, one category, one code; the journal records it and applies the
        strategy's rules; a reserved operator is let go."""
        if call.finished:
            return
        if event is not None:
            call.state = call_fsm.next_state(call.state, event)
        call.finished = True
        c = call.campaign
        for timer in (call.timer, call.limit_timer, call.offer_timer):
            if timer is not None:
                timer.cancel()
        utc = self.clock.utcnow()
        now = self.clock.now()
        columns: dict[str, Any] = {"outcome": category, "completion_code_id": code_id,
                                   "hung_up_at": call.hung_up_utc or utc}
        if call.hangup_side:
            columns["hangup_side"] = call.hangup_side
        if call.hangup_cause:
            columns["hangup_cause"] = call.hangup_cause
        if call.sip_code is not None:
            columns["sip_code"] = call.sip_code
        if call.connected_at is not None:
            columns["wrap_up_ended_at"] = utc
        if completion is not None and completion.comment:
            columns["comment"] = completion.comment
        op_for_callback = operator or call.operator
        if code_id is None:  # only when the system codes were deleted by hand: keep the books balanced
            code_id = self.codes.get("error", 0)
        result = AttemptResult(
            attempt_id=call.attempt_id, campaign_id=c.id, contact_id=call.contact_id,
            phone_id=call.candidate.phone_id, number=call.number, category=category, completion_code_id=code_id,
            answered_by_machine=call.answered_by == "machine",
            callback_at=completion.callback_at if completion else None,
            callback_operator_id=(op_for_callback.id if completion and completion.callback_personal
                                  and op_for_callback is not None else None),
            never_call=bool(completion and completion.never_call))
        self.journal.finish(call.attempt_id, columns, result, c.plan, utc)
        c.calls.pop(call.attempt_id, None)
        c.dialling.pop(call.attempt_id, None)
        c.answered.pop(call.attempt_id, None)
        self.attempts.pop(call.attempt_id, None)
        if call.call_id is not None:
            self._calls.pop(call.call_id, None)
        self.finished += 1
        talked_to = operator or call.operator
        self.bus.publish(AttemptFinished(
            at=utc, attempt_id=call.attempt_id, campaign_id=c.id, contact_id=call.contact_id,
            operator_id=talked_to.id if talked_to is not None and call.connected_at is not None else None,
            category=category.value, completion_code_id=code_id, abandoned=call.abandoned,
            waited_s=None if (w := call.waited_s(now)) is None else round(w, 3)))
        # a reserved operator whose call never reached him is free again
        op = call.operator
        if op is not None and op.call is call and op.state in (S.reserved, S.ringing):
            op.call = None
            self._transition(op, OE.release)
            self._after_free(op)
        self._count_error(c, category, call)
        if call.connected_at is None:
            self._dirty.add(c.id)  # a line is free again (the pacer counts lines)

    def _count_error(self, c: CampaignRuntime, category: OutcomeCategory, call: LiveCall) -> None:
        """Safety auto-stop (001): N error results in a row within the window pause the campaign."""
        if category is not OutcomeCategory.error:
            c.errors.clear()
            return
        n = self.config.auto_stop_errors
        if self._stopping or n <= 0:
            return
        now = self.clock.now()
        c.errors.append(now)
        while len(c.errors) > n:
            c.errors.popleft()
        if len(c.errors) < n or now - c.errors[0] > self.config.auto_stop_window_s:
            return
        if c.status is not CampaignStatus.running or c.expected_status is not None:
            return
        reason = (f"auto-stop: {n} errors in a row within {now - c.errors[0]:.0f} s "
                  f"(last: {call.hangup_cause or 'error'})")
        c.expected_status = CampaignStatus.auto_paused
        c.expected_until = time.monotonic() + 30.0
        c.errors.clear()
        utc = self.clock.utcnow()
        cid = c.id

        async def pause(session: AsyncSession) -> None:
            session.info["actor"] = ENGINE_ACTOR
            try:
                await campaign_service.auto_pause(session, cid, reason)
            except IllegalTransition:
                return
            self.bus.publish(CampaignAutoPaused(at=utc, campaign_id=cid, reason=reason))

        self.journal.job(f"auto-pause campaign {cid}", pause, after=self.wake)
        for pcall in [x for x in c.calls.values() if x.preview and x.state is A.queued]:
            self._end_preview(pcall, "cancelled")
        c.hopper.clear()

    # --- commands -----------------------------------------------------------------------------------------------
    def submit(self, kind: CommandKind | str, operator_id: int, **payload: Any) -> asyncio.Future[dict[str, Any]]:
        """Apply a command in-process (simulated operators, tests); the future gets its result."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._post(_Submit(Command(CommandKind(kind), operator_id, payload), future))
        return future

    async def _load_commands(self) -> None:
        rows = await self._commit_now(repo.pending_commands)
        for row in rows:
            if row.id in self._commands_seen:
                continue
            self._commands_seen.add(row.id)
            try:
                kind = CommandKind(row.kind)
            except ValueError:
                self.journal.command_done(row.id, {"ok": False, "error": f"unknown command {row.kind!r}"})
                continue
            if row.operator_id is None:
                self.journal.command_done(row.id, {"ok": False, "error": "the command names no operator"})
                continue
            # it stays "seen" until the journal has marked it processed, so a poll meanwhile skips it
            await self._apply_command(Command(kind, row.operator_id, row.payload, id=row.id))
        if len(self._commands_seen) > 10_000:  # old ids are processed in the database by now
            self._commands_seen = {i for i in self._commands_seen if i >= rows[0].id} if rows else set()

    async def _apply_command(self, cmd: Command) -> dict[str, Any]:
        op = self.operators.get(cmd.operator_id)
        try:
            if op is None:
                raise DialerError(f"operator {cmd.operator_id} is not known to the engine (inactive or deleted)")
            result = await self._command(op, cmd)
        except DialerError as err:
            result = {"ok": False, "error": err.detail}
            self.bus.publish(CommandFailed(at=self.clock.utcnow(), command_id=cmd.id or 0,
                                           operator_id=cmd.operator_id, kind=cmd.kind.value, reason=err.detail))
        except (ValueError, TypeError, KeyError) as err:
            result = {"ok": False, "error": f"invalid {cmd.kind.value} command: {err}"}
        if op is not None and result.get("ok"):
            result.setdefault("state", op.state.value)
            result.setdefault("reason", op.reason)
            result.setdefault("pending", op.pending[0].value if op.pending else None)
        if cmd.id is not None:
            self.journal.command_done(cmd.id, result)
        return result

    async def _command(self, op: OperatorSlot, cmd: Command) -> dict[str, Any]:
        kind, p = cmd.kind, cmd.payload
        if kind is CommandKind.ready:
            return self._want(op, S.ready, "")
        if kind is CommandKind.pause:
            return self._want(op, S.paused, str(p.get("reason") or "break"))
        if kind is CommandKind.offline:
            return self._want(op, S.offline, "")
        if kind is CommandKind.force_state:
            state = S(str(p.get("state")))
            if state not in (S.ready, S.paused, S.offline):
                raise DialerError(f"a supervisor can set ready, paused or offline, not {state.value}")
            if op.state is S.wrap_up and op.call is not None:
                self._complete(op, Completion(self._default_code(op.call.campaign) or 0), timeout=True)
            elif op.state is S.reserved and op.call is not None and op.call.preview:
                self._end_preview(op.call, "cancelled")
            return self._want(op, state, str(p.get("reason") or "supervisor"))
        if kind is CommandKind.release:
            if op.state is S.reserved and op.call is not None and op.call.preview:
                self._end_preview(op.call, "cancelled")
            elif op.state is S.wrap_up and op.call is not None:
                op.pending = None
                self._complete(op, Completion(self._default_code(op.call.campaign) or 0), timeout=True)
            elif op.state is S.paused:
                self._transition(op, OE.go_ready)
                self._after_free(op)
            elif op.state in (S.in_call, S.ringing, S.reserved):
                raise DialerError(f"operator {op.info.name} is {op.state.value.replace('_', '-')} with a call; "
                                  "it has to end first")
            return {"ok": True}
        if kind is CommandKind.complete:
            return self._command_complete(op, p)
        if kind in (CommandKind.preview_confirm, CommandKind.preview_skip):
            call = op.call
            if call is None or not call.preview or call.state is not A.queued:
                raise DialerError("there is no preview to confirm or skip")
            if kind is CommandKind.preview_confirm:
                await self._dial_preview(call, "confirmed")
            else:
                call.campaign.skipped[call.contact_id] = self.clock.now() + 600.0
                self._end_preview(call, "skipped")
            return {"ok": True}
        if kind is CommandKind.hangup:
            call = op.call
            if call is None or call.call_id is None or call.state not in (A.dialing, A.ringing, A.answered,
                                                                           A.connected):
                raise DialerError("there is no call to hang up")
            call.hangup_by = "operator"
            with contextlib.suppress(UnknownCall):
                await self.telephony.hangup(call.call_id, "operator hung up")
            return {"ok": True}
        if kind is CommandKind.manual_dial:
            return await manual.dial(self, op, p)
        raise DialerError(f"unknown command {kind}")

    def _want(self, op: OperatorSlot, state: OperatorState, reason: str) -> dict[str, Any]:
        """Move the operator to ready/paused/offline now, or after his current call."""
        if op.state in BUSY:
            if op.state is S.reserved and op.call is not None and op.call.preview:
                self._end_preview(op.call, "cancelled")
            else:
                op.pending = None if state is S.ready else (state, reason)
                return {"ok": True, "pending": None if state is S.ready else state.value}
        if op.state is state and (state is not S.paused or op.reason == reason):
            return {"ok": True}
        if state is S.ready:
            self._transition(op, OE.go_ready)
            self._after_free(op)
        elif state is S.paused:
            self._transition(op, OE.pause, reason=reason)
        else:
            self._transition(op, OE.log_out)
        allocate_one(op, self.campaigns)
        return {"ok": True}

    def _command_complete(self, op: OperatorSlot, p: Mapping[str, Any]) -> dict[str, Any]:
        call = op.call
        if call is None or op.state not in (S.in_call, S.wrap_up):
            raise DialerError("there is no call to complete: the operator is "
                              f"{op.state.value.replace('_', '-')}")
        code_id = int(p["completion_code_id"])
        if code_id not in call.campaign.cfg.code_ids:
            raise DialerError(f"completion code {code_id} is not in the campaign's completion-code group")
        callback_at = p.get("callback_at")
        completion = Completion(
            completion_code_id=code_id, comment=str(p.get("comment") or ""),
            callback_at=datetime.fromisoformat(callback_at) if isinstance(callback_at, str) else callback_at,
            callback_personal=bool(p.get("callback_personal")), never_call=bool(p.get("never_call")))
        if completion.callback_at is not None and completion.callback_at.tzinfo is None:
            completion = dataclasses.replace(completion, callback_at=completion.callback_at.replace(tzinfo=UTC))
        if op.state is S.in_call:
            op.pending_completion = completion  # applied when the conversation ends
            return {"ok": True, "applied": "at hang-up"}
        self._complete(op, completion, timeout=False)
        return {"ok": True, "attempt_id": call.attempt_id}

    # --- stopping -----------------------------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Graceful stop: nothing new; previews returned; calls may finish within ``drain_s``; the rest are cut."""
        self._stopping = True
        for c in self.campaigns.values():
            for call in [x for x in c.calls.values() if x.preview and x.state is A.queued]:
                self._end_preview(call, "cancelled")
            c.hopper.clear()
        deadline = self.clock.now() + self.config.drain_s
        while self.attempts and self.clock.now() < deadline:
            # keep handling events while the calls end by themselves
            if self._inbox:
                batch = list(self._inbox)
                self._inbox.clear()
                for msg in batch:
                    if isinstance(msg, _Stop):
                        continue
                    try:
                        await self._handle(msg)
                    except Exception:
                        log.exception("engine failed handling %r while stopping", msg)
                self._done_work(len(batch))
                continue
            self._inbox_ready.clear()
            waiter = asyncio.ensure_future(self._inbox_ready.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(max(0.0, deadline - self.clock.now())))
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            sleeper.cancel()
        utc = self.clock.utcnow()
        for call in list(self.attempts.values()):
            if call.call_id is not None and call.state in (A.dialing, A.ringing, A.answered, A.connected):
                with contextlib.suppress(TelephonyError):
                    await self.telephony.hangup(call.call_id, "engine stopped")
            op = call.operator
            if call.state in (A.connected, A.wrap_up):
                if call.state is A.connected:
                    call.state = call_fsm.next_state(call.state, CE.hang_up)
                    if op is not None and op.state is S.in_call:
                        self._transition(op, OE.hang_up)
                call.hangup_cause = call.hangup_cause or "engine stopped"
                if op is not None and op.state is S.wrap_up and op.call is call:
                    self._complete(op, Completion(self._default_code(call.campaign) or 0), timeout=True)
                else:
                    self._finish(call, OutcomeCategory.answered, self._default_code(call.campaign), event=CE.complete)
            else:
                call.hangup_cause = "engine stopped"
                self._finish(call, OutcomeCategory.error, self.codes.get("error"), event=CE.fail)
        for op in self.operators.values():
            if op.state in (S.reserved, S.ringing):
                self._transition(op, OE.release)
            if op.state is not S.offline:
                op.pending = None
                if op.state is S.in_call:
                    self._transition(op, OE.hang_up)
                if op.state is S.wrap_up:
                    op.call = None
                    self._transition(op, OE.wrap_up_timeout)
                self._transition(op, OE.log_out)
        run_id = self.run_id
        assert run_id is not None

        async def stop_run(session: AsyncSession) -> None:
            await repo.stop_run(session, run_id, utc)

        self.bus.publish(EngineStopped(at=utc, run_id=run_id))
        self.journal.job("stop run", stop_run)

    # --- reporting ----------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """What the heartbeat stores for the monitoring API (and what tools print)."""
        campaigns = {}
        for c in self.campaigns.values():
            obs = self.observe(c)
            lines = sum(1 for x in c.calls.values() if x.state in (A.dialing, A.ringing))
            working = obs.operators_ready + obs.operators_in_call + obs.operators_wrap_up
            campaigns[str(c.id)] = {
                "status": c.status.value, "open": c.open, "mode": c.mode.value, "pacer": c.pacer.name,
                "operators": len(c.members), "operators_ready": obs.operators_ready,
                "operators_in_call": obs.operators_in_call, "operators_wrap_up": obs.operators_wrap_up,
                "calls_dialling": lines, "calls_waiting": obs.calls_waiting, "hopper": len(c.hopper),
                "dial_ratio": round(lines / obs.operators_ready, 3) if obs.operators_ready else (
                    float(lines) if lines else 0.0),
                "occupancy_now": round((obs.operators_in_call + obs.operators_wrap_up) / working, 3) if working else 0,
                "consecutive_errors": len(c.errors), "placed": c.placed,
                "threshold": round(c.pacer.threshold(obs.now), 5) if isinstance(c.pacer, PredictivePacer) else None,
            }
        return {"run_id": self.run_id, "campaigns": campaigns, "placed": self.placed, "finished": self.finished,
                "operators_online": sum(1 for o in self.operators.values() if o.state is not S.offline),
                "journal_pending": self.journal.pending(), "events_published": self.bus.published}


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT ask for a graceful stop (drain) instead of killing the process."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


