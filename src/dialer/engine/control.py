"""Control: campaign status, schedules, pacers, hopper refill and finishing (a collaborator of the engine's actor,
see :mod:`dialer.engine.context`).

Campaign statuses are read every tick (changes by the API take effect within a second); a draft whose ``start_at``
has come is started; outside the schedule (:func:`~dialer.engine.selection.campaign_open`) nothing new is dialled;
pause stops new calls; stop also cancels its ringing calls and previews and releases its operators (000 §2.23); a
finite campaign finishes when nothing is left to dial and nothing is in flight.

Each running campaign has an in-memory hopper of candidates, refilled in batches by
:func:`~dialer.engine.selection.fill_hopper` beside the actor; a refill of a nearly empty hopper counts as engine
work (virtual time waits for it).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.campaign import service as campaign_service
from dialer.campaign.status import Action
from dialer.engine import repository as repo
from dialer.engine.assign import allocate
from dialer.engine.context import EngineContext, FinishChecked, IdleExplained, Refilled
from dialer.engine.events import CampaignFinished, CampaignScheduleChanged, CampaignStatusChanged
from dialer.engine.idle import EXPLAIN_EVERY_S, explain_empty, needs_explaining
from dialer.engine.journal import ENGINE_ACTOR
from dialer.engine.pacing import FixedLinesPacer, Pacer, PredictivePacer, PreviewPacer, ProgressivePacer
from dialer.engine.selection import CampaignPlan, campaign_open, fill_hopper, load_plan, work_left
from dialer.engine.state import CampaignRuntime, Hopper, LiveCall
from dialer.exceptions import DialerError, IllegalTransition
from dialer.models.enums import AttemptState, CampaignKind, CampaignStatus, DialMode
from dialer.telephony.base import UnknownCall

__all__ = ["CampaignControl", "make_pacer_for"]

log = logging.getLogger(__name__)

A = AttemptState


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


class CampaignControl:
    """Keeps the engine's campaigns in step with the database and their hoppers filled."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        #: Campaigns whose scheduled start was refused (not runnable), with the start time that was tried.
        self.start_refused: dict[int, datetime | None] = {}
        # wall-clock deadlines: statuses, configuration and the roster are changed by people in real time
        self._next_poll = 0.0
        self._next_config = 0.0
        self._next_roster = 0.0

    def started(self) -> None:
        """The engine has started: the first periodic reads are one period away."""
        wall = time.monotonic()
        self._next_roster = wall + self.ctx.config.roster_reload_s
        self._next_config = wall + self.ctx.config.config_reload_s
        self._next_poll = wall + self.ctx.config.control_poll_s

    def wake(self) -> None:
        self.ctx.wake()

    async def poll(self, *, force: bool = False) -> None:
        """Every ``control_poll_s`` (or at once when ``force``d): roster, due drafts, statuses, commands."""
        wall = time.monotonic()
        if not force and wall < self._next_poll:
            return
        self._next_poll = wall + self.ctx.config.control_poll_s
        if force or wall >= self._next_roster:
            self._next_roster = wall + self.ctx.config.roster_reload_s
            await self.ctx.roster.reload()
        reload = force or wall >= self._next_config
        if reload:
            self._next_config = wall + self.ctx.config.config_reload_s
        await self._start_due_campaigns()
        await self._refresh_statuses(reload=reload)
        await self.ctx.roster.load_commands()
        if force:
            self.ctx.dirty.update(self.ctx.campaigns)

    async def _start_due_campaigns(self) -> None:
        """Campaigns in draft whose launch time (``start_at``, 000 §12.1) has come are started, as by the API's
        start action (the status machine, the runnability check, the audit entry as the engine). One that is not
        runnable stays in draft; it is tried again only after its start time is changed."""
        utc = self.ctx.clock.utcnow()
        async with self.ctx.maker() as session:
            due = [(cid, at) for cid, at in await repo.due_drafts(session, utc)
                   if self.start_refused.get(cid) != at]
        for cid, at in due:
            try:
                async with self.ctx.maker() as session, session.begin():
                    session.info["actor"] = ENGINE_ACTOR
                    await campaign_service.change_status(session, cid, Action.start, "start time reached")
            except DialerError as err:
                self.start_refused[cid] = at
                log.warning("campaign %s was not started at its start time: %s", cid, err.detail)

    async def tick(self) -> None:
        """Schedules opened or closed, hoppers expired, finished campaigns noticed, operators allocated."""
        now = self.ctx.clock.now()
        await self.poll()
        utc = self.ctx.clock.utcnow()
        for c in list(self.ctx.campaigns.values()):
            if c.status in (CampaignStatus.stopped, CampaignStatus.finished) and not c.calls:
                del self.ctx.campaigns[c.id]  # its last call is over: nothing keeps it
                continue
            was = c.open
            c.open = campaign_open(c.plan, utc)
            if was != c.open:
                self.ctx.bus.publish(CampaignScheduleChanged(at=utc, campaign_id=c.id, open=c.open))
                if not c.open:
                    c.hopper.clear()
            if c.hopper.expire(now):
                c.refill_empty_at = None  # what expired is likely dialable again: ask at once
            for contact_id, until in list(c.skipped.items()):
                if until <= now:
                    del c.skipped[contact_id]
            self._maybe_check_finish(c)
            self._maybe_explain(c)
        allocate(self.ctx.operators.values(), list(self.ctx.campaigns.values()))
        self.ctx.dirty.update(self.ctx.campaigns)

    def _maybe_explain(self, c: CampaignRuntime) -> None:
        """Ask the database why the hopper is empty, at most every :data:`EXPLAIN_EVERY_S` (for the supervisor)."""
        if not needs_explaining(c):
            c.idle_explained = []
            c.idle_explained_at = -1e18
            return
        now = self.ctx.clock.now()
        if c.idle_explaining or now - c.idle_explained_at < EXPLAIN_EVERY_S:
            return
        c.idle_explaining = True
        c.idle_explained_at = now
        plan, utc, cid = c.plan, self.ctx.clock.utcnow(), c.id

        async def explain() -> None:
            try:
                async with self.ctx.maker() as session:
                    reasons = await explain_empty(session, plan, utc)
            except Exception:
                log.exception("explaining why campaign %s has nothing to dial failed", cid)
                reasons = []
            self.ctx.post(IdleExplained(cid, reasons))

        self.ctx.side.spawn(explain(), name=f"idle explanation {cid}")

    def on_idle_explained(self, msg: IdleExplained) -> None:
        c = self.ctx.campaigns.get(msg.campaign_id)
        if c is None:
            return
        c.idle_explaining = False
        c.idle_explained = msg.reasons if needs_explaining(c) else []

    async def load(self) -> None:
        """The running campaigns, at start."""
        await self._refresh_statuses(reload=True)

    async def _refresh_statuses(self, *, reload: bool) -> None:
        """Follow campaign statuses in the database (the API changes them) and keep runtimes in step."""
        async with self.ctx.maker() as session:
            statuses = await repo.campaign_statuses(session, self.ctx.campaigns)
            new_ids = [cid for cid, (status, _) in statuses.items()
                       if status is CampaignStatus.running and cid not in self.ctx.campaigns]
            load_ids = list(self.ctx.campaigns) + new_ids if reload else new_ids
            configs = await repo.campaign_configs(session, load_ids)
            plans: dict[int, CampaignPlan] = {}
            for cid in load_ids:
                if cid in configs:
                    try:
                        plans[cid] = await load_plan(session, cid)
                    except LookupError:
                        log.warning("campaign %s vanished while loading", cid)
        utc = self.ctx.clock.utcnow()
        for cid in new_ids:
            if cid in configs and cid in plans:
                cfg = configs[cid]
                c = CampaignRuntime(cfg=cfg, plan=plans[cid], pacer=await self._seeded_pacer(cfg),
                                    hopper=Hopper(self.ctx.config.hopper_ttl_s), status=CampaignStatus.running)
                c.open = campaign_open(c.plan, utc)
                self.ctx.campaigns[cid] = c
                self.ctx.bus.publish(CampaignStatusChanged(at=utc, campaign_id=cid, status=c.status.value,
                                                       previous=None, reason=cfg.status_reason))
        if reload:
            for cid, c in self.ctx.campaigns.items():
                if cid in configs and cid in plans and cid not in new_ids:
                    old = c.cfg
                    c.cfg, c.plan = configs[cid], plans[cid]
                    if old.version() != c.cfg.version():
                        # a new mode or cap: a new pacer, which starts from the campaign's recorded abandon rate
                        c.pacer = await self._seeded_pacer(c.cfg)
        for cid, c in list(self.ctx.campaigns.items()):
            status, reason = statuses.get(cid, (CampaignStatus.stopped, "deleted"))
            if c.expected_status is not None:
                if status is CampaignStatus.running and time.monotonic() < c.expected_until:
                    continue  # our own auto-pause or finish is not committed yet
                c.expected_status = None  # committed, or refused (a user acted first): the database decides
            if status is not c.status:
                self._set_status(c, status, reason)
            if c.status in (CampaignStatus.stopped, CampaignStatus.finished) and not c.calls:
                del self.ctx.campaigns[cid]
        if new_ids:
            allocate(self.ctx.operators.values(), list(self.ctx.campaigns.values()))

    def _pacer(self, cfg: repo.CampaignConfig) -> Pacer:
        return make_pacer_for(cfg.dial_mode, cfg.dial_params, float(cfg.abandon_cap_pct), float(cfg.operator_wait_s))

    async def _seeded_pacer(self, cfg: repo.CampaignConfig) -> Pacer:
        """The campaign's pacer; a predictive one is seeded from the attempts table, so that its whole-campaign and
        rolling-window abandon rates survive an engine restart or a configuration change."""
        pacer = self._pacer(cfg)
        if isinstance(pacer, PredictivePacer):
            try:
                async with self.ctx.maker() as session:
                    clock = self.ctx.clock
                    history = await repo.pacing_history(
                        session, cfg.id, now=clock.now(), now_utc=clock.utcnow(), window_s=pacer.window_s,
                        grace_s=float(cfg.operator_wait_s))
            except Exception:
                log.exception("reading the pacing history of campaign %s failed; its pacer starts afresh", cfg.id)
            else:
                pacer.seed(history)
        return pacer

    def _set_status(self, c: CampaignRuntime, status: CampaignStatus, reason: str) -> None:
        previous = c.status
        c.status = status
        utc = self.ctx.clock.utcnow()
        self.ctx.bus.publish(CampaignStatusChanged(at=utc, campaign_id=c.id, status=status.value,
                                               previous=previous.value, reason=reason))
        if status is CampaignStatus.running:
            self.ctx.dirty.add(c.id)
            return
        # paused, auto-paused, stopped, finished: nothing new; previews not yet placed are given back
        for call in [x for x in c.calls.values() if x.preview and x.state is A.queued]:
            self.ctx.placement.end_preview(call, "cancelled")
        c.hopper.clear()
        if status in (CampaignStatus.stopped, CampaignStatus.finished):
            # 000 §2.23: the campaign lets its operators go; calls still ringing are cancelled
            for call in list(c.calls.values()):
                if call.state in (A.dialing, A.ringing) and call.call_id is not None:
                    call.hangup_by = "dialer"
                    self.ctx.spawn(self.hangup_quietly(call, "campaign stopped"), "cancel call")
            allocate(self.ctx.operators.values(), list(self.ctx.campaigns.values()))

    async def hangup_quietly(self, call: LiveCall, cause: str) -> None:
        if call.call_id is None:
            return
        with contextlib.suppress(UnknownCall):
            await self.ctx.telephony.hangup(call.call_id, cause)

    def _hopper_target(self, c: CampaignRuntime) -> tuple[int, int]:
        """(refill below, fill up to): about ``hopper_per_operator`` candidates per operator of the campaign."""
        ops, config = max(1, len(c.members)), self.ctx.config
        low = min(config.hopper_max, max(config.hopper_min, config.hopper_per_operator * ops))
        return low, min(config.hopper_max, 2 * low)

    def maybe_refill(self, c: CampaignRuntime) -> None:
        if not c.dialing or self.ctx.stopping:
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
        now = self.ctx.clock.now()
        if c.refill_empty_at is not None and now - c.refill_empty_at < self.ctx.config.refill_backoff_s:
            return
        c.refilling = True
        # (a manual call to a number outside the lists has no contact: engine/manual.py)
        exclude = (set(c.hopper.contact_ids) | {x.contact_id for x in c.calls.values() if x.contact_id is not None}
                   | set(c.skipped))
        plan, utc, limit = c.plan, self.ctx.clock.utcnow(), high - len(c.hopper)

        async def refill() -> None:
            try:
                async with self.ctx.maker() as session, session.begin():
                    found = await fill_hopper(session, plan, utc, limit, exclude)
            except Exception:
                log.exception("refilling the hopper of campaign %s failed", c.id)
                found = []
            # the actor releases a counted refill when it takes the result (it may be counted until then)
            self.ctx.post(Refilled(c, found))

        if urgent:
            self._count_refill(c)
        self.ctx.side.spawn(refill(), name=f"hopper refill {c.id}")

    def _count_refill(self, c: CampaignRuntime) -> None:
        c.refill_counted = True
        self.ctx.count_work()

    def on_refilled(self, msg: Refilled) -> None:
        c = msg.campaign
        c.refilling = False
        if c.refill_counted:
            c.refill_counted = False
            self.ctx.done_work(1)
        if self.ctx.campaigns.get(c.id) is not c or not c.dialing:
            return
        live = {x.contact_id for x in c.calls.values()}
        fresh = [x for x in msg.candidates if x.contact_id not in live and x.contact_id not in c.skipped]
        c.hopper.extend(self.ctx.clock.now(), fresh)
        c.refill_empty_at = self.ctx.clock.now() if not msg.candidates else None
        self.ctx.dirty.add(c.id)

    def _maybe_check_finish(self, c: CampaignRuntime) -> None:
        now = self.ctx.clock.now()
        if (c.cfg.kind is not CampaignKind.finite or not c.dialing or c.calls or len(c.hopper) or c.refilling
                or c.refill_empty_at is None or c.finish_checking
                or now - c.last_finish_check < self.ctx.config.finish_check_s):
            return
        c.finish_checking = True
        c.last_finish_check = now
        plan, utc = c.plan, self.ctx.clock.utcnow()

        async def check() -> None:
            try:
                async with self.ctx.maker() as session:
                    left = await work_left(session, plan, utc)
            except Exception:
                log.exception("checking whether campaign %s is finished failed", c.id)
                left = True
            self.ctx.post(FinishChecked(c.id, not left))

        self.ctx.spawn(check(), f"finish check {c.id}")

    def on_finish_checked(self, msg: FinishChecked) -> None:
        c = self.ctx.campaigns.get(msg.campaign_id)
        if c is None:
            return
        c.finish_checking = False
        if not msg.exhausted or not c.dialing or c.calls or len(c.hopper):
            return
        c.expected_status = CampaignStatus.finished
        c.expected_until = time.monotonic() + 30.0
        utc = self.ctx.clock.utcnow()
        cid = c.id

        async def finish(session: AsyncSession) -> None:
            session.info["actor"] = ENGINE_ACTOR
            try:
                await campaign_service.finish(session, cid)
            except IllegalTransition:
                return
            self.ctx.bus.publish(CampaignFinished(at=utc, campaign_id=cid))

        self.ctx.journal.job(f"finish campaign {cid}", finish, after=self.ctx.wake)
