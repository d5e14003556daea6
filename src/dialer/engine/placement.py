"""Placement: how many calls to place, to whom, and placing them (a collaborator of the engine's actor, see
:mod:`dialer.engine.context`).

Per running campaign, after every batch of messages that changed something, the pacer gets an
:class:`~dialer.engine.pacing.Observation` of the campaign's operators and calls (as the pacing benchmark feeds it),
says how many calls to place, and that many candidates are taken from the campaign's hopper. Each call's attempt row
is inserted — committed — *before* the call is placed: the partial unique indexes refuse a second live attempt on a
contact or a number (that candidate is skipped), the INSERT refuses a number on a DNC list, and crash recovery finds
every placed call. Progressive, preview and personal-callback calls reserve their operator when dialled (an answer
always finds him: 0 % abandoned by construction); predictive and fixed-lines calls get one on answer. A preview
waits ``queued`` for the operator to confirm or skip (or for its time to run out). Manual calls
(:mod:`dialer.engine.manual`) are checked there and placed here.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping
from typing import Any

from dialer.engine import call_fsm, manual
from dialer.engine import repository as repo
from dialer.engine.assign import eligible, move
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.context import EngineContext, TimerKind
from dialer.engine.events import CallPlaced, PreviewEnded, PreviewStarted
from dialer.engine.media import record_drawn
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.pacing import Observation
from dialer.engine.selection import Candidate
from dialer.engine.state import CampaignRuntime, LiveCall, OperatorSlot
from dialer.models.enums import AttemptState, DialMode, OperatorState, OutcomeCategory
from dialer.telephony.base import Originate, TelephonyError, TrunkUnavailable

__all__ = ["CallPlacement"]

log = logging.getLogger(__name__)

#: The longest wait between two tries of the trunks while none takes calls.
NO_TRUNK_MAX_WAIT_S = 30.0

S = OperatorState
A = AttemptState


class CallPlacement:
    """Decides, picks, inserts and originates; runs previews and manual calls."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        #: Draws which calls of a 'percent' campaign are recorded.
        self._rng = random.Random(ctx.config.seed)

    async def decide_dirty(self) -> None:
        """After each batch: every campaign whose picture changed decides again, higher priority first."""
        if not self.ctx.dirty:
            return
        dirty, self.ctx.dirty = self.ctx.dirty, set()
        # higher priority first: they get the shared free operators first
        for c in sorted((self.ctx.campaigns[i] for i in dirty if i in self.ctx.campaigns), key=lambda x: -x.priority):
            await self._decide(c)

    def observe(self, c: CampaignRuntime) -> Observation:
        """What the campaign's pacer sees now (as the pacing benchmark builds it)."""
        now = self.ctx.clock.now()
        logged = ready = in_call = wrap = 0
        talk: list[float] = []
        wraps: list[float] = []
        for op_id in c.members:
            op = self.ctx.operators.get(op_id)
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
        if self.ctx.stopping or not c.dialing:
            return
        self.ctx.control.maybe_refill(c)
        if self.ctx.clock.now() < self.ctx.no_trunk_until:
            return  # no trunk takes calls: reserve nobody, insert nothing (#12)
        obs = self.observe(c)
        n = c.pacer.decide(obs)
        if n <= 0:
            return
        if self.ctx.no_trunk_backoff_s:
            n = 1  # the trunks were down: one call tries them before the pacer's batch
        cfg = c.cfg
        if cfg.max_concurrent_calls is not None:
            n = min(n, cfg.max_concurrent_calls - len(c.calls))
        if c.mode is DialMode.predictive:
            ratio = float(cfg.dial_params.get("max_ratio", 3.0))
            operators = self.ctx.operators
            working = sum(1 for i in c.members if (o := operators.get(i)) and o.state not in (S.offline, S.paused))
            n = min(n, math.floor(ratio * max(1, working)) - obs.calls_dialling - obs.calls_waiting)
        if n <= 0:
            return
        picks = self._pick(c, n)
        self.ctx.control.maybe_refill(c)
        if not picks:
            return
        if c.mode is DialMode.preview:
            await self._start_previews(c, picks)
        else:
            placed = await self._place(c, picks)
            if placed and since is not None:
                self.ctx.decision_ms.append((time.perf_counter() - since) * 1000.0)

    def _pick(self, c: CampaignRuntime, n: int) -> list[tuple[Candidate, OperatorSlot | None]]:
        """Up to ``n`` candidates with, where the call needs one now, the operator reserved for it."""
        reserve_all = c.mode in (DialMode.progressive, DialMode.preview)
        operators = self.ctx.operators
        free = [operators[i] for i in c.members if i in operators and operators[i].state is S.ready]
        logged = [operators[i] for i in c.members if i in operators and operators[i].state not in (S.offline, S.paused)]
        taken: set[int] = set()
        servable: dict[tuple[int | None, int | None, int | None], bool] = {}
        live = {call.contact_id for call in self.ctx.attempts.values()}

        def usable(cand: Candidate) -> Any:
            if cand.contact_id in live:
                return None
            if cand.operator_id is not None:  # a personal callback: only his operator, and only when free
                op = self.ctx.operators.get(cand.operator_id)
                if (op is None or op.state is not S.ready or op.id in taken or not eligible(op, c, cand)):
                    return None
                taken.add(op.id)
                return op
            if reserve_all:
                ops = [o for o in free if o.id not in taken and eligible(o, c, cand)]
                op = self.ctx.chooser.choose(ops)
                if op is None:
                    return None
                taken.add(op.id)
                return op
            key = (cand.skill_id, cand.min_skill_level, cand.pool_id)
            if key not in servable:  # someone logged in could take it on answer
                servable[key] = any(eligible(o, c, cand) for o in logged)
            return True if servable[key] else None

        picks = c.hopper.take(n, usable, scan=n + 200, now_utc=self.ctx.clock.utcnow())
        return [(cand, found if isinstance(found, OperatorSlot) else None) for cand, found in picks]

    async def _insert(self, c: CampaignRuntime, picks: list[tuple[Candidate, OperatorSlot | None]],
                      state: AttemptState) -> list[LiveCall]:
        """Insert the attempts (committed) and make their live calls; candidates refused by the database drop out."""
        utc = self.ctx.clock.utcnow()
        rows = []
        callers: dict[int, str | None] = {}
        for cand, op in picks:
            callers[cand.contact_id] = caller = c.next_caller_id()
            rows.append({
                "campaign_id": c.id, "contact_id": cand.contact_id, "phone_id": cand.phone_id,
                "selection_id": cand.selection_id, "callback_id": cand.callback_id,
                "operator_id": op.id if (op is not None and state is A.queued) else None,
                "engine_run_id": self.ctx.run_id, "number": cand.number, "caller_id": caller, "state": state.value,
                "queued_at": utc, "dialed_at": utc if state is A.dialing else None, "hangup_cause": "",
                "comment": "",
            })
        try:
            ids = await self.ctx.commit_now(lambda db: repo.insert_attempts(db, rows))
        except Exception:
            # a row the database refuses for another reason (a contact deleted meanwhile): one by one
            log.warning("attempt batch refused; inserting one by one", exc_info=True)
            ids = {}
            for row in rows:
                try:
                    async with self.ctx.maker() as session, session.begin():
                        ids.update(await repo.insert_attempts(session, [row]))
                except Exception:
                    log.warning("attempt for contact %s refused", row["contact_id"], exc_info=True)
        calls = []
        for cand, op in picks:
            attempt_id = ids.get(cand.contact_id)
            if attempt_id is None:
                self.ctx.skipped_candidates += 1  # the contact or its number is being called, or the number is in DNC
                continue
            call = LiveCall(attempt_id=attempt_id, campaign=c, candidate=cand, caller_id=callers[cand.contact_id],
                            state=state, queued_utc=utc, operator=op, reserved=op is not None)
            c.calls[attempt_id] = call
            self.ctx.attempts[attempt_id] = call
            if op is not None:
                op.call = call
                move(op, c, self.ctx.campaigns)
                self.ctx.roster.transition(op, OE.reserve)
            calls.append(call)
        return calls

    async def _place(self, c: CampaignRuntime, picks: list[tuple[Candidate, OperatorSlot | None]]) -> int:
        calls = await self._insert(c, picks, A.dialing)
        for call in calls:
            await self.originate(call, requeue=True)
        return len(calls)

    async def originate(self, call: LiveCall, *, requeue: bool = False) -> None:
        """Place the call; ``requeue``: a call the driver cannot place for want of a trunk (:class:`TrunkUnavailable`)
        never happened (:meth:`_not_placed`) rather than ending as an error."""
        c = call.campaign
        call.placed_at = self.ctx.clock.now()
        try:
            # the campaign's media settings (engine/media.py)
            call.recorded = record_drawn(c.cfg.record_mode, c.cfg.record_percent, self._rng)
            call_id = await self.ctx.telephony.originate(Originate(
                number=call.number, caller_id=call.caller_id, answer_timeout_s=float(c.cfg.answer_timeout_s),
                variables={"attempt_id": str(call.attempt_id), "campaign_id": str(c.id)},
                record=call.recorded, detect_machine=c.cfg.amd_enabled,
                machine_message=c.cfg.amd_message if c.cfg.amd_enabled else None))
        except TelephonyError as err:
            call.hangup_cause = str(err) or type(err).__name__
            if requeue and isinstance(err, TrunkUnavailable):
                self._not_placed(call)
                return
            self.ctx.results.finish(call, OutcomeCategory.error, self.ctx.codes.get("error"), event=CE.fail)
            return
        call.call_id = call_id
        self.ctx.no_trunk_backoff_s = 0.0
        self.ctx.by_call_id[call_id] = call
        if not call.reserved:
            c.dialling[call.attempt_id] = call.placed_at
        self.ctx.placed += 1
        c.placed += 1
        self.ctx.journal.attempt(call.attempt_id, call_id=str(call_id))
        self.ctx.bus.publish(CallPlaced(at=call.queued_utc, attempt_id=call.attempt_id, campaign_id=c.id,
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
        self.ctx.attempts.pop(call.attempt_id, None)
        self.ctx.journal.delete_queued(call.attempt_id)
        c.hopper.clear()
        now = self.ctx.clock.now()
        c.refill_empty_at = now
        # while no trunk takes calls nothing is placed, and operators are not reserved and released in a loop:
        # the wait doubles from the refill back-off up to NO_TRUNK_MAX_WAIT_S, and then a single call probes
        ctx = self.ctx
        ctx.no_trunk_backoff_s = min(NO_TRUNK_MAX_WAIT_S, max(ctx.config.refill_backoff_s, 2 * ctx.no_trunk_backoff_s))
        ctx.no_trunk_until = now + ctx.no_trunk_backoff_s
        op = call.operator
        if op is not None and op.call is call:
            op.call = None
            if op.state is S.reserved:
                self.ctx.roster.transition(op, OE.release)
                self.ctx.roster.after_free(op)

    async def _start_previews(self, c: CampaignRuntime, picks: list[tuple[Candidate, OperatorSlot | None]]) -> None:
        calls = await self._insert(c, picks, A.queued)
        seconds = float(c.cfg.dial_params.get("preview_seconds", 10))
        for call in calls:
            call.preview = True
            assert call.operator is not None
            async with self.ctx.maker() as session:
                card = await repo.contact_card(session, call.contact_id, campaign_id=c.id, history=5)
            call.timer, _ = self.ctx.timer(seconds, TimerKind.preview, call)
            self.ctx.bus.publish(PreviewStarted(at=self.ctx.clock.utcnow(), operator_id=call.operator.id,
                                                campaign_id=c.id, attempt_id=call.attempt_id,
                                                contact_id=call.contact_id, number=call.number,
                                                preview_seconds=seconds, card=card))

    async def dial_preview(self, call: LiveCall, how: str) -> None:
        if call.state is not A.queued or call.finished:
            return
        if call.timer is not None:
            call.timer.cancel()
        utc = self.ctx.clock.utcnow()
        closes = call.candidate.closes_at
        # committed before the call is placed, like an insert: recovery must find every placed call; the number is
        # checked against DNC in the same statement, and the window once more (the operator may have read long)
        if (closes is not None and closes <= utc) or not await self.ctx.commit_now(
                lambda db: repo.start_dialing(db, call.attempt_id, utc)):
            self.end_preview(call, "cancelled")
            return
        call.state = call_fsm.next_state(call.state, CE.dial)
        assert call.operator is not None
        self.ctx.bus.publish(PreviewEnded(at=utc, operator_id=call.operator.id, campaign_id=call.campaign.id,
                                      attempt_id=call.attempt_id, how=how))
        await self.originate(call)

    def end_preview(self, call: LiveCall, how: str) -> None:
        """A preview that will not be dialled (skipped, cancelled): the attempt never happened."""
        if call.timer is not None:
            call.timer.cancel()
        c = call.campaign
        call.finished = True
        c.calls.pop(call.attempt_id, None)
        self.ctx.attempts.pop(call.attempt_id, None)
        self.ctx.journal.delete_queued(call.attempt_id)
        op = call.operator
        if op is not None and op.call is call:
            op.call = None
            self.ctx.bus.publish(PreviewEnded(at=self.ctx.clock.utcnow(), operator_id=op.id, campaign_id=c.id,
                                          attempt_id=call.attempt_id, how=how))
            if op.state is S.reserved:
                self.ctx.roster.transition(op, OE.release)
                self.ctx.roster.after_free(op)

    # --- manual dial ---------------------------------------------------------------------------------------------
    async def manual_dial(self, op: OperatorSlot, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a ``manual_dial`` command for ``op``: checked and inserted by :mod:`dialer.engine.manual`, then
        placed like any other call."""
        call = await manual.prepare(self.ctx, op, payload)
        await self.originate(call)
        return {"ok": True, "attempt_id": call.attempt_id, "number": call.number, "contact_id": call.contact_id}

    async def on_preview_timeout(self, call: LiveCall) -> None:
        """The preview time ran out: the call is placed."""
        if call.state is A.queued and not call.finished:
            await self.dial_preview(call, "timeout")

