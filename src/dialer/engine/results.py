"""Results: completion codes, finished attempts and the safety auto-stop (a collaborator of the engine's actor, see
:mod:`dialer.engine.context`).

The operator's completion code — or the strategy's default code when ``wrap_up_s`` runs out — finishes the attempt,
and the journal applies :func:`~dialer.engine.outcome.apply_result`, which schedules what happens to the contact
next. Every attempt ends ``done`` exactly once, in one of the six outcome categories, with a completion code.
``auto_stop_errors`` error results in a row within ``auto_stop_window_s`` auto-pause the campaign until a
supervisor acknowledges (001).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.campaign import service as campaign_service
from dialer.engine import call_fsm
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.context import EngineContext
from dialer.engine.events import AttemptFinished, CampaignAutoPaused
from dialer.engine.journal import ENGINE_ACTOR
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.outcome import AttemptResult
from dialer.engine.state import CampaignRuntime, Completion, LiveCall, OperatorSlot
from dialer.exceptions import IllegalTransition
from dialer.models.enums import AttemptState, CampaignStatus, OperatorState, OutcomeCategory

__all__ = ["AttemptResults"]

log = logging.getLogger(__name__)

S = OperatorState
A = AttemptState


class AttemptResults:
    """Ends attempts: with the operator's code, by timeout, or by what the network said."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def default_code(self, c: CampaignRuntime) -> int | None:
        return c.cfg.default_completion_code_id or self.ctx.codes.get("answered")

    def time_out(self, op: OperatorSlot) -> None:
        """End ``op``'s wrap-up as if its time ran out: the campaign's default code (forced states, the stop)."""
        if op.handover:
            self.ctx.transfers.end_handover(op, Completion(0), timeout=True)
            return
        assert op.call is not None
        self.complete(op, Completion(self.default_code(op.call.campaign) or 0), timeout=True)

    async def on_wrap_timeout(self, target: tuple[OperatorSlot, LiveCall]) -> None:
        """The strategy's wrap-up time ran out: the default code is applied."""
        op, call = target
        if op.state is S.wrap_up and op.call is call and op.wrap_timer is not None:
            self.time_out(op)

    def complete(self, op: OperatorSlot, completion: Completion, *, timeout: bool) -> None:
        """The operator's completion code (or the timeout's default) ends the wrap-up and the attempt; after a
        handover (a transfer, a rescue) it ends only his wrap-up (engine/transfers.py)."""
        if op.handover:
            self.ctx.transfers.end_handover(op, completion, timeout=timeout)
            return
        call = op.call
        assert call is not None and op.state is S.wrap_up
        c = call.campaign
        code_id = completion.completion_code_id or self.default_code(c)
        code = c.plan.codes.get(code_id) if code_id is not None else None
        category = code.category if code is not None else OutcomeCategory.answered
        call.state = call_fsm.next_state(call.state, CE.complete)
        op.call = None
        self.finish(call, category, code_id, event=None, completion=completion, operator=op)
        self.ctx.roster.transition(op, OE.wrap_up_timeout if timeout else OE.complete)
        if timeout and self.ctx.config.after_wrap_up_timeout is S.paused and op.pending is None:
            op.pending = (S.paused, "wrap-up timeout")
        self.ctx.roster.after_free(op)

    def finish(self, call: LiveCall, category: OutcomeCategory, code_id: int | None, *, event: CE | None,
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
        utc = self.ctx.clock.utcnow()
        now = self.ctx.clock.now()
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
            code_id = self.ctx.codes.get("error", 0)
        result = AttemptResult(
            attempt_id=call.attempt_id, campaign_id=c.id, contact_id=call.contact_id,
            phone_id=call.candidate.phone_id, number=call.number, category=category, completion_code_id=code_id,
            answered_by_machine=call.answered_by == "machine",
            callback_at=completion.callback_at if completion else None,
            callback_operator_id=(op_for_callback.id if completion and completion.callback_personal
                                  and op_for_callback is not None else None),
            never_call=bool(completion and completion.never_call),
            comment=completion.comment if completion else "")
        self.ctx.journal.finish(call.attempt_id, columns, result, c.plan, utc)
        c.calls.pop(call.attempt_id, None)
        c.dialling.pop(call.attempt_id, None)
        c.answered.pop(call.attempt_id, None)
        self.ctx.attempts.pop(call.attempt_id, None)
        if call.call_id is not None:
            self.ctx.by_call_id.pop(call.call_id, None)
        self.ctx.finished += 1
        talked_to = operator or call.operator
        self.ctx.bus.publish(AttemptFinished(
            at=utc, attempt_id=call.attempt_id, campaign_id=c.id, contact_id=call.contact_id,
            operator_id=talked_to.id if talked_to is not None and call.connected_at is not None else None,
            category=category.value, completion_code_id=code_id, abandoned=call.abandoned,
            waited_s=None if (w := call.waited_s(now)) is None else round(w, 3)))
        # a reserved operator whose call never reached him is free again
        op = call.operator
        if op is not None and op.call is call and op.state in (S.reserved, S.ringing):
            op.call = None
            self.ctx.roster.transition(op, OE.release)
            self.ctx.roster.after_free(op)
        self._count_error(c, category, call)
        if call.connected_at is None:
            self.ctx.dirty.add(c.id)  # a line is free again (the pacer counts lines)

    def _count_error(self, c: CampaignRuntime, category: OutcomeCategory, call: LiveCall) -> None:
        """Safety auto-stop (001): N error results in a row within the window pause the campaign. Inbound calls
        say nothing about the trunk's outbound calls: they neither count nor clear the streak."""
        if call.inbound:
            return
        if category is not OutcomeCategory.error:
            c.errors.clear()
            return
        n = self.ctx.config.auto_stop_errors
        if self.ctx.stopping or n <= 0:
            return
        now = self.ctx.clock.now()
        c.errors.append(now)
        while len(c.errors) > n:
            c.errors.popleft()
        if len(c.errors) < n or now - c.errors[0] > self.ctx.config.auto_stop_window_s:
            return
        if c.status is not CampaignStatus.running or c.expected_status is not None:
            return
        reason = (f"auto-stop: {n} errors in a row within {now - c.errors[0]:.0f} s "
                  f"(last: {call.hangup_cause or 'error'})")
        c.expected_status = CampaignStatus.auto_paused
        c.expected_until = time.monotonic() + 30.0
        c.errors.clear()
        utc = self.ctx.clock.utcnow()
        cid = c.id

        async def pause(session: AsyncSession) -> None:
            session.info["actor"] = ENGINE_ACTOR
            try:
                await campaign_service.auto_pause(session, cid, reason)
            except IllegalTransition:
                return
            self.ctx.bus.publish(CampaignAutoPaused(at=utc, campaign_id=cid, reason=reason))

        self.ctx.journal.job(f"auto-pause campaign {cid}", pause, after=self.ctx.wake)
        for pcall in [x for x in c.calls.values() if x.preview and x.state is A.queued]:
            self.ctx.placement.end_preview(pcall, "cancelled")
        c.hopper.clear()
