"""Transfers and rescues: a connected customer handed from one operator to another (a collaborator of the engine's
actor, see :mod:`dialer.engine.context`; issue #12 §2, PBX-based dialers of 003 and 004).

Kinds (``call_transfers.kind``), ordered from the operator panel (the operator's own connected call), by a
supervisor from the floor (any connected call), or by the operator's phone itself (SIP REFER,
:class:`~dialer.telephony.base.TransferRequested`):

``operator`` (blind)
    The target must be ready (logged in, free, his phone up): he is reserved at once, the first operator's leg is
    released (``TransfersCalls.release``: the customer hears hold audio) and the customer is offered to him.
``pool`` / ``skill``
    The customer is released to wait, on hold audio, for the next free operator of the pool (or with the skill at
    the level asked), whatever campaign that operator works for; he is served before new calls and before inbound
    callers (:meth:`dialer.engine.calls.CallHandling.waiting_calls`).
``external``
    The customer goes to a number outside the call centre through the trunk (``TransfersCalls.transfer_external``).
    Allowed only with the permission ``transfers.external`` (the API checks the requesting user; a phone's REFER is
    allowed when the operator's user holds it). The DNC lists apply: a number on the campaign's DNC list or the
    global blacklist is never called by the dialer, whoever asks (003 treats transfers as calls placed by the
    switch), so such a transfer is refused. If the number does not answer, the customer waits again for any
    operator of the campaign.
``attended``
    ``consult``: the customer is put on hold audio and the target (ready) rings; once he answers the two operators
    talk. ``consult_complete`` hands the customer to him; ``consult_cancel`` (or the target declining, not answering,
    hanging up) ends the consultation and the first operator is back with the customer.
``rescue``
    The first operator's phone died mid-call (``EndpointEvent.phone_lost``): the driver put the customer on hold, and
    he is offered at once to another free eligible operator of the campaign.

What follows every handover: the attempt keeps its one row — the receiving operator gets the same attempt and contact
card, with the note "transferred from <operator>" and the first operator's comment (the workplace reads the attempt's
last transfer); the first operator goes to wrap-up. His completion code is optional there: his wrap-up ends with it,
or with nothing, and it does not finish the attempt (the last operator who talks to the customer sets the attempt's
code; no "transferred" system code, which would hide the real result). After an external transfer nobody else talks
to the customer: the first operator's code, if he set one, becomes the attempt's when the external call ends (the
default code otherwise). An operator rescued from a dead phone is kept out of "ready" ("phone offline") after his
wrap-up, as :mod:`dialer.engine.calls` does for any dead phone.

The customer waiting again is no new abandon (he talked to an operator: the 2-second rule and the pacer's abandon
count do not apply anew). If nobody takes him within the campaign's ``max_hold_s`` (else the inbound queue time,
``EngineConfig.inbound_queue_s``) he hears the callback message, a callback is booked for his contact and the attempt
ends with the system code ``transfer_callback``; if he hangs up while waiting, the attempt ends with the campaign's
default code (a conversation took place), the transfer's result ``abandoned``.

A blind target who does not take the offer (declines, does not answer, his phone fails) does not get the customer
back: the customer waits for any eligible operator of the campaign instead (the transfer's result ``failed``; the
first operator is in wrap-up by then, and returning the customer to him would block his next call unasked).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.auth.service import effective_permissions
from dialer.engine import call_fsm
from dialer.engine.assign import eligible, move
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.commands import Command, CommandKind
from dialer.engine.context import CallIn, EngineContext, TimerKind
from dialer.engine.events import CallTransferred
from dialer.engine.manual import normalize_number
from dialer.engine.operator_fsm import PHONE_OFFLINE
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.repository import dnc_lists_of
from dialer.engine.selection import not_in_dnc_lists
from dialer.engine.state import Completion, LiveCall, OperatorSlot, TransferLeg
from dialer.exceptions import DialerError
from dialer.models import Operator, OperatorPool, User
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from dialer.models.transfer import CallTransfer
from dialer.telephony.base import (
    CallEvent,
    EndpointEvent,
    EndpointEventKind,
    EndpointUnavailable,
    TelephonyError,
    TransferRequested,
    TrunkUnavailable,
    UnknownCall,
)

__all__ = ["CALLBACK_CODE", "EXTERNAL_PERMISSION", "TransferHandling"]

log = logging.getLogger(__name__)

S = OperatorState
A = AttemptState

#: The system code of a transferred or rescued customer nobody took in time (migration 0017_transfers).
CALLBACK_CODE = "transfer_callback"
#: The permission that allows transfers to external numbers.
EXTERNAL_PERMISSION = "transfers.external"
#: The endpoint name a driver reports for an external transfer's far end.
EXTERNAL_PREFIX = "external:"


class TransferHandling:
    """Carries out transfers and rescues (see the module docstring)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    # --- what calls.py and roster.py ask ----------------------------------------------------------------------
    def may_take(self, op: OperatorSlot, call: LiveCall) -> bool:
        """May ``op`` (ignoring his state) take the waiting ``call``? A transferred customer goes to the transfer's
        target; everybody else (and a customer whose blind target let him go) by the campaign's rules."""
        if op.id in call.missed_by or op.endpoint in self.ctx.phones_down or not op.info.is_active:
            return False
        leg = call.transfer
        if call.requeued and leg is not None and not leg.done:
            if leg.kind == "operator" and leg.to_operator_id not in call.missed_by:
                return op.id == leg.to_operator_id
            if leg.kind == "pool":
                return leg.to_pool_id in op.info.pools
            if leg.kind == "skill" and leg.to_skill_id is not None:
                return op.skill_level(leg.to_skill_id) >= leg.min_skill_level
        return eligible(op, call.campaign, call.candidate)

    def candidates(self, call: LiveCall) -> list[OperatorSlot] | None:
        """Free operators for a transferred customer with a target of its own (None: the campaign's usual ones)."""
        leg = call.transfer
        if not call.requeued or leg is None or leg.done or leg.kind not in ("operator", "pool", "skill"):
            return None
        if leg.kind == "operator" and leg.to_operator_id in call.missed_by:
            return None  # his target let him go: any operator of the campaign
        return [op for op in self.ctx.operators.values() if op.state is S.ready and self.may_take(op, call)]

    def waiting(self) -> list[LiveCall]:
        """Transferred and rescued customers waiting for an operator, longest waiting first."""
        out = [x for x in self.ctx.attempts.values()
               if x.requeued and x.state is A.answered and x.operator is None and not x.finished and not x.forced_cause
               and x.external is None]
        out.sort(key=lambda x: x.answered_at or 0.0)
        return out

    # --- commands ---------------------------------------------------------------------------------------------
    async def command(self, op: OperatorSlot, cmd: Command) -> dict[str, Any]:
        p = cmd.payload
        source = str(p.get("source") or "panel")
        requested_by = _int(p.get("requested_by"))
        self._check_attempt(op, _int(p.get("attempt_id")))
        if cmd.kind is CommandKind.transfer:
            return await self.transfer(op, p, source=source, requested_by=requested_by)
        if cmd.kind is CommandKind.consult:
            return await self.consult(op, _required_int(p, "to_operator_id"), comment=str(p.get("comment") or ""),
                                      source=source, requested_by=requested_by)
        if cmd.kind is CommandKind.consult_complete:
            return await self.consult_complete(op)
        if cmd.kind is CommandKind.consult_cancel:
            return await self.consult_cancel(op)
        raise DialerError(f"unknown transfer command {cmd.kind}")

    def _check_attempt(self, op: OperatorSlot, attempt_id: int | None) -> None:
        """A command names the attempt it is about (the API puts the call the requester saw): it is refused when the
        operator's current call is another one — a click as the call ends and auto-answer connects the next customer
        must not move that customer (and the audit log, which names the requested attempt, must tell the truth)."""
        if attempt_id is None:
            return
        current = op.call.attempt_id if op.call is not None else None
        if current != attempt_id:
            now = f"attempt {current}" if current is not None else "no call"
            raise DialerError(f"attempt {attempt_id} is not operator {op.info.name}'s current call (he has {now}): "
                              "nothing was transferred")

    def _connected_call(self, op: OperatorSlot) -> LiveCall:
        call = op.call
        if call is None or op.state is not S.in_call or call.state is not A.connected or call.operator is not op \
                or call.call_id is None:
            raise DialerError(f"operator {op.info.name} has no conversation to transfer (he is "
                              f"{op.state.value.replace('_', '-')})")
        if call.consult is not None:
            raise DialerError("a consultation is in progress: complete or cancel it first")
        if call.external is not None:
            raise DialerError("the customer is with an external number already")
        return call

    def _capability(self, name: str) -> Any:
        method = getattr(self.ctx.telephony, name, None)
        if not callable(method):
            raise DialerError("the telephony driver cannot transfer calls")
        return method

    def _ready_target(self, op: OperatorSlot, target_id: int) -> OperatorSlot:
        target = self.ctx.operators.get(target_id)
        if target is None or not target.info.is_active:
            raise DialerError(f"operator {target_id} is not known to the engine (inactive or deleted)")
        if target is op:
            raise DialerError("an operator cannot transfer a call to himself")
        if target.state is not S.ready:
            raise DialerError(f"operator {target.info.name} is {target.state.value.replace('_', '-')}, not ready: "
                              "transfer to a pool to queue the customer for the next free operator")
        if target.endpoint in self.ctx.phones_down:
            raise DialerError(f"the phone of operator {target.info.name} is offline")
        return target

    async def transfer(self, op: OperatorSlot, p: Mapping[str, Any], *, source: str,
                       requested_by: int | None) -> dict[str, Any]:
        """A blind transfer of ``op``'s connected call (see the module docstring)."""
        call = self._connected_call(op)
        to = str(p.get("to") or "")
        comment = str(p.get("comment") or "")[:2000]
        if to == "operator":
            target = self._ready_target(op, _required_int(p, "to_operator_id"))
            release = self._capability("release")
            leg = await self._open(call, "operator", source, op, requested_by, comment, to_operator_id=target.id)
            try:
                await release(call.call_id)
            except TelephonyError as err:
                await self._refused(call, leg, f"the call cannot be released: {err}")
                raise DialerError(f"the call cannot be transferred: {err}") from None
            self._hand_over(op, call, leg)
            call.operator = target
            target.call = call
            move(target, call.campaign, self.ctx.campaigns)
            self.ctx.roster.transition(target, OE.reserve)
            await self._offer(call)
            return {"ok": True, "transfer_id": leg.id}
        if to in ("pool", "skill"):
            pool_id = _required_int(p, "pool_id") if to == "pool" else None
            skill_id = _required_int(p, "skill_id") if to == "skill" else None
            min_level = max(1, int(p.get("min_level") or 1))
            if pool_id is not None and not any(pool_id in o.info.pools for o in self.ctx.operators.values()):
                raise DialerError(f"pool {pool_id} has no operators")
            if skill_id is not None and not any(o.skill_level(skill_id) >= min_level
                                                for o in self.ctx.operators.values()):
                raise DialerError(f"no operator has skill {skill_id} at level {min_level} or above")
            release = self._capability("release")
            leg = await self._open(call, to, source, op, requested_by, comment, to_pool_id=pool_id,
                                   to_skill_id=skill_id, min_skill_level=min_level)
            try:
                await release(call.call_id)
            except TelephonyError as err:
                await self._refused(call, leg, f"the call cannot be released: {err}")
                raise DialerError(f"the call cannot be transferred: {err}") from None
            self._hand_over(op, call, leg)
            await self._offer(call)
            return {"ok": True, "transfer_id": leg.id, "queued": call.operator is None}
        if to == "external":
            number = normalize_number(str(p.get("number") or ""))
            if not await self._dialable(call, number):
                raise DialerError(f"{number} is on a do-not-call list: the dialer does not call it, also not to "
                                  "transfer a customer")
            send = self._capability("transfer_external")
            leg = await self._open(call, "external", source, op, requested_by, comment, to_number=number)
            try:
                await send(call.call_id, number, call.caller_id)
            except TrunkUnavailable as err:
                await self._refused(call, leg, f"no trunk takes the call: {err}")
                raise DialerError(f"no trunk can call {number} now: {err}") from None
            except TelephonyError as err:
                await self._refused(call, leg, str(err))
                raise DialerError(f"the call cannot be transferred: {err}") from None
            # no wait timer while the number rings: the driver's own ring timeout ends it (then the customer waits
            # again, with the timer: _external_failed)
            self._hand_over(op, call, leg, wait=False)
            call.external = number
            return {"ok": True, "transfer_id": leg.id}
        raise DialerError(f"transfer to what? 'to' is {to!r}: operator, pool, skill or external")

    async def consult(self, op: OperatorSlot, target_id: int, *, comment: str, source: str,
                      requested_by: int | None) -> dict[str, Any]:
        """Attended transfer, first step: the customer on hold, the target's phone rings."""
        call = self._connected_call(op)
        target = self._ready_target(op, target_id)
        consult = self._capability("consult")
        leg = await self._open(call, "attended", source, op, requested_by, comment[:2000], to_operator_id=target.id)
        target.consulting = call
        target.call = call
        call.consult = target
        self.ctx.roster.transition(target, OE.reserve)
        try:
            await consult(call.call_id, target.endpoint)
        except (EndpointUnavailable, UnknownCall) as err:
            self._end_consult(call, target)
            await self._refused(call, leg, f"the consultation cannot start: {err}")
            raise DialerError(f"operator {target.info.name} cannot be consulted: {err}") from None
        except TelephonyError as err:
            self._end_consult(call, target)
            await self._refused(call, leg, str(err))
            raise DialerError(f"the consultation cannot start: {err}") from None
        return {"ok": True, "transfer_id": leg.id}

    async def consult_complete(self, op: OperatorSlot) -> dict[str, Any]:
        call = op.call
        target = call.consult if call is not None else None
        if call is None or target is None or call.operator is not op or call.transfer is None:
            raise DialerError("there is no consultation to complete")
        if target.state is not S.in_call:
            raise DialerError(f"operator {target.info.name} has not answered yet: wait, or cancel the consultation")
        complete = self._capability("complete")
        assert call.call_id is not None
        try:
            await complete(call.call_id)
        except TelephonyError as err:
            raise DialerError(f"the consultation cannot be completed: {err}") from None
        leg = call.transfer
        call.consult = None
        target.consulting = None
        self._hand_over(op, call, leg, requeue=False)
        call.operator = target
        target.talk_started = self.ctx.clock.now()
        target.calls_handled += 1
        self.ctx.journal.attempt(call.attempt_id, operator_id=target.id)
        self._close(call, leg, "connected", connected=True, detail="", operator=target)
        return {"ok": True, "transfer_id": leg.id}

    async def consult_cancel(self, op: OperatorSlot) -> dict[str, Any]:
        call = op.call
        target = call.consult if call is not None else None
        if call is None or target is None or call.transfer is None:
            raise DialerError("there is no consultation to cancel")
        cancel = self._capability("cancel_consult")
        assert call.call_id is not None
        with contextlib.suppress(UnknownCall):
            await cancel(call.call_id)
        self._end_consult(call, target)
        self._close(call, call.transfer, "cancelled", detail="cancelled by the operator")
        return {"ok": True}

    def _end_consult(self, call: LiveCall, target: OperatorSlot) -> None:
        """The consulted operator is free again (the consultation ended before the handover)."""
        call.consult = None
        target.consulting = None
        target.pending_completion = None
        if target.call is call:
            target.call = None
        if target.state in (S.reserved, S.ringing, S.in_call):
            self.ctx.roster.transition(target, OE.release)
            self.ctx.roster.after_free(target)

    # --- a phone's own REFER ----------------------------------------------------------------------------------
    async def on_requested(self, ev: TransferRequested) -> None:
        """The operator's phone asked to transfer its call (SIP REFER): resolve the target and carry it out, or
        refuse (the driver then tells the phone: nothing is carried out)."""
        call = self.ctx.by_call_id.get(ev.call_id)
        op = self.ctx.by_endpoint.get(ev.endpoint)
        if call is None or op is None or call.operator is not op or op.call is not call:
            log.info("transfer from %s of call %s refused: not his connected call", ev.endpoint, ev.call_id)
            return
        before = call.transfer
        try:
            payload = await self._resolve(op, ev.target)
            await self.transfer(op, payload, source="phone", requested_by=None)
        except DialerError as err:
            log.info("transfer from %s of call %s to %r refused: %s", ev.endpoint, ev.call_id, ev.target, err.detail)
            if call.transfer is before:  # refused before a row was written (a refused carrying-out wrote its own)
                await self._refused_request(call, op, ev.target, err.detail)

    async def _resolve(self, op: OperatorSlot, target: str) -> dict[str, Any]:
        """What a phone's transfer target names: an operator (his phone's login or extension, or his name), a pool
        (by name), or a number (external, when his user may transfer outside)."""
        text = (target or "").strip()
        if not text:
            raise DialerError("the phone named no transfer target")
        lowered = text.casefold()
        for other in self.ctx.operators.values():
            if other.info.is_active and lowered in {other.endpoint.casefold(), (other.info.extension or "").casefold(),
                                                    other.info.name.casefold()}:
                return {"to": "operator", "to_operator_id": other.id}
        async with self.ctx.maker() as session:
            pool_id = await session.scalar(select(OperatorPool.id).where(func.lower(OperatorPool.name) == lowered))
            if pool_id is not None:
                return {"to": "pool", "pool_id": int(pool_id)}
            if not any(ch.isdigit() for ch in text):
                raise DialerError(f"no operator or pool is called {text!r}")
            number = normalize_number(text)
            if not await _may_transfer_outside(session, op.id):
                raise DialerError(f"operator {op.info.name} may not transfer customers to external numbers "
                                  f"(permission {EXTERNAL_PERMISSION})")
        return {"to": "external", "number": number}

    # --- the rescue of a customer whose operator's phone died -------------------------------------------------
    def on_endpoint(self, ev: EndpointEvent) -> bool:
        """Endpoint events of transfers (the consulted operator's leg) and of dead phones mid-call; True when
        handled here."""
        op = self.ctx.by_endpoint.get(ev.endpoint)
        if op is None:
            return False
        consulted = op.consulting
        if consulted is not None and (ev.call_id is None or ev.call_id == consulted.call_id):
            if ev.kind is EndpointEventKind.answered and op.state in (S.reserved, S.ringing):
                self.ctx.roster.transition(op, OE.answer)
                return True
            if ev.kind is EndpointEventKind.hung_up:
                self.ctx.post(CallIn(lambda: self._consult_failed(consulted, op, ev.detail), None))
                return True
            return False
        if ev.kind is EndpointEventKind.hung_up and ev.phone_lost:
            call = op.call
            if (call is not None and not call.finished and call.state is A.connected and call.operator is op
                    and op.state is S.in_call and (ev.call_id is None or ev.call_id == call.call_id)):
                self.ctx.phones_down.add(op.endpoint)
                self.ctx.post(CallIn(lambda: self._rescue(op, call, ev.detail), None))
                return True
        return False

    async def _consult_failed(self, call: LiveCall, target: OperatorSlot, detail: str) -> None:
        if call.consult is not target or target.consulting is not call:
            return
        self._end_consult(call, target)
        if call.transfer is not None and not call.transfer.done:
            self._close(call, call.transfer, "failed", detail=detail or "the consulted operator's leg ended")

    async def _rescue(self, op: OperatorSlot, call: LiveCall, detail: str) -> None:
        if call.finished or call.state is not A.connected or call.operator is not op:
            return
        log.warning("operator %s lost his phone mid-call (%s): attempt %s is offered to another operator", op.id,
                    detail, call.attempt_id)
        if call.consult is not None:
            self._end_consult(call, call.consult)
        leg = await self._open(call, "rescue", "engine", op, None, "", detail=detail or "the operator's phone died")
        self._hand_over(op, call, leg)
        call.missed_by.add(op.id)
        await self._offer(call)

    # --- the handover ---------------------------------------------------------------------------------------
    def _hand_over(self, op: OperatorSlot, call: LiveCall, leg: TransferLeg, *, requeue: bool = True,
                   wait: bool = True) -> None:
        """The first operator's part is over: he goes to wrap-up (a handover: his code is optional and does not end
        the attempt); with ``requeue`` the customer waits again (no new abandon, served first), with ``wait`` within
        the wait limit (:meth:`_start_wait`; not while an external number rings)."""
        ctx, c = self.ctx, call.campaign
        if call.limit_timer is not None:
            call.limit_timer.cancel()
            call.limit_timer = None
        if op.pending_completion is not None:
            # a code set during the conversation is his note on the handover
            call.handover_completion, op.pending_completion = op.pending_completion, None
        if requeue:
            call.state = call_fsm.next_state(call.state, CE.requeue)
            call.operator = None
            call.reserved = False
            call.requeued = True
            call.hold_playing = True  # the driver plays hold audio to a released customer
            if not ctx.inbound.owns(call):  # (an inbound caller is in no pacer's sets: engine/inbound.py)
                c.answered[call.attempt_id] = call
            ctx.journal.attempt(call.attempt_id, state=A.answered)
            if call.timer is not None:
                call.timer.cancel()
                call.timer = None
            if wait:
                self._start_wait(call)
        if call.connected_at is not None and op.talk_started and not ctx.inbound.owns(call):
            c.pacer.on_talk_ended(ctx.clock.now() - op.talk_started)  # his part of the conversation
        op.handover = True
        ctx.roster.transition(op, OE.hang_up)
        op.wrap_timer, _ = ctx.timer(float(c.cfg.wrap_up_s), TimerKind.wrap, (op, call))

    def _start_wait(self, call: LiveCall) -> None:
        """The customer waits for an operator again: the message and a callback if nobody takes him within the
        campaign's ``max_hold_s`` (else the inbound queue time)."""
        c, ctx = call.campaign, self.ctx
        wait = float(c.cfg.max_hold_s) if c.cfg.max_hold_s is not None else ctx.config.inbound_queue_s
        if call.timer is not None:
            call.timer.cancel()
        call.timer, _ = ctx.timer(max(1.0, wait), TimerKind.transfer_wait, call)

    async def _offer(self, call: LiveCall) -> None:
        if not await self.ctx.calls.connect(call) and call.operator is None:
            log.info("transferred customer of attempt %s waits for an operator", call.attempt_id)

    def end_handover(self, op: OperatorSlot, completion: Completion, *, timeout: bool) -> None:
        """The first operator ends his wrap-up after a handover: his code (optional) is kept on the transfer as his
        note and, after an external transfer, for the attempt; the attempt goes on without him."""
        call = op.call
        op.call = None
        op.handover = False
        if call is not None and not call.finished and not timeout and completion.completion_code_id:
            call.handover_completion = completion
        if call is not None and completion.comment and call.transfer is not None:
            transfer_id, note = call.transfer.id, completion.comment

            async def job(session: AsyncSession) -> None:
                await session.execute(update(CallTransfer).where(CallTransfer.id == transfer_id).values(
                    comment=func.concat(CallTransfer.comment, literal("\n" if call.transfer and call.transfer.comment
                                                                      else ""), literal(note))))

            self.ctx.journal.job(f"transfer {transfer_id} note", job)
        self.ctx.roster.transition(op, OE.wrap_up_timeout if timeout else OE.complete)
        if op.endpoint in self.ctx.phones_down and op.pending is None:
            op.pending = (S.paused, PHONE_OFFLINE)
        self.ctx.roster.after_free(op)

    # --- what happens to the customer next --------------------------------------------------------------------
    def on_connected(self, call: LiveCall, op: OperatorSlot) -> None:
        """A waiting transferred customer was connected to ``op`` (calls.py)."""
        leg = call.transfer
        call.requeued = False
        if leg is None or leg.done:
            return
        if leg.kind == "operator" and leg.to_operator_id != op.id:
            self._close(call, leg, "failed", detail=f"the operator did not take the call; {op.info.name} did",
                        operator=op)
        else:
            self._close(call, leg, "connected", connected=True, operator=op)

    def on_call_event(self, call: LiveCall, ev: CallEvent) -> bool:
        """``connected`` of an external transfer, or after a completed consultation (True: handled here)."""
        endpoint = ev.endpoint or ""
        if endpoint.startswith(EXTERNAL_PREFIX):
            leg = call.transfer
            if call.state is A.answered:
                call.state = call_fsm.next_state(call.state, CE.connect)
                call.campaign.answered.pop(call.attempt_id, None)
                call.requeued = False
                for timer in (call.timer, call.offer_timer, call.limit_timer):
                    if timer is not None:
                        timer.cancel()
                call.timer = call.offer_timer = call.limit_timer = None
                if call.forced_cause:  # the far end answered while a callback message played: he talks now
                    call.forced_cause, call.hangup_by = "", None
                self.ctx.journal.attempt(call.attempt_id, state=A.connected)
            if leg is not None and not leg.done:
                self._close(call, leg, "connected", connected=True)
            return True
        return call.state is A.connected and call.operator is not None and endpoint == call.operator.endpoint

    def on_external_failed(self, ev: EndpointEvent) -> bool:
        """The external number did not answer: the customer waits for any operator of the campaign."""
        if not ev.endpoint.startswith(EXTERNAL_PREFIX) or ev.kind is not EndpointEventKind.hung_up:
            return False
        call = self.ctx.by_call_id.get(ev.call_id) if ev.call_id is not None else None
        if call is None or call.finished or call.external is None:
            return True
        self.ctx.post(CallIn(lambda: self._external_failed(call, ev.detail), None))
        return True

    async def _external_failed(self, call: LiveCall, detail: str) -> None:
        if call.finished or call.external is None:
            return
        leg = call.transfer
        call.external = None
        if call.state is A.connected:  # it had answered: the far end left, the customer is back with us
            call.state = call_fsm.next_state(call.state, CE.requeue)
            if not self.ctx.inbound.owns(call):
                call.campaign.answered[call.attempt_id] = call
            self.ctx.journal.attempt(call.attempt_id, state=A.answered)
        call.requeued = True
        if leg is not None and not leg.done:
            self._close(call, leg, "failed", detail=detail or "the external number did not answer")
        self._start_wait(call)  # nobody free: he does not hold forever (the message and a callback at the limit)
        await self._offer(call)

    async def on_wait_timeout(self, call: LiveCall) -> None:
        """Nobody took the transferred or rescued customer within the limit: the message and a callback (an offer
        ringing an operator's phone gets its offer time first)."""
        if (call.finished or call.state is not A.answered or not call.requeued or call.forced_cause
                or call.external is not None):
            return  # connected meanwhile, or an external number rings (its driver's ring timeout ends it)
        if call.operator is not None:
            call.timer, _ = self.ctx.timer(max(1.0, self.ctx.config.offer_timeout_s), TimerKind.transfer_wait, call)
            return
        ctx = self.ctx
        call.forced_cause = "nobody took the transferred customer in time: message played, callback booked"
        call.hangup_by = "dialer"
        call.timer = None
        call.hold_playing = False
        if call.call_id is not None:
            try:
                await ctx.telephony.play(call.call_id, ctx.config.inbound_message)
            except UnknownCall:
                return
            except TelephonyError as err:
                log.warning("call %s: the message %r cannot be played: %s", call.call_id, ctx.config.inbound_message,
                            err)
        call.limit_timer, _ = ctx.timer(ctx.config.inbound_message_s, TimerKind.transfer_message, call)

    async def on_message_played(self, call: LiveCall) -> None:
        if call.finished or call.call_id is None or call.state is not A.answered or not call.forced_cause:
            return  # connected meanwhile (an operator or an external number took him): never hang that up
        with contextlib.suppress(UnknownCall):
            await self.ctx.telephony.hangup(call.call_id, call.forced_cause or "message played")

    def on_hung_up(self, call: LiveCall) -> bool:
        """The call ended; True when it was a customer of a transfer this module finishes (waiting again, or with
        an external number). Releases a consulted operator in any case."""
        ctx = self.ctx
        if call.consult is not None:
            target = call.consult
            leg = call.transfer
            self._end_consult(call, target)
            if leg is not None and not leg.done:
                self._close(call, leg, "abandoned", detail="the call ended during the consultation")
        leg = call.transfer
        if call.state is A.connected and call.external is not None:
            call.state = call_fsm.next_state(call.state, CE.hang_up)
            ctx.journal.attempt(call.attempt_id, state=A.wrap_up, hung_up_at=call.hung_up_utc,
                                hangup_side=call.hangup_side, hangup_cause=call.hangup_cause)
            completion = call.handover_completion
            code = completion.completion_code_id if completion is not None else None
            code = code or ctx.results.default_code(call.campaign)
            known = call.campaign.plan.codes.get(code) if code is not None else None
            category = known.category if known is not None else OutcomeCategory.answered
            ctx.results.finish(call, category, code, event=CE.complete,
                               completion=completion or Completion(code or 0))
            return True
        if call.state is not A.answered or not call.requeued:
            return False
        if call.forced_cause:
            code = ctx.codes.get(CALLBACK_CODE) or ctx.codes.get("abandoned")
            at = ctx.clock.utcnow() + timedelta(seconds=ctx.config.inbound_callback_after_s)
            if leg is not None and not leg.done:
                self._close(call, leg, "callback", detail=call.forced_cause)
            ctx.results.finish(call, OutcomeCategory.abandoned, code, event=CE.hang_up,
                               completion=Completion(code or 0, comment=call.forced_cause,
                                                     callback_at=at if call.candidate.contact_id is not None
                                                     else None))
            return True
        if leg is not None and not leg.done:
            self._close(call, leg, "abandoned", detail="the customer hung up while waiting")
        call.hangup_cause = call.hangup_cause or "the customer hung up while being transferred"
        code = ctx.results.default_code(call.campaign)
        known = call.campaign.plan.codes.get(code) if code is not None else None
        ctx.results.finish(call, known.category if known is not None else OutcomeCategory.answered, code,
                           event=CE.hang_up, completion=call.handover_completion)
        return True

    # --- the rows ---------------------------------------------------------------------------------------------
    async def _open(self, call: LiveCall, kind: str, source: str, op: OperatorSlot | None, requested_by: int | None,
                    comment: str, *, to_operator_id: int | None = None, to_pool_id: int | None = None,
                    to_skill_id: int | None = None, min_skill_level: int = 1, to_number: str | None = None,
                    detail: str = "") -> TransferLeg:
        """Insert the transfer's row (committed: its id is the leg's) and tell the world."""
        utc = self.ctx.clock.utcnow()
        row: dict[str, Any] = {"attempt_id": call.attempt_id, "campaign_id": call.campaign.id, "kind": kind,
               "source": source if source in ("panel", "supervisor", "phone", "engine") else "panel",
               "from_operator_id": op.id if op is not None else None, "to_operator_id": to_operator_id,
               "to_pool_id": to_pool_id, "to_skill_id": to_skill_id, "to_number": to_number,
               "requested_by": requested_by, "comment": comment, "requested_at": utc, "result": "pending",
               "detail": detail}
        transfer_id = await self.ctx.commit_now(lambda db: _insert(db, row))
        leg = TransferLeg(id=transfer_id, kind=kind, source=row["source"], from_operator_id=row["from_operator_id"],
                          to_operator_id=to_operator_id, to_pool_id=to_pool_id, to_skill_id=to_skill_id,
                          min_skill_level=min_skill_level, to_number=to_number, comment=comment)
        call.transfer = leg
        self._publish(call, leg, "pending", detail)
        return leg

    def _close(self, call: LiveCall, leg: TransferLeg, result: str, *, connected: bool = False, detail: str = "",
               operator: OperatorSlot | None = None) -> None:
        leg.done = True
        utc = self.ctx.clock.utcnow()
        values: dict[str, Any] = {"result": result, "ended_at": utc}
        if connected:
            values["connected_at"] = utc
        if detail:
            values["detail"] = detail[:2000]
        if operator is not None and leg.kind in ("pool", "skill", "rescue", "operator", "attended"):
            values["to_operator_id"] = operator.id if leg.kind != "operator" or result == "connected" else \
                leg.to_operator_id
        transfer_id = leg.id

        async def job(session: AsyncSession) -> None:
            await session.execute(update(CallTransfer).where(CallTransfer.id == transfer_id).values(**values))

        self.ctx.journal.job(f"transfer {transfer_id} {result}", job)
        self._publish(call, dataclasses.replace(leg, to_operator_id=values.get("to_operator_id", leg.to_operator_id)),
                      result, detail)

    async def _refused(self, call: LiveCall, leg: TransferLeg, detail: str) -> None:
        if call.transfer is leg:
            self._close(call, leg, "refused", detail=detail)

    async def _refused_request(self, call: LiveCall, op: OperatorSlot, target: str, detail: str) -> None:
        kind = "external" if any(ch.isdigit() for ch in target) else "operator"
        leg = await self._open(call, kind, "phone", op, None, "", detail=f"asked for {target!r}")
        self._close(call, leg, "refused", detail=detail)

    def _publish(self, call: LiveCall, leg: TransferLeg, result: str, detail: str) -> None:
        self.ctx.bus.publish(CallTransferred(
            at=self.ctx.clock.utcnow(), transfer_id=leg.id, attempt_id=call.attempt_id, campaign_id=call.campaign.id,
            kind=leg.kind, source=leg.source, from_operator_id=leg.from_operator_id, to_operator_id=leg.to_operator_id,
            to_pool_id=leg.to_pool_id, to_skill_id=leg.to_skill_id, to_number=leg.to_number, result=result,
            detail=detail))

    async def _dialable(self, call: LiveCall, number: str) -> bool:
        async with self.ctx.maker() as session:
            ok = await session.scalar(select(not_in_dnc_lists(dnc_lists_of(call.campaign.id), literal(number))))
        return bool(ok)


async def _insert(db: AsyncSession | AsyncConnection, row: dict[str, Any]) -> int:
    return int((await db.execute(insert(CallTransfer).values(**row).returning(CallTransfer.id))).scalar_one())


async def _may_transfer_outside(session: AsyncSession, operator_id: int) -> bool:
    """Whether the operator's user holds :data:`EXTERNAL_PERMISSION` (by a role or a grant of his own)."""
    user_id = await session.scalar(select(Operator.user_id).where(Operator.id == operator_id))
    if user_id is None:
        return False
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return False
    return EXTERNAL_PERMISSION in await effective_permissions(session, user.id)


def _int(value: Any) -> int | None:
    return int(value) if value is not None and value != "" else None


def _required_int(p: Mapping[str, Any], key: str) -> int:
    value = p.get(key)
    if value is None or value == "":
        raise DialerError(f"{key} is required")
    return int(value)

