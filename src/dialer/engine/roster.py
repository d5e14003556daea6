"""Roster: the operators' state machine applied, and the commands operators and supervisors send (a collaborator of
the engine's actor, see :mod:`dialer.engine.context`).

Every change of an operator's state goes through :meth:`OperatorRoster.transition`: the table of
:mod:`dialer.engine.operator_fsm` decides, the period is journalled (one ``operator_state_log`` row per period), the
world is told. Forced changes and "pause after this call" are sequences of table events composed here. Commands
arrive as rows of ``engine_commands`` (the API) or in-process (:meth:`dialer.engine.runner.Engine.submit`); each is
answered in the same journal unit as its effects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dialer.engine import operator_fsm
from dialer.engine import repository as repo
from dialer.engine.assign import allocate_one, in_pools, move
from dialer.engine.commands import Command, CommandKind
from dialer.engine.context import BUSY, CallIn, EngineContext
from dialer.engine.events import CommandFailed, OperatorStateChanged
from dialer.engine.operator_fsm import PHONE_OFFLINE
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.state import Completion, OperatorSlot
from dialer.exceptions import DialerError
from dialer.models.enums import AttemptState, OperatorState
from dialer.telephony.base import UnknownCall

__all__ = ["OperatorRoster"]

log = logging.getLogger(__name__)

S = OperatorState
A = AttemptState


class OperatorRoster:
    """The engine's operators: their transitions and the commands that drive them."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        #: Command ids taken from the queue and not yet marked processed by the journal.
        self._commands_seen: set[int] = set()

    async def reload(self) -> None:
        """Follow the operators table: new operators join, deactivated ones leave when free."""
        async with self.ctx.maker() as session:
            infos = await repo.roster(session)
        seen = set()
        for info in infos:
            seen.add(info.id)
            op = self.ctx.operators.get(info.id)
            if op is None:
                self.ctx.add_operator(info)
                continue
            if op.info.endpoint != info.endpoint:
                self.ctx.by_endpoint.pop(op.endpoint, None)
                self.ctx.by_endpoint[info.endpoint] = op
            op.info = info
            if not info.is_active and op.state in (S.ready, S.paused):
                self.transition(op, OE.log_out)
        for op_id, op in list(self.ctx.operators.items()):
            if op_id not in seen and op.state in (S.ready, S.paused, S.offline):
                if op.state is not S.offline:
                    self.transition(op, OE.log_out)
                self.ctx.by_endpoint.pop(op.endpoint, None)
                del self.ctx.operators[op_id]

    def transition(self, op: OperatorSlot, event: OE, *, reason: str = "") -> None:
        """Apply one operator event: the table decides, the period is recorded, the world is told."""
        previous = op.state
        new = operator_fsm.next_state(previous, event)
        now = self.ctx.clock.now()
        utc = self.ctx.clock.utcnow()
        if previous is S.wrap_up:
            camp = self.ctx.campaigns.get(op.campaign_id) if op.campaign_id is not None else None
            inbound = getattr(self.ctx, "inbound", None)
            if inbound is not None and inbound.wrapped_up(op):
                camp = None  # an inbound conversation's wrap-up is no sample of the outbound pacer
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
        self.ctx.journal.period(repo.OperatorPeriod(op.id, new, op.reason, campaign_id,
                                                call.attempt_id if call is not None else None, utc))
        self.ctx.bus.publish(OperatorStateChanged(at=utc, operator_id=op.id, state=new.value, previous=previous.value,
                                              reason=op.reason, campaign_id=campaign_id,
                                              attempt_id=call.attempt_id if call is not None else None))
        if new is S.ready:
            for c in self.ctx.campaigns.values():
                if op.id in c.members or op.campaign_id == c.id or (
                        op.campaign_id is None and in_pools(op, c)):
                    if c.free_since_perf is None:
                        c.free_since_perf = time.perf_counter()
                    self.ctx.dirty.add(c.id)
        for hook in self.ctx.hooks:
            try:
                hook(op, previous)
            except Exception:
                log.exception("operator hook failed")

    def after_free(self, op: OperatorSlot) -> None:
        """The operator just became free: apply a pending state; with his phone unreachable or unregistered, pause
        him ("phone offline", until it answers again); else serve the longest-waiting live customer."""
        if op.state is not S.ready:
            return
        if op.pending is not None:
            state, reason = op.pending
            op.pending = None
            if state is S.paused:
                self.transition(op, OE.pause, reason=reason)
                return
            if state is S.offline:
                self.transition(op, OE.log_out)
                return
        if op.endpoint in self.ctx.phones_down:
            self.transition(op, OE.pause, reason=PHONE_OFFLINE)
            return
        allocate_one(op, self.ctx.campaigns, self.ctx.operators)
        waiting = [x for x in self.ctx.calls.waiting_calls()
                   if self.ctx.calls.may_take(op, x)
                   and (x.requeued or x.campaign.id == op.campaign_id or op.campaign_id not in self.ctx.campaigns
                        or self.ctx.campaigns[op.campaign_id].priority <= x.campaign.priority)]
        if waiting:
            # transferred and rescued customers first (they were talking a moment ago), then inbound callers
            # (blended: they called us), then his own campaign, then by priority, then the longest wait
            own = op.campaign_id
            inbound = getattr(self.ctx, "inbound", None)
            waiting.sort(key=lambda x: (not x.requeued, not (inbound is not None and inbound.owns(x)),
                                        x.campaign.id != own, -x.campaign.priority, x.answered_at or 0.0))
            call = waiting[0]
            call.operator = op
            op.call = call
            move(op, call.campaign, self.ctx.campaigns)
            self.transition(op, OE.reserve)
            # connecting awaits the driver: the actor does it as its next piece of work
            self.ctx.post(CallIn(lambda: self.ctx.calls.connect(call), None))

    async def load_commands(self) -> None:
        rows = await self.ctx.commit_now(repo.pending_commands)
        for row in rows:
            if row.id in self._commands_seen:
                continue
            self._commands_seen.add(row.id)
            try:
                kind = CommandKind(row.kind)
            except ValueError:
                self.ctx.journal.command_done(row.id, {"ok": False, "error": f"unknown command {row.kind!r}"})
                continue
            if row.operator_id is None:
                self.ctx.journal.command_done(row.id, {"ok": False, "error": "the command names no operator"})
                continue
            # it stays "seen" until the journal has marked it processed, so a poll meanwhile skips it
            await self.apply_command(Command(kind, row.operator_id, row.payload, id=row.id))
        if len(self._commands_seen) > 10_000:  # old ids are processed in the database by now
            self._commands_seen = {i for i in self._commands_seen if i >= rows[0].id} if rows else set()

    async def apply_command(self, cmd: Command) -> dict[str, Any]:
        op = self.ctx.operators.get(cmd.operator_id)
        try:
            if op is None:
                raise DialerError(f"operator {cmd.operator_id} is not known to the engine (inactive or deleted)")
            result = await self._command(op, cmd)
        except DialerError as err:
            result = {"ok": False, "error": err.detail}
            self.ctx.bus.publish(CommandFailed(at=self.ctx.clock.utcnow(), command_id=cmd.id or 0,
                                           operator_id=cmd.operator_id, kind=cmd.kind.value, reason=err.detail))
        except (ValueError, TypeError, KeyError) as err:
            result = {"ok": False, "error": f"invalid {cmd.kind.value} command: {err}"}
        if op is not None and result.get("ok"):
            result.setdefault("state", op.state.value)
            result.setdefault("reason", op.reason)
            result.setdefault("pending", op.pending[0].value if op.pending else None)
        if cmd.id is not None:
            self.ctx.journal.command_done(cmd.id, result)
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
                self.ctx.results.time_out(op)
            elif op.state is S.reserved and op.call is not None and op.call.preview:
                self.ctx.placement.end_preview(op.call, "cancelled")
            return self._want(op, state, str(p.get("reason") or "supervisor"))
        if kind is CommandKind.release:
            if op.state is S.reserved and op.call is not None and op.call.preview:
                self.ctx.placement.end_preview(op.call, "cancelled")
            elif op.state is S.wrap_up and op.call is not None:
                op.pending = None
                self.ctx.results.time_out(op)
            elif op.state is S.paused:
                self.transition(op, OE.go_ready)
                self.after_free(op)
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
                await self.ctx.placement.dial_preview(call, "confirmed")
            else:
                call.campaign.skipped[call.contact_id] = self.ctx.clock.now() + 600.0
                self.ctx.placement.end_preview(call, "skipped")
            return {"ok": True}
        if kind is CommandKind.hangup and op.consulting is not None:
            # the consulted operator hangs up: the consultation ends, the customer stays with the first operator
            return await self.ctx.transfers.command(op, Command(CommandKind.consult_cancel, op.id, {}))
        if kind is CommandKind.hangup:
            call = op.call
            if call is None or call.call_id is None or call.state not in (A.dialing, A.ringing, A.answered,
                                                                           A.connected):
                raise DialerError("there is no call to hang up")
            call.hangup_by = "operator"
            with contextlib.suppress(UnknownCall):
                await self.ctx.telephony.hangup(call.call_id, "operator hung up")
            return {"ok": True}
        if kind is CommandKind.manual_dial:
            return await self.ctx.placement.manual_dial(op, p)
        if kind in (CommandKind.transfer, CommandKind.consult, CommandKind.consult_complete,
                    CommandKind.consult_cancel):
            return await self.ctx.transfers.command(op, cmd)
        raise DialerError(f"unknown command {kind}")

    def _want(self, op: OperatorSlot, state: OperatorState, reason: str) -> dict[str, Any]:
        """Move the operator to ready/paused/offline now, or after his current call."""
        if op.state in BUSY:
            if op.state is S.reserved and op.call is not None and op.call.preview:
                self.ctx.placement.end_preview(op.call, "cancelled")
            else:
                op.pending = None if state is S.ready else (state, reason)
                return {"ok": True, "pending": None if state is S.ready else state.value}
        if op.state is state and (state is not S.paused or op.reason == reason):
            return {"ok": True}
        if state is S.ready:
            self.transition(op, OE.go_ready)
            self.after_free(op)
        elif state is S.paused:
            self.transition(op, OE.pause, reason=reason)
        else:
            self.transition(op, OE.log_out)
        allocate_one(op, self.ctx.campaigns, self.ctx.operators)
        return {"ok": True}

    def _command_complete(self, op: OperatorSlot, p: Mapping[str, Any]) -> dict[str, Any]:
        call = op.call
        if call is None or op.state not in (S.in_call, S.wrap_up):
            raise DialerError("there is no call to complete: the operator is "
                              f"{op.state.value.replace('_', '-')}")
        if op.consulting is not None:
            raise DialerError("you are being consulted: the customer is not yours until the transfer is completed")
        if op.handover and op.state is S.wrap_up:
            # his wrap-up after a transfer: the code is optional and does not end the attempt (engine/transfers.py)
            raw = p.get("completion_code_id")
            code = int(raw) if raw else 0
            if code and code not in call.campaign.cfg.code_ids:
                raise DialerError(f"completion code {code} is not in the campaign's completion-code group")
            self.ctx.transfers.end_handover(op, Completion(code, comment=str(p.get("comment") or "")), timeout=False)
            return {"ok": True, "attempt_id": call.attempt_id, "handover": True}
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
        if completion.callback_at is not None and call.contact_id is None:
            # the engine dials callbacks of contacts only: one on a bare number would be kept and never dialled
            raise DialerError(f"{call.number} belongs to no contact of the campaign's lists: a callback on it could "
                              "never be dialled (add the number to a list first)")
        if op.state is S.in_call:
            op.pending_completion = completion  # applied when the conversation ends
            return {"ok": True, "applied": "at hang-up"}
        self.ctx.results.complete(op, completion, timeout=False)
        return {"ok": True, "attempt_id": call.attempt_id}
