"""The long-lived dialing engine: campaigns, operators and calls, from the first dial to the recorded result.

Shape
    :class:`Engine` runs as one asyncio ``TaskGroup``: an *actor* task owns all state and handles, one batch at a
    time, everything that happens (telephony events, timers, ticks, commands); a pump feeds it the driver's events;
    a ticker posts a tick every ``tick_s``; a listener wakes it on NOTIFYed commands; the journal writes behind.
    Only the actor mutates operators, calls and campaigns, so nothing needs a lock, and the order of events is the
    order of their effects. The engine imports no web framework: the API reaches it through the database
    (``engine_commands``) and it speaks to the world through the bus.

    The actor's work is split into collaborators around one typed context (:mod:`dialer.engine.context`):
    :mod:`~dialer.engine.control` (campaign status, schedules, pacers, hoppers, finishing),
    :mod:`~dialer.engine.placement` (decide, pick, insert, originate, previews, manual dial),
    :mod:`~dialer.engine.calls` (telephony events, connect, offers, limits), :mod:`~dialer.engine.roster` (operator
    transitions, commands) and :mod:`~dialer.engine.results` (complete, finish, auto-stop). This module keeps the
    mailbox, the dispatch tables (messages by type, timers by :class:`~dialer.engine.context.TimerKind`), the
    engine's life (start, run, drain) and its public face.

A call's path
    tick → ``control`` (campaign open, hopper refilled) → ``placement`` (pacer decides, candidates picked, attempts
    inserted and committed, calls originated) → the driver's events → ``calls`` (ringing, answered, connected to an
    operator via ``roster``, hung up) → ``results`` (completion code or timeout, attempt finished, the journal
    applies the strategy's rules).

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
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.clock import Clock, SystemClock
from dialer.engine import call_fsm, recovery
from dialer.engine import repository as repo
from dialer.engine.bus import COMMAND_CHANNEL, Bus, listen_raw
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.calls import CallHandling
from dialer.engine.commands import Command, CommandKind
from dialer.engine.context import (
    TICK,
    WAKE,
    CallIn,
    EngineConfig,
    EngineContext,
    FinishChecked,
    IdleExplained,
    OperatorHook,
    Refilled,
    Stop,
    Submit,
    Tick,
    TimerFired,
    TimerKind,
    WakeCommands,
    WakeControl,
)
from dialer.engine.control import CampaignControl, make_pacer_for
from dialer.engine.events import EngineStarted, EngineStopped
from dialer.engine.idle import reasons_now
from dialer.engine.inbound import InboundCalls
from dialer.engine.journal import ENGINE_ACTOR, Journal
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.pacing import Observation, PredictivePacer
from dialer.engine.placement import CallPlacement
from dialer.engine.results import AttemptResults
from dialer.engine.roster import OperatorRoster
from dialer.engine.state import CampaignRuntime, LiveCall, OperatorSlot
from dialer.engine.transfers import TransferHandling
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from dialer.telephony.base import CallEvent as TelephonyCallEvent
from dialer.telephony.base import (
    EndpointEvent,
    IncomingCall,
    Telephony,
    TelephonyError,
    TransferRequested,
    TrunkEvent,
)

__all__ = ["Engine", "EngineConfig", "OperatorHook", "install_signal_handlers", "make_pacer_for"]

log = logging.getLogger(__name__)

S = OperatorState
A = AttemptState


class Engine:
    """The dialing engine. ``await engine.run(stop)`` runs it until ``stop`` is set; see the module docstring.

    ``maker`` opens database sessions; ``telephony`` is the driver (the engine starts and closes it); ``clock`` is
    the time source (default: the system clock); ``database_url`` enables the NOTIFY command listener (without
    it commands are polled every tick).
    """

    def __init__(self, maker: async_sessionmaker[AsyncSession], telephony: Telephony, *, clock: Clock | None = None,
                 bus: Bus | None = None, config: EngineConfig | None = None, database_url: str | None = None) -> None:
        self.ctx = ctx = EngineContext(maker, telephony, clock or SystemClock(), bus or Bus(), config or EngineConfig())
        ctx.bus.add_sink(ctx.journal.event)
        self.database_url = database_url
        ctx.control = self.control = CampaignControl(ctx)
        ctx.placement = self.placement = CallPlacement(ctx)
        ctx.calls = self.calls = CallHandling(ctx)
        ctx.roster = self.roster = OperatorRoster(ctx)
        ctx.results = self.results = AttemptResults(ctx)
        ctx.inbound = self.inbound = InboundCalls(ctx)
        ctx.transfers = self.transfers = TransferHandling(ctx)
        self.recovery: repo.Recovery | None = None
        #: Called once the engine runs (simulated operators register their phones and go ready).
        self.startup_hooks: list[Callable[[Engine], Any]] = []
        #: Called when the engine has stopped.
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self._exit = False
        self._tick_pending = False
        #: True once another engine took over this run's lease; the engine then stopped dialling and stopped.
        self.fenced = False
        self._stop_event: asyncio.Event | None = None
        self._dispatch: dict[type, Callable[[Any], Awaitable[None]]] = {
            TelephonyCallEvent: self.calls.on_call_event,
            EndpointEvent: _sync(self.calls.on_endpoint_event),
            TrunkEvent: _sync(self.calls.on_trunk_event),
            IncomingCall: self.inbound.on_incoming,
            TransferRequested: self.transfers.on_requested,
            Tick: self._on_tick,
            TimerFired: self._on_timer,
            Submit: self._on_submit,
            WakeCommands: lambda _msg: self.roster.load_commands(),
            WakeControl: lambda _msg: self.control.poll(force=True),
            Refilled: _sync(self.control.on_refilled),
            FinishChecked: _sync(self.control.on_finish_checked),
            IdleExplained: _sync(self.control.on_idle_explained),
            CallIn: self._on_call_in,
            Stop: self._on_stop,
        }
        self._timers: dict[TimerKind, Callable[[Any], Awaitable[None]]] = {
            TimerKind.grace: self.calls.on_grace,
            TimerKind.hold_limit: self.calls.on_hold_limit,
            TimerKind.duration: self.calls.on_duration_limit,
            TimerKind.offer: self.calls.on_offer_timeout,
            TimerKind.wrap: self.results.on_wrap_timeout,
            TimerKind.preview: self.placement.on_preview_timeout,
            TimerKind.inbound_wait: self.inbound.on_wait_timeout,
            TimerKind.inbound_message: self.inbound.on_message_played,
            TimerKind.consent: self.calls.on_consent,
            TimerKind.abandon_message: self.calls.on_abandon_message_played,
            TimerKind.transfer_wait: self.transfers.on_wait_timeout,
            TimerKind.transfer_message: self.transfers.on_message_played,
        }

    # --- the public face: what tools, tests and the process entry points read -----------------------------------
    @property
    def maker(self) -> async_sessionmaker[AsyncSession]:
        return self.ctx.maker

    @property
    def telephony(self) -> Telephony:
        return self.ctx.telephony

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def bus(self) -> Bus:
        return self.ctx.bus

    @property
    def config(self) -> EngineConfig:
        return self.ctx.config

    @property
    def journal(self) -> Journal:
        return self.ctx.journal

    @property
    def run_id(self) -> int | None:
        return self.ctx.run_id

    @property
    def operators(self) -> dict[int, OperatorSlot]:
        return self.ctx.operators

    @property
    def campaigns(self) -> dict[int, CampaignRuntime]:
        return self.ctx.campaigns

    @property
    def attempts(self) -> dict[int, LiveCall]:
        return self.ctx.attempts

    @property
    def codes(self) -> dict[str, int]:
        return self.ctx.codes

    @property
    def hooks(self) -> list[OperatorHook]:
        return self.ctx.hooks

    @property
    def placed(self) -> int:
        return self.ctx.placed

    @property
    def finished(self) -> int:
        return self.ctx.finished

    @property
    def skipped_candidates(self) -> int:
        return self.ctx.skipped_candidates

    @property
    def decision_ms(self) -> list[float]:
        return self.ctx.decision_ms

    def observe(self, c: CampaignRuntime) -> Observation:
        """What the campaign's pacer sees now (as the pacing benchmark builds it)."""
        return self.placement.observe(c)

    def wake(self) -> None:
        """Read campaign statuses, configuration and queued commands now (instead of at the next poll)."""
        self.ctx.wake()

    def submit(self, kind: CommandKind | str, operator_id: int, **payload: Any) -> asyncio.Future[dict[str, Any]]:
        """Apply a command in-process (simulated operators, tests); the future gets its result."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.ctx.post(Submit(Command(CommandKind(kind), operator_id, payload), future))
        return future

    async def call_in_actor(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``fn()`` inside the actor, between two batches (safe access to the engine's state)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.ctx.post(CallIn(fn, future))
        return await future

    def is_idle(self) -> bool:
        return self.ctx.is_idle()

    async def quiescent(self) -> None:
        """Wait until the engine has handled everything posted to it (timers sleeping on the clock do not count)."""
        await self.ctx.idle.wait()

    # --- life -----------------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start (recovery, run row, roster), run until ``stop`` is set or :meth:`request_stop`, then drain."""
        stop = stop or asyncio.Event()
        self._stop_event = stop
        await self._startup()
        ctx = self.ctx
        try:
            async with asyncio.TaskGroup() as tg:
                journal_task = tg.create_task(ctx.journal.run(), name="engine journal")
                actor = tg.create_task(self._actor(), name="engine actor")
                helpers = [tg.create_task(self._pump(), name="engine telephony pump"),
                           tg.create_task(self._ticker(), name="engine ticker"),
                           tg.create_task(self._heartbeat(), name="engine heartbeat")]
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
                    ctx.post(Stop())
                    await actor
                for task in helpers:
                    task.cancel()
                ctx.work.cancel_all()
                ctx.side.cancel_all()
                ctx.journal.close()
                await journal_task
        finally:
            await ctx.close_connection()
            for shutdown in self.shutdown_hooks:
                with contextlib.suppress(Exception):
                    shutdown()
            with contextlib.suppress(Exception):
                await ctx.telephony.close()
            self.stopped.set()

    def request_stop(self) -> None:
        """Ask the engine to drain and stop (what SIGTERM does)."""
        if self._stop_event is not None:
            self._stop_event.set()

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
        ctx = self.ctx
        utc = ctx.clock.utcnow()
        async with ctx.maker() as session, session.begin():
            ctx.codes = await repo.system_codes(session)
            session.info["actor"] = ENGINE_ACTOR
            restarted = ctx.codes.get("engine_restarted") or ctx.codes.get("error")
            ctx.run_id, self.recovery = await repo.start_run(
                session, host=ctx.config.host, pid=ctx.config.pid, now_utc=utc,
                dead_after_s=ctx.config.dead_after_s, error_code_id=restarted)
            await recovery.apply_strategy(session, self.recovery.closed, restarted, utc)
            await recovery.close_transfers(session, utc)
            await repo.expire_commands(session, ctx.config.command_ttl_s)
            # phones registered with an earlier engine's registrar must register again with ours
            await repo.mark_registrations_offline(session, "engine restarted")
            infos = await repo.roster(session)
        for info in infos:
            ctx.add_operator(info)
        await ctx.telephony.start()
        if self.recovery.closed_attempts:
            log.warning("recovered %d attempts of dead engine runs %s as errors",
                        len(self.recovery.closed_attempts), self.recovery.dead_runs)
        ctx.bus.publish(EngineStarted(at=utc, run_id=ctx.run_id, host=ctx.config.host, pid=ctx.config.pid,
                                      recovered_attempts=len(self.recovery.closed_attempts)))
        await self.control.load()
        self.control.started()

    # --- the actor ----------------------------------------------------------------------------------------------
    async def _actor(self) -> None:
        ctx = self.ctx
        while True:
            if not ctx.inbox:
                ctx.inbox_ready.clear()
                await ctx.inbox_ready.wait()
                continue
            handled = await self._handle_batch()
            try:
                await self.placement.decide_dirty()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine decision failed")
            if ctx.journal.pending() > ctx.config.max_pending_writes:
                await ctx.journal.drained()  # back-pressure: the database sets the pace
            ctx.done_work(handled)  # only now: virtual time waits for the decisions too
            if self._exit:
                return

    async def _handle_batch(self, *, skip: Iterable[type] = ()) -> int:
        """Handle every message waiting in the mailbox, in order (one failing message does not stop the others);
        returns how many were taken, for the caller to account as done work."""
        ctx = self.ctx
        batch = list(ctx.inbox)
        ctx.inbox.clear()
        for msg in batch:
            if type(msg) in skip:
                continue
            try:
                await self._dispatch[type(msg)](msg)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine failed handling %r", msg)
        return len(batch)

    async def _on_tick(self, _msg: Tick) -> None:
        self._tick_pending = False
        await self.control.tick()

    async def _on_timer(self, msg: TimerFired) -> None:
        await self._timers[msg.kind](msg.target)

    async def _on_submit(self, msg: Submit) -> None:
        result = await self.roster.apply_command(msg.command)
        if msg.future is not None and not msg.future.done():
            msg.future.set_result(result)

    async def _on_call_in(self, msg: CallIn) -> None:
        try:
            value = await msg.fn()
        except Exception as err:
            if msg.future is None:
                raise
            msg.future.set_exception(err)
        else:
            if msg.future is not None:
                msg.future.set_result(value)

    async def _on_stop(self, _msg: Stop) -> None:
        await self._drain()
        self._exit = True

    # --- helpers feeding the actor ----------------------------------------------------------------------------
    async def _pump(self) -> None:
        async for event in self.ctx.telephony.events():
            self.ctx.post(event)

    async def _ticker(self) -> None:
        while True:
            await self.ctx.clock.sleep(self.ctx.config.tick_s)
            if not self._tick_pending:  # a slow engine gets one tick, not a backlog of them
                self._tick_pending = True
                self.ctx.post(TICK)

    async def _heartbeat(self) -> None:
        """Renew the run's lease every ``heartbeat_s`` of wall time, on a connection of its own — never behind the
        journal, which may be busy or stuck on a large unit. A run that finds its lease taken (another engine
        declared it dead) stops dialling at once and stops: two engines must never dial the same database."""
        ctx = self.ctx
        run_id = ctx.run_id
        assert run_id is not None
        while True:
            try:
                async with ctx.maker() as session, session.begin():
                    held = await repo.heartbeat(session, run_id, self.stats())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine heartbeat failed; trying again")
            else:
                if not held:
                    log.error("engine run %s lost its lease (declared dead by another engine): it stops dialling",
                              run_id)
                    self.fenced = True
                    ctx.stopping = True
                    self.request_stop()
                    return
            await asyncio.sleep(ctx.config.heartbeat_s)

    async def _command_listener(self) -> None:
        assert self.database_url is not None
        async for _payload in listen_raw(self.database_url, COMMAND_CHANNEL):
            self.ctx.post(WAKE)

    # --- stopping -----------------------------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Graceful stop: nothing new; previews returned; calls may finish within ``drain_s``; the rest are cut."""
        ctx = self.ctx
        ctx.stopping = True
        for c in ctx.campaigns.values():
            for call in [x for x in c.calls.values() if x.preview and x.state is A.queued]:
                self.placement.end_preview(call, "cancelled")
            c.hopper.clear()
        deadline = ctx.clock.now() + ctx.config.drain_s
        while ctx.attempts and ctx.clock.now() < deadline:
            # keep handling events while the calls end by themselves
            if ctx.inbox:
                ctx.done_work(await self._handle_batch(skip=(Stop,)))
                continue
            ctx.inbox_ready.clear()
            waiter = asyncio.ensure_future(ctx.inbox_ready.wait())
            sleeper = asyncio.ensure_future(ctx.clock.sleep(max(0.0, deadline - ctx.clock.now())))
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            sleeper.cancel()
        utc = ctx.clock.utcnow()
        for call in list(ctx.attempts.values()):
            if call.call_id is not None and call.state in (A.dialing, A.ringing, A.answered, A.connected):
                with contextlib.suppress(TelephonyError):
                    await ctx.telephony.hangup(call.call_id, "engine stopped")
            op = call.operator
            if call.state in (A.connected, A.wrap_up):
                if call.state is A.connected:
                    call.state = call_fsm.next_state(call.state, CE.hang_up)
                    if op is not None and op.state is S.in_call:
                        self.roster.transition(op, OE.hang_up)
                call.hangup_cause = call.hangup_cause or "engine stopped"
                if op is not None and op.state is S.wrap_up and op.call is call:
                    self.results.time_out(op)
                else:
                    self.results.finish(call, OutcomeCategory.answered, self.results.default_code(call.campaign),
                                        event=CE.complete)
            else:
                call.hangup_cause = "engine stopped"
                self.results.finish(call, OutcomeCategory.error, ctx.codes.get("error"), event=CE.fail)
        for op in ctx.operators.values():
            if op.state in (S.reserved, S.ringing):
                self.roster.transition(op, OE.release)
            if op.state is not S.offline:
                op.pending = None
                if op.state is S.in_call:
                    self.roster.transition(op, OE.hang_up)
                if op.state is S.wrap_up:
                    op.call = None
                    self.roster.transition(op, OE.wrap_up_timeout)
                self.roster.transition(op, OE.log_out)
        run_id = ctx.run_id
        assert run_id is not None

        async def stop_run(session: AsyncSession) -> None:
            await repo.stop_run(session, run_id, utc)

        ctx.bus.publish(EngineStopped(at=utc, run_id=run_id))
        ctx.journal.job("stop run", stop_run)

    # --- reporting ----------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """What the heartbeat stores for the monitoring API (and what tools print)."""
        ctx = self.ctx
        campaigns = {}
        utc = ctx.clock.utcnow()
        for c in ctx.campaigns.values():
            obs = self.placement.observe(c)
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
                # why it places no calls (only while none is dialling or ringing)
                "idle_reasons": [] if lines else reasons_now(c, ctx.operators, utc, c.idle_explained,
                                                             no_trunk=ctx.no_trunk_backoff_s > 0),
            }
        # a pause asked for during a call, applied when it ends (the floor shows it as pending)
        pending = {str(op.id): op.pending[1] or op.pending[0].value for op in ctx.operators.values()
                   if op.pending is not None and op.pending[0] is not S.offline}
        return {"run_id": ctx.run_id, "campaigns": campaigns, "operators_pending": pending,
                "placed": ctx.placed, "finished": ctx.finished,
                "operators_online": sum(1 for o in ctx.operators.values() if o.state is not S.offline),
                "journal_pending": ctx.journal.pending(), "events_published": ctx.bus.published}


def _sync(fn: Callable[[Any], None]) -> Callable[[Any], Awaitable[None]]:
    """A synchronous handler in the dispatch table."""

    async def handle(msg: Any) -> None:
        fn(msg)

    return handle


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT ask for a graceful stop (drain) instead of killing the process."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
