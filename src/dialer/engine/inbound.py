"""Inbound calls: customers calling the campaigns' caller IDs back (a collaborator of the engine's actor, see
:mod:`dialer.engine.context`; issue #12 §3, "blended" calling).

The driver reports a call arriving from a trunk (:class:`~dialer.telephony.base.IncomingCall`). The caller's number
is normalised to E.164 and matched:

1. **A known caller**: the contact of the most recent outbound attempt to that number, and that attempt's campaign
   — the last campaign that called him — when the engine works on it.
2. **Otherwise** the running campaign of the highest priority whose caller IDs include the dialled number; the
   contact is one of its lists' contacts with that phone, if any (the call may have no contact).
3. **Nobody takes it**: no such campaign, the engine stopping, or the number being in a live call already (a live
   attempt holds its number): the call is refused (the SIP driver answers 486) and leaves no attempt.

The call becomes an attempt with ``direction`` 'inbound' (committed before it is answered, as a placed call is),
state ``ringing``; a free operator of the campaign (its own first, then shared ones, as for a live answer) is
reserved for it at once, before the pacer can reserve him for an outbound call, and it is answered. Operators who
become free take waiting inbound callers before outbound customers (:mod:`dialer.engine.roster`). The operator gets
the contact's card as for any call (the workplace reads it by the attempt).

Nobody free within the queue time (``EngineConfig.inbound_queue_s``, at most the campaign's ``max_hold_s``), or the
campaign outside its hours or not running: the caller hears the message (``EngineConfig.inbound_message``) for
``inbound_message_s``, is hung up, and the attempt ends with the system code ``inbound_callback`` (category
``abandoned``) and a callback booked for his contact (a postpone, :func:`dialer.engine.outcome.apply_result`'s
rule 3) ``inbound_callback_after_s`` later. A caller who hangs up while he waits ends ``abandoned``.

Outbound pacing is not touched: an inbound call is never in a campaign's ``dialling`` or ``answered`` sets, it is
no pacer placement (no ``on_call_result``), its wait is no abandon (no ``on_abandon``) and its talk time is not
the pacer's. A conversation ends through the normal wrap-up and completion path (:mod:`dialer.engine.results`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.engine import call_fsm
from dialer.engine.assign import eligible, move
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.context import EngineContext, TimerKind
from dialer.engine.events import CallAnswered, CallIncoming, CallRinging
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.selection import Candidate
from dialer.engine.state import CampaignRuntime, Completion, LiveCall, OperatorSlot
from dialer.models import Attempt, Contact, ContactPhone
from dialer.models.enums import AttemptState, CampaignStatus, OperatorState, OutcomeCategory
from dialer.phone.normalize import to_e164
from dialer.telephony.base import IncomingCall, TelephonyError, UnknownCall

__all__ = ["INBOUND", "InboundCalls", "Match", "normalise"]

log = logging.getLogger(__name__)

S = OperatorState
A = AttemptState

#: ``attempts.direction`` of an inbound call.
INBOUND = "inbound"
#: The system code of an inbound caller who got the message and a callback (migration 0015_inbound).
CALLBACK_CODE = "inbound_callback"


def normalise(raw: str) -> str | None:
    """A number as a trunk delivers it ("79161234567", "+7 916 …", "89161234567") in E.164; None when it is none."""
    text = (raw or "").strip()
    if not text or not any(ch.isdigit() for ch in text):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    candidates = [text] if text.startswith("+") else [text, "+" + digits]
    for candidate in candidates:
        try:
            return to_e164(candidate)
        except Exception:  # InvalidPhone and the parser's own errors
            continue
    return None


@dataclass(frozen=True, slots=True)
class Match:
    """Whom an inbound call is from: his contact (if any) and the campaign it goes to."""

    campaign: CampaignRuntime
    contact_id: int | None
    phone_id: int | None
    list_id: int | None
    #: "last campaign" (the campaign of his most recent attempt) or "caller id" (the dialled number's campaign).
    how: str


class InboundCalls:
    """Takes inbound calls: matching, the attempt, the operator, and the message with a callback."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        #: Live inbound calls by attempt id → why the caller gets the message at once (None: he queues).
        self._calls: dict[int, str | None] = {}
        #: Operators wrapping up an inbound conversation (their wrap-up time is no outbound pacer's either).
        self._wrapping: set[int] = set()

    # --- the face calls.py sees -------------------------------------------------------------------------------
    def owns(self, call: LiveCall) -> bool:
        return call.attempt_id in self._calls

    def waiting(self) -> list[LiveCall]:
        """Inbound callers waiting for an operator (answered, nobody reserved, not being given the message)."""
        out = []
        for attempt_id in self._calls:
            call = self.ctx.attempts.get(attempt_id)
            if (call is not None and not call.finished and call.state is A.answered and call.operator is None
                    and not call.forced_cause):
                out.append(call)
        return out

    # --- an inbound call arrives -------------------------------------------------------------------------------
    async def on_incoming(self, ev: IncomingCall) -> None:
        ctx = self.ctx
        caller = normalise(ev.caller)
        dialled = normalise(ev.dialled)
        if ctx.stopping or caller is None:
            await self._refuse(ev, "the engine is stopping" if ctx.stopping else f"no caller number ({ev.caller!r})")
            return
        async with ctx.maker() as session:
            match = await self.match(session, caller, dialled)
        if match is None:
            await self._refuse(ev, f"no campaign takes calls from {caller} to {dialled or ev.dialled!r}")
            return
        c = match.campaign
        utc = ctx.clock.utcnow()
        row: dict[str, Any] = {
            "campaign_id": c.id, "contact_id": match.contact_id, "phone_id": match.phone_id, "selection_id": None,
            "callback_id": None, "operator_id": None, "engine_run_id": ctx.run_id, "number": caller,
            "caller_id": (dialled or ev.dialled)[:20] or None, "state": A.ringing, "direction": INBOUND,
            "queued_at": utc, "ringing_at": utc, "hangup_cause": "", "comment": ""}
        attempt_id = await ctx.commit_now(lambda db: _insert(db, row))
        if attempt_id is None:
            await self._refuse(ev, f"{caller} (or its contact) is in a live call already")
            return
        candidate = Candidate(contact_id=cast(int, match.contact_id), phone_id=cast(int, match.phone_id),
                              number=caller, list_id=cast(int, match.list_id), selection_id=None, callback_id=None,
                              operator_id=None, skill_id=None, min_skill_level=None, pool_id=None, priority=0)
        call = LiveCall(attempt_id=attempt_id, campaign=c, candidate=candidate, caller_id=row["caller_id"],
                        state=A.ringing, queued_utc=utc, call_id=ev.call_id, inbound=True)
        closed = self._closed_reason(c)
        self._calls[attempt_id] = closed
        c.calls[attempt_id] = call
        ctx.attempts[attempt_id] = call
        ctx.by_call_id[ev.call_id] = call
        ctx.journal.attempt(attempt_id, call_id=str(ev.call_id))
        ctx.bus.publish(CallRinging(at=utc, attempt_id=attempt_id, campaign_id=c.id))
        log.info("inbound call %s from %s to %s: campaign %s (%s), contact %s, attempt %s", ev.call_id, caller,
                 dialled, c.id, match.how, match.contact_id, attempt_id)
        if closed is None:
            op = self._free_operator(call)
            if op is not None:  # inbound first: reserved before the pacer may reserve him for an outbound call
                call.operator, call.reserved = op, True
                op.call = call
                move(op, c, ctx.campaigns)
                ctx.roster.transition(op, OE.reserve)
        # the floor sees the caller ringing, then queued or connected (CallAnswered, CallOnHold, CallConnected)
        ctx.bus.publish(CallIncoming(at=utc, attempt_id=attempt_id, campaign_id=c.id, contact_id=match.contact_id,
                                     number=caller, dialled=dialled or ev.dialled or None, how=match.how,
                                     operator_id=call.operator.id if call.operator is not None else None))
        answer = getattr(ctx.telephony, "answer", None)
        try:
            if not callable(answer):
                raise TelephonyError("the driver does not answer inbound calls")
            await answer(ev.call_id)
        except UnknownCall:
            return  # the caller gave up meanwhile: his hung_up event ends the attempt
        except TelephonyError as err:
            log.warning("inbound call %s could not be answered: %s", ev.call_id, err)
            call.hangup_cause = str(err)
            # refused: the hung_up event that follows ends the attempt (on_ended)
            await self._refuse(ev, str(err))

    async def match(self, session: AsyncSession, caller: str, dialled: str | None) -> Match | None:
        """The campaign and contact of a call from ``caller`` to ``dialled`` (see the module docstring)."""
        ctx = self.ctx
        last = (await session.execute(
            select(Attempt.contact_id, Attempt.phone_id, Attempt.campaign_id, Contact.list_id)
            .join(Contact, Contact.id == Attempt.contact_id)
            .where(Attempt.number == caller, Attempt.direction != INBOUND, Attempt.contact_id.is_not(None))
            .order_by(Attempt.id.desc()).limit(1))).first()
        if last is not None:
            c = ctx.campaigns.get(int(last.campaign_id))
            if c is not None and c.status not in (CampaignStatus.stopped, CampaignStatus.finished):
                return Match(c, int(last.contact_id), _int(last.phone_id), _int(last.list_id), "last campaign")
        if dialled is None:
            return None
        running = [c for c in ctx.campaigns.values()
                   if c.status is CampaignStatus.running and dialled in {normalise(n) for n in c.cfg.caller_ids}]
        if not running:
            return None
        c = max(running, key=lambda x: (x.priority, -x.id))
        found = None
        lists = list(c.plan.list_ids)
        if lists:
            found = (await session.execute(
                select(ContactPhone.id, ContactPhone.contact_id, Contact.list_id)
                .join(Contact, Contact.id == ContactPhone.contact_id)
                .where(ContactPhone.e164 == caller, Contact.list_id.in_(lists))
                .order_by(ContactPhone.contact_id).limit(1))).first()
        if found is not None:
            return Match(c, int(found.contact_id), int(found.id), int(found.list_id), "caller id")
        return Match(c, None, None, None, "caller id")

    def _closed_reason(self, c: CampaignRuntime) -> str | None:
        if c.status is not CampaignStatus.running or c.expected_status is not None:
            return f"the campaign is {c.status.value.replace('_', ' ')}"
        if not c.open:
            return "outside the campaign's hours"
        return None

    def _free_operator(self, call: LiveCall) -> OperatorSlot | None:
        """A free operator for ``call``: the campaign's own first, then ones of campaigns of no higher priority who
        work in its pools (as a live answer is served)."""
        ctx, c = self.ctx, call.campaign
        own = [op for i in c.members if (op := ctx.operators.get(i)) is not None and op.state is S.ready
               and op.endpoint not in ctx.phones_down and eligible(op, c, call.candidate)]
        if not own:
            for op in ctx.operators.values():
                if (op.state is not S.ready or op.campaign_id == c.id or op.endpoint in ctx.phones_down
                        or not eligible(op, c, call.candidate)):
                    continue
                other = ctx.campaigns.get(op.campaign_id) if op.campaign_id is not None else None
                if other is None or other.priority <= c.priority:
                    own.append(op)
        return ctx.chooser.choose(own)

    async def _refuse(self, ev: IncomingCall, why: str) -> None:
        log.info("inbound call %s from %r to %r refused: %s", ev.call_id, ev.caller, ev.dialled, why)
        with contextlib.suppress(UnknownCall):
            await self.ctx.telephony.hangup(ev.call_id, why)

    # --- answered, waiting, the message ------------------------------------------------------------------------
    async def on_answered(self, call: LiveCall, at: float, code: int | None) -> None:
        """The inbound call is up: connect it to its reserved or a free operator, or queue it on hold audio."""
        ctx, c = self.ctx, call.campaign
        call.state = call_fsm.next_state(call.state, CE.answer)
        call.answered_at = at
        call.answered_by = "human"
        utc = ctx.clock.utcnow()
        ctx.journal.attempt(call.attempt_id, state=A.answered, answered_at=utc, answered_by="human", sip_code=code)
        ctx.bus.publish(CallAnswered(at=utc, attempt_id=call.attempt_id, campaign_id=c.id, answered_by="human"))
        closed = self._calls.get(call.attempt_id)
        if closed is not None:
            await self._message(call, closed)
            return
        queue = ctx.config.inbound_queue_s
        if c.cfg.max_hold_s is not None:
            queue = min(queue, float(c.cfg.max_hold_s))
        call.timer, _ = ctx.timer(max(queue, float(c.cfg.operator_wait_s)), TimerKind.inbound_wait, call)
        if not await ctx.calls.connect(call) and call.call_id is not None and not call.finished:
            call.hold_playing = True
            with contextlib.suppress(TelephonyError):
                await ctx.telephony.play(call.call_id, c.cfg.hold_audio or ctx.config.hold_audio)

    async def on_wait_timeout(self, call: LiveCall) -> None:
        """The queue time passed: nobody took the caller — the message and a callback (an offer still ringing an
        operator's phone gets its offer time first)."""
        if call.finished or call.state is not A.answered or call.forced_cause:
            return
        if call.operator is not None:
            call.timer, _ = self.ctx.timer(max(1.0, self.ctx.config.offer_timeout_s), TimerKind.inbound_wait, call)
            return
        now = self.ctx.clock.now()
        queue = now - call.answered_at if call.answered_at is not None else 0.0
        await self._message(call, f"no operator free within {queue:.0f} s")

    async def _message(self, call: LiveCall, why: str) -> None:
        ctx = self.ctx
        call.forced_cause = f"{why}: message played, callback booked"
        call.hangup_by = "dialer"
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        call.hold_playing = False
        if call.call_id is not None:
            try:
                await ctx.telephony.play(call.call_id, ctx.config.inbound_message)
            except UnknownCall:
                return  # he hung up meanwhile: his hung_up event ends the attempt
            except TelephonyError as err:
                log.warning("inbound call %s: the message %r cannot be played: %s", call.call_id,
                            ctx.config.inbound_message, err)
        call.limit_timer, _ = ctx.timer(ctx.config.inbound_message_s, TimerKind.inbound_message, call)

    async def on_message_played(self, call: LiveCall) -> None:
        if call.finished or call.call_id is None:
            return
        with contextlib.suppress(UnknownCall):
            await self.ctx.telephony.hangup(call.call_id, call.forced_cause or "message played")

    # --- the end of a call nobody talked to -------------------------------------------------------------------
    def on_ended(self, call: LiveCall) -> None:
        """The inbound call ended before an operator talked to the caller: he gave up (``abandoned``), or got the
        message (``inbound_callback`` and a callback booked). No abandon for the pacer: it placed nothing."""
        ctx = self.ctx
        closed = self._calls.pop(call.attempt_id, None)
        op = call.operator
        if op is not None and op.call is call and op.state in (S.reserved, S.ringing):
            op.call = None
            call.operator = None
            ctx.roster.transition(op, OE.release)
            ctx.roster.after_free(op)
        event = CE.hang_up if call.state is A.answered else CE.fail
        if call.forced_cause:
            code = ctx.codes.get(CALLBACK_CODE) or ctx.codes.get("abandoned")
            at = ctx.clock.utcnow() + timedelta(seconds=ctx.config.inbound_callback_after_s)
            completion = Completion(code or 0, comment=f"inbound call: {call.forced_cause}",
                                    callback_at=at if call.candidate.contact_id is not None else None)
            ctx.results.finish(call, OutcomeCategory.abandoned, code, event=event, completion=completion)
            return
        if closed is None and call.state is A.ringing and not call.hangup_cause:
            call.hangup_cause = "the caller gave up before the call was answered"
        ctx.results.finish(call, OutcomeCategory.abandoned, ctx.codes.get("abandoned"), event=event)

    def forget(self, call: LiveCall) -> None:
        """An inbound conversation ended: its wrap-up follows the normal path; only the wrap-up's length is kept from
        the pacer (:meth:`wrapped_up`)."""
        self._calls.pop(call.attempt_id, None)
        if call.operator is not None:
            self._wrapping.add(call.operator.id)

    def wrapped_up(self, op: OperatorSlot) -> bool:
        """``op`` ends a wrap-up: True (once) when it was an inbound conversation's."""
        if op.id in self._wrapping:
            self._wrapping.discard(op.id)
            return True
        return False


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


async def _insert(db: AsyncSession | AsyncConnection, row: dict[str, Any]) -> int | None:
    """Insert the inbound attempt; None when a live attempt holds its contact or number. No DNC check: a DNC list
    stops the dialer calling a number, not the number calling the dialer."""
    stmt = pg_insert(Attempt).values(**row).on_conflict_do_nothing().returning(Attempt.id)
    found = (await db.execute(stmt)).scalar_one_or_none()
    return int(found) if found is not None else None
