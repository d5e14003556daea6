"""Calls: telephony events, connecting answered customers to operators, offers and limits (a collaborator of the
engine's actor, see :mod:`dialer.engine.context`).

A call's life (states of :mod:`dialer.engine.call_fsm`): ringing, then an answer. A machine is hung up
(``no_answer`` with the system code ``answering_machine``); a human is connected to a free eligible operator
(:mod:`dialer.engine.assign`). If none is connected within the campaign's threshold (strategy ``operator_wait_s``,
default 2 s: the regulatory definition) the call counts as abandoned for the statistics and hears hold audio while
the engine keeps trying; if the customer hangs up first the attempt ends ``abandoned`` ("Клиент упущен"), if an
operator comes it is connected (and still counts as abandoned: both facts stay on the attempt as
``answered_at``/``connected_at``). Busy, no answer, rejected and failed end with their system codes, the SIP cause
and code kept. A connected call ends in wrap-up (:mod:`dialer.engine.results`).

Limits: a customer still without an operator ``max_hold_s`` after the answer is hung up ("no operator",
abandoned); a conversation longer than ``max_call_duration_s`` is cut ("max duration"); an operator who does not
pick up an offered call within ``offer_timeout_s`` loses it to another operator.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.engine import call_fsm
from dialer.engine import repository as repo
from dialer.engine.assign import eligible, move
from dialer.engine.call_fsm import CallEvent as CE
from dialer.engine.context import CallIn, EngineContext, TimerKind
from dialer.engine.events import (
    CallAnswered,
    CallConnected,
    CallEnded,
    CallOnHold,
    CallRinging,
    DeviceStateChanged,
    OperatorMissedCall,
    TrunkStateChanged,
)
from dialer.engine.media import audio_length_s, media_settings
from dialer.engine.operator_fsm import PHONE_OFFLINE
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.pacing import DialResult
from dialer.engine.state import Completion, LiveCall, OperatorSlot
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from dialer.telephony.base import (
    AnsweredBy,
    CallEventKind,
    EndpointEvent,
    EndpointEventKind,
    EndpointUnavailable,
    TelephonyError,
    TrunkEvent,
    UnknownCall,
)
from dialer.telephony.base import CallEvent as TelephonyCallEvent

__all__ = ["UNANSWERED", "CallHandling"]

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

#: The cause recorded when a live customer nobody took heard the abandon message (engine/media.py).
ABANDON_MESSAGE_CAUSE = "no operator within the grace time: message played, callback booked"

#: Endpoint events that change what the supervisor sees of a phone (registration state).
_DEVICE_STATES = frozenset({EndpointEventKind.registered, EndpointEventKind.unregistered,
                            EndpointEventKind.unreachable})



class CallHandling:
    """Follows each live call through the driver's events and connects answered customers to operators."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        #: Trunk id → up, as the driver last reported (TrunkEvent); trunks it never reported count as up.
        self._trunks_up: dict[int, bool] = {}
        #: (operator, campaign) told once that the operator's record_override 'always' cannot record its calls.
        self._override_warned: set[tuple[int, int]] = set()

    def _utc_at(self, at: float) -> datetime:
        return self.ctx.clock.utcnow() - timedelta(seconds=max(0.0, self.ctx.clock.now() - at))

    async def on_call_event(self, ev: TelephonyCallEvent) -> None:
        call = self.ctx.by_call_id.get(ev.call_id)
        if call is None or call.finished:
            return
        kind = ev.kind
        c = call.campaign
        if kind is CallEventKind.trying:
            return
        if kind is CallEventKind.answered and self._inbound(call):
            if call.state is A.ringing:
                await self.ctx.inbound.on_answered(call, ev.at, ev.code)
            return
        if kind is CallEventKind.ringing:
            if call.state is A.dialing:
                call.state = call_fsm.next_state(call.state, CE.ring)
                utc = self._utc_at(ev.at)
                self.ctx.journal.attempt(call.attempt_id, state=A.ringing, ringing_at=utc)
                self.ctx.bus.publish(CallRinging(at=utc, attempt_id=call.attempt_id, campaign_id=c.id))
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
            self.ctx.bus.publish(CallEnded(at=call.hung_up_utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                       result=kind.value, side=None, cause=ev.cause, sip_code=ev.code))
            self.ctx.results.finish(call, category, self.ctx.codes.get(key), event=CE.unanswered)
            return
        if kind is CallEventKind.connected:
            if self.ctx.transfers.on_call_event(call, ev):
                return  # an external transfer's far end, or the consulted operator after the handover
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
        self.ctx.dirty.add(c.id)  # a call ended its dialling phase: the pacer decides again
        call.answered_at = ev.at
        call.answered_by = AnsweredBy.machine.value if machine else AnsweredBy.human.value
        utc = self._utc_at(ev.at)
        self.ctx.journal.attempt(call.attempt_id, state=A.answered, answered_at=utc, answered_by=call.answered_by,
                             sip_code=ev.code)
        self.ctx.bus.publish(CallAnswered(at=utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                      answered_by=call.answered_by))
        if machine:
            if c.cfg.amd_enabled and c.cfg.amd_message:
                return  # the driver leaves the message after the greeting and hangs up (engine/media.py)
            call.hangup_by = "dialer"
            try:
                await self.ctx.telephony.hangup(ev.call_id, "answering machine")
            except UnknownCall:
                self._machine_hung_up(call)
            return
        # the wait counts from the answer (``ev.at``), not from now: with machine detection the driver reports a
        # person when its detector decides (~1.9 s later), and that silence counts toward the 2-second rule
        # (docs/amd.md)
        silent = max(0.0, self.ctx.clock.now() - ev.at)
        consent = c.cfg.record_consent_audio
        if call.recorded and consent and call.call_id is not None:
            # a recorded call: the customer hears that it is recorded before anyone joins (engine/media.py). A
            # customer hearing a message is not left in silence — an abandoned call is one answered into silence
            # (001: «когда клиент берёт трубку, а его соединяют с тишиной»), as the abandon message is no abandon
            # either — so the regulatory wait and the hold limit stop while it plays and go on when it ends
            # (on_consent); otherwise a message longer than operator_wait_s made every recorded answer an abandon
            try:
                await self.ctx.telephony.play(call.call_id, consent)
            except UnknownCall:
                return  # he hung up meanwhile: his hung_up event follows
            except TelephonyError as err:
                log.warning("attempt %s: the consent message %r cannot be played: %s", call.attempt_id, consent, err)
            else:
                length = audio_length_s(consent, self.ctx.config.audio_dir)
                call.consenting = True
                call.silent_s = silent
                self.ctx.timer(media_settings().message_default_s if length is None else length, TimerKind.consent,
                               call)
                return
        self._wait_timers(call, silent)
        await self.connect(call)

    def _wait_timers(self, call: LiveCall, silent: float) -> None:
        """The grace (``operator_wait_s``) and hold-limit timers of a live answer that has waited ``silent`` seconds
        in silence already (machine detection's decision time, before a consent message)."""
        c = call.campaign
        grace = float(c.cfg.operator_wait_s)
        for timer in (call.timer, call.limit_timer):
            if timer is not None:
                timer.cancel()
        call.timer, _ = self.ctx.timer(max(0.0, grace - silent), TimerKind.grace, call)
        call.limit_timer = None
        if c.cfg.max_hold_s is not None:
            call.limit_timer, _ = self.ctx.timer(max(0.0, max(grace, float(c.cfg.max_hold_s)) - silent),
                                                 TimerKind.hold_limit, call)

    async def on_consent(self, call: LiveCall) -> None:
        """The consent message has played: the regulatory wait goes on from where it stood before the message (see
        :meth:`_on_answered`) and the customer goes to his operator (or waits, with hold audio or the abandon
        message once that wait runs out)."""
        if call.finished or call.state is not A.answered or not call.consenting:
            return
        call.consenting = False
        if call.call_id is None:
            return
        with contextlib.suppress(TelephonyError):
            await self.ctx.telephony.play(call.call_id, None)
        self._wait_timers(call, call.silent_s)
        await self.connect(call)

    def _inbound(self, call: LiveCall) -> bool:
        """An inbound call (engine/inbound.py): no pacer placement, no abandon of the outbound dial."""
        inbound = getattr(self.ctx, "inbound", None)
        return inbound is not None and inbound.owns(call)

    def waiting_calls(self) -> list[LiveCall]:
        """Live customers waiting for an operator: transferred and rescued customers first (they were talking to
        an operator a moment ago), then inbound callers, then answered outbound calls."""
        inbound = getattr(self.ctx, "inbound", None)
        first = self.ctx.transfers.waiting()
        seen = {x.attempt_id for x in first}
        first += [x for x in (inbound.waiting() if inbound is not None else []) if x.attempt_id not in seen]
        seen.update(x.attempt_id for x in first)
        return first + [x for c in self.ctx.campaigns.values() for x in c.answered.values()
                        if x.answered_by == "human" and x.operator is None and not x.finished
                        and x.attempt_id not in seen and not x.requeued and not x.forced_cause
                        and not x.consenting]

    def may_take(self, op: OperatorSlot, call: LiveCall) -> bool:
        """May ``op`` (ignoring his state) take the waiting ``call``: a transferred customer by his transfer's
        target, anyone else by the campaign's rules."""
        if call.requeued:
            return self.ctx.transfers.may_take(op, call)
        return op.id not in call.missed_by and eligible(op, call.campaign, call.candidate)

    def _candidates_for(self, call: LiveCall) -> list[OperatorSlot]:
        """Free operators who may take ``call``: the campaign's own first, then shared ones of campaigns of no
        higher priority (a live customer is better served by a borrowed operator than by hold music)."""
        special = self.ctx.transfers.candidates(call)
        if special is not None:
            return special
        c = call.campaign
        own, shared = [], []
        for op_id in c.members:
            op = self.ctx.operators.get(op_id)
            if (op is not None and op.state is S.ready and op.id not in call.missed_by
                    and eligible(op, c, call.candidate)):
                own.append(op)
        if own:
            return own
        for op in self.ctx.operators.values():
            if (op.state is not S.ready or op.campaign_id == c.id or op.id in call.missed_by
                    or not eligible(op, c, call.candidate)):
                continue
            other = self.ctx.campaigns.get(op.campaign_id) if op.campaign_id is not None else None
            if other is None or other.priority <= c.priority:
                shared.append(op)
        return shared

    async def connect(self, call: LiveCall) -> bool:
        """Connect an answered human to his reserved operator or to a free eligible one; False if none."""
        for _ in range(5):
            if (call.finished or call.state is not A.answered or call.call_id is None or call.forced_cause
                    or call.consenting):
                return False
            op = call.operator
            if op is None:
                op = self.ctx.chooser.choose(self._candidates_for(call))
                if op is None:
                    return False
                call.operator = op
                op.call = call
                move(op, call.campaign, self.ctx.campaigns)
                self.ctx.roster.transition(op, OE.reserve)
            try:
                await self.ctx.telephony.connect(call.call_id, op.endpoint)
            except EndpointUnavailable as err:
                # not registered, not answering or busy: paused until the phone registers or answers again
                log.warning("operator %s cannot take calls: %s", op.id, err)
                call.operator, call.reserved = None, False
                op.call = None
                self.ctx.phones_down.add(op.endpoint)
                self.ctx.roster.transition(op, OE.release)
                self.ctx.roster.transition(op, OE.pause, reason=PHONE_OFFLINE)
                continue
            except UnknownCall:
                return False  # the call is over; its hung_up event releases the operator
            if self.ctx.config.offer_timeout_s > 0:
                if call.offer_timer is not None:
                    call.offer_timer.cancel()
                call.offer_timer, _ = self.ctx.timer(self.ctx.config.offer_timeout_s, TimerKind.offer, (op, call))
            if call.hold_playing:
                call.hold_playing = False
                with contextlib.suppress(TelephonyError):
                    await self.ctx.telephony.play(call.call_id, None)
            return True
        return False

    def _on_connected(self, call: LiveCall, ev: TelephonyCallEvent) -> None:
        c = call.campaign
        op = call.operator
        if op is None:
            op = self.ctx.by_endpoint.get(ev.endpoint or "")
            if op is None:
                return
            call.operator = op
            op.call = call
        call.state = call_fsm.next_state(call.state, CE.connect)
        c.answered.pop(call.attempt_id, None)
        first_connection = call.connected_at is None
        if first_connection:
            call.connected_at = ev.at
        for timer in (call.timer, call.limit_timer, call.offer_timer):
            if timer is not None:
                timer.cancel()
        call.timer = call.offer_timer = None
        call.limit_timer = None
        if c.cfg.max_call_duration_s is not None:
            call.limit_timer, _ = self.ctx.timer(float(c.cfg.max_call_duration_s), TimerKind.duration, call)
        op.missed_in_row = 0
        if op.state in (S.reserved, S.ringing):
            self.ctx.roster.transition(op, OE.answer)
        op.talk_started = ev.at
        op.calls_handled += 1
        self._record_override(call, op)
        utc = self._utc_at(ev.at)
        if first_connection:
            self.ctx.journal.attempt(call.attempt_id, state=A.connected, connected_at=utc, operator_id=op.id)
        else:  # a transferred or rescued customer reached his next operator: the attempt's first connection stays
            self.ctx.journal.attempt(call.attempt_id, state=A.connected, operator_id=op.id)
        if call.requeued:
            self.ctx.transfers.on_connected(call, op)
        waited = call.waited_s(ev.at) or 0.0
        self.ctx.bus.publish(CallConnected(at=utc, attempt_id=call.attempt_id, campaign_id=c.id, operator_id=op.id,
                                       waited_s=round(waited, 3)))

    def _record_override(self, call: LiveCall, op: OperatorSlot) -> None:
        """The operator's ``record_override`` for the call he takes (engine/media.py): 'always' records a call that
        is not recorded, 'never' stops recording one that is."""
        override = op.info.record_override
        want = True if override == "always" else False if override == "never" else None
        if want is None or want == call.recorded or call.call_id is None:
            return
        method = getattr(self.ctx.telephony, "start_recording" if want else "stop_recording", None)
        if not callable(method):
            return
        call_id = call.call_id
        key = (op.id, call.campaign.id)

        async def apply() -> None:
            try:
                await method(call_id)
            except UnknownCall:
                return  # the call ended meanwhile
            except TelephonyError as err:
                # the call keeps what it had (``recorded`` tells what really happens). Without the relay
                # (DIALER_MEDIA_RELAY_ALL, docs/sip.md) no call can be recorded after the answer: say so once per
                # operator and campaign rather than once per call
                if want and key not in self._override_warned:
                    self._override_warned.add(key)
                    log.warning("operator %s (%s) always records, but calls of campaign %s cannot be recorded after "
                                "the answer: %s — relay their media (DIALER_MEDIA_RELAY_ALL) or record the campaign "
                                "(record_mode)", op.info.name, op.id, call.campaign.id, err)
                elif not want:
                    log.warning("attempt %s: stopping the recording failed: %s", call.attempt_id, err)
                return
            call.recorded = want

        self.ctx.spawn(apply(), f"recording of attempt {call.attempt_id}")

    async def _on_hung_up(self, call: LiveCall, ev: TelephonyCallEvent) -> None:
        c = call.campaign
        call.ended_at = ev.at
        call.hung_up_utc = self._utc_at(ev.at)
        side = call.hangup_by if call.hangup_by and (ev.side is None or ev.side.value == "dialer") else (
            ev.side.value if ev.side else None)
        cause = call.forced_cause if call.forced_cause and side == "dialer" else ev.cause
        call.hangup_side, call.hangup_cause = side, cause
        self.ctx.bus.publish(CallEnded(at=call.hung_up_utc, attempt_id=call.attempt_id, campaign_id=c.id,
                                   result="hung_up", side=side, cause=cause, sip_code=ev.code))
        if self.ctx.transfers.on_hung_up(call):
            if self._inbound(call):
                self.ctx.inbound.forget(call)
            return  # a customer of a transfer: waiting again, or with an external number
        inbound = self._inbound(call)
        if call.state is A.connected:
            call.state = call_fsm.next_state(call.state, CE.hang_up)
            op = call.operator
            self.ctx.journal.attempt(call.attempt_id, state=A.wrap_up, hung_up_at=call.hung_up_utc, hangup_side=side,
                                 hangup_cause=cause)
            if inbound:
                self.ctx.inbound.forget(call)  # its talk time is no outbound pacer's; the wrap-up is as usual
            elif call.connected_at is not None:
                # this operator's part of the conversation (after a transfer the first part was told already)
                began = op.talk_started if op is not None and op.call is call and call.transfer is not None else \
                    call.connected_at
                c.pacer.on_talk_ended(ev.at - began)
            if op is None or op.call is not call:
                self.ctx.results.finish(call, OutcomeCategory.answered, self.ctx.results.default_code(c), event=CE.fail)
                return
            self.ctx.roster.transition(op, OE.hang_up)
            if op.pending_completion is not None:
                completion, op.pending_completion = op.pending_completion, None
                self.ctx.results.complete(op, completion, timeout=False)
                return
            op.wrap_timer, _ = self.ctx.timer(float(c.cfg.wrap_up_s), TimerKind.wrap, (op, call))
            return
        if inbound:  # a caller nobody talked to: he gave up, or got the message and a callback
            self.ctx.inbound.on_ended(call)
            return
        if call.state is A.answered:
            if call.answered_by == "machine":
                self._machine_hung_up(call)
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
                    self.ctx.roster.transition(op, OE.release)
                    self.ctx.roster.after_free(op)
            callback: Completion | None = None
            if call.forced_cause == ABANDON_MESSAGE_CAUSE:
                # he heard the abandon message: a callback, no sooner than the re-call lockout (engine/media.py)
                after = self.ctx.config.abandon_callback_after_s
                after = media_settings().abandon_callback_after_s if after is None else after
                callback = Completion(
                    self.ctx.codes.get("abandoned") or 0, comment=call.forced_cause,
                    callback_at=self.ctx.clock.utcnow() + timedelta(seconds=after)
                    if call.candidate.contact_id is not None else None)
            self.ctx.results.finish(call, OutcomeCategory.abandoned, self.ctx.codes.get("abandoned"), event=CE.hang_up,
                                    completion=callback)
            return
        # dialing/ringing never end with hung_up by the contract; treat as an error
        self.ctx.results.finish(call, OutcomeCategory.error, self.ctx.codes.get("error"), event=CE.fail)

    def on_endpoint_event(self, ev: EndpointEvent) -> None:
        op = self.ctx.by_endpoint.get(ev.endpoint)
        if ev.kind in _DEVICE_STATES:
            self._device_state(ev, op)
            if ev.kind is EndpointEventKind.registered:
                self.ctx.phones_down.discard(ev.endpoint)
            else:
                self.ctx.phones_down.add(ev.endpoint)
        if op is None:
            if ev.kind is EndpointEventKind.hung_up:
                self.ctx.transfers.on_external_failed(ev)
            return
        if self.ctx.transfers.on_endpoint(ev):
            return  # a consulted operator's leg, or a phone lost mid-call (the customer is rescued)
        if ev.kind is EndpointEventKind.ringing and op.state is S.reserved:
            self.ctx.roster.transition(op, OE.ring)
        elif ev.kind in (EndpointEventKind.unregistered, EndpointEventKind.unreachable) and op.state is S.ready:
            self.ctx.roster.transition(op, OE.pause, reason=PHONE_OFFLINE)
        elif (ev.kind is EndpointEventKind.registered and op.state is S.paused and op.reason == PHONE_OFFLINE
              and op.pending is None):
            # his phone answers again: back to work, as he was before it dropped
            self.ctx.roster.transition(op, OE.go_ready)
            self.ctx.roster.after_free(op)
        elif ev.kind is EndpointEventKind.hung_up and ev.offer_failed:
            call = op.call
            if (call is not None and call.call_id == ev.call_id and not call.finished and call.state is A.answered
                    and call.operator is op and op.state in (S.reserved, S.ringing)):
                self.ctx.post(CallIn(lambda: self._offer_failed(op, call, ev.detail), None))

    def _device_state(self, ev: EndpointEvent, op: OperatorSlot | None) -> None:
        """Tell the world and the database that a phone registered, left or stopped answering."""
        login, kind = ev.endpoint, ev.kind
        self.ctx.bus.publish(DeviceStateChanged(at=self.ctx.clock.utcnow(), login=login,
                                            operator_id=op.id if op is not None else None,
                                            state=kind.value, detail=ev.detail))
        reg = None
        registrations = getattr(self.ctx.telephony, "registrations", None)
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

        self.ctx.journal.job(f"registration of {login}", job)

    def on_trunk_event(self, ev: TrunkEvent) -> None:
        self.ctx.bus.publish(TrunkStateChanged(at=self.ctx.clock.utcnow(), trunk_id=ev.trunk_id, name=ev.name, up=ev.up,
                                           detail=ev.detail))
        self._trunks_up[ev.trunk_id] = ev.up
        if not ev.up:
            log.warning("trunk %s (%s) is down: %s", ev.name, ev.trunk_id, ev.detail)
            if not any(self._trunks_up.values()):
                # every trunk the driver told of is down: nothing is placed (no operator reserved, no attempt row
                # written and deleted) until one answers again
                self.ctx.no_trunk_until = 1e18
                self.ctx.no_trunk_backoff_s = max(self.ctx.no_trunk_backoff_s, self.ctx.config.refill_backoff_s)
        elif self.ctx.no_trunk_backoff_s:
            # a trunk answers again: dial now, not when the no-trunk back-off (up to minutes) runs out
            self.ctx.no_trunk_until, self.ctx.no_trunk_backoff_s = -1e18, 0.0
            self.ctx.dirty.update(self.ctx.campaigns)

        async def job(session: AsyncSession) -> None:
            await repo.save_trunk_state(session, ev.trunk_id, up=ev.up, detail=ev.detail)

        self.ctx.journal.job(f"state of trunk {ev.trunk_id}", job)

    async def _cut(self, call: LiveCall, cause: str) -> None:
        """The engine hangs up a call by its own limit; the hung_up event that follows records ``cause``."""
        if call.call_id is None:
            return
        call.hangup_by = "dialer"
        call.forced_cause = cause
        with contextlib.suppress(UnknownCall):
            await self.ctx.telephony.hangup(call.call_id, cause)

    async def _missed_offer(self, op: OperatorSlot, call: LiveCall) -> None:
        """``op`` let the offer of ``call`` ring out: take it back, count the miss, pause him at the strategy's limit,
        and offer the customer to another operator (or let him wait on hold as usual).

        Taking an offer back needs the driver's optional ``withdraw(call_id)``; a driver without it keeps ringing the
        operator (the miss is still counted and published, and a due pause waits until that call ends)."""
        withdraw = getattr(self.ctx.telephony, "withdraw", None)
        withdrawn = False
        if callable(withdraw) and call.call_id is not None:
            try:
                await withdraw(call.call_id)
                withdrawn = True
            except UnknownCall:
                return  # the call is over (or he picked up meanwhile): its own event follows
        await self._offer_lost(op, call, withdrawn=withdrawn)

    async def _offer_failed(self, op: OperatorSlot, call: LiveCall, detail: str) -> None:
        """The driver reports that the offer of ``call`` to ``op`` failed by itself: his phone refused it (486, 603,
        4xx, 5xx), rang out, or does not respond. The customer is waiting again: he goes to another free operator at
        once rather than after the offer timeout, and ``op`` counts a miss (a phone kept on "do not disturb" pauses him
        at the strategy's limit; one that does not respond is down, and he is paused until it answers again)."""
        if (call.finished or call.state is not A.answered or call.operator is not op or op.call is not call
                or op.state not in (S.reserved, S.ringing)):
            return  # picked up, withdrawn or ended meanwhile
        log.info("offer of attempt %s to operator %s failed: %s", call.attempt_id, op.id, detail)
        await self._offer_lost(op, call, withdrawn=True)

    async def _offer_lost(self, op: OperatorSlot, call: LiveCall, *, withdrawn: bool) -> None:
        """The offer of ``call`` to ``op`` is over without him (taken back, or failed): count his miss, pause him at
        the strategy's limit, and offer the customer to another operator — or let him wait on hold as usual."""
        c = call.campaign
        op.missed_in_row += 1
        op.missed_total += 1
        limit = c.cfg.auto_pause_after_missed
        pause = limit is not None and op.missed_in_row >= limit
        self.ctx.bus.publish(OperatorMissedCall(at=self.ctx.clock.utcnow(), operator_id=op.id, campaign_id=c.id,
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
        if call.offer_timer is not None:
            call.offer_timer.cancel()
        call.offer_timer = None
        self.ctx.roster.transition(op, OE.release)
        if pause:
            op.pending = None
            self.ctx.roster.transition(op, OE.pause, reason="missed call")
        self.ctx.dirty.add(c.id)
        if not await self.connect(call) and call.abandoned and not call.hold_playing and call.call_id is not None:
            call.hold_playing = True
            with contextlib.suppress(TelephonyError):
                await self.ctx.telephony.play(call.call_id, c.cfg.hold_audio or self.ctx.config.hold_audio)
        if not pause:
            self.ctx.roster.after_free(op)

    # --- limits (timers) -----------------------------------------------------------------------------------------
    def _machine_hung_up(self, call: LiveCall) -> None:
        self.ctx.results.finish(call, OutcomeCategory.no_answer, self.ctx.codes.get("answering_machine"),
                                event=CE.hang_up)

    async def on_grace(self, call: LiveCall) -> None:
        """The regulatory threshold passed without an operator: abandoned for the statistics from now on."""
        if call.finished or call.state is not A.answered or call.abandoned:
            return
        await self._grace_passed(call)

    async def _grace_passed(self, call: LiveCall) -> None:
        call.abandoned = True
        now = self.ctx.clock.now()
        call.campaign.pacer.on_abandon(now)
        waited = call.waited_s(now) or 0.0
        message = call.campaign.cfg.abandon_message
        if call.operator is None and call.call_id is not None and message:
            # the campaign's message instead of hold music, once; then he is hung up with a callback booked
            call.forced_cause = ABANDON_MESSAGE_CAUSE
            call.hangup_by = "dialer"
            call.hold_playing = False
            try:
                await self.ctx.telephony.play(call.call_id, message)
            except UnknownCall:
                return
            except TelephonyError as err:
                log.warning("attempt %s: the abandon message %r cannot be played: %s", call.attempt_id, message, err)
            length = audio_length_s(message, self.ctx.config.audio_dir)
            call.limit_timer, _ = self.ctx.timer(media_settings().message_default_s if length is None else length,
                                                 TimerKind.abandon_message, call)
        elif call.operator is None and call.call_id is not None:
            call.hold_playing = True
            with contextlib.suppress(TelephonyError):
                await self.ctx.telephony.play(call.call_id, call.campaign.cfg.hold_audio or self.ctx.config.hold_audio)
        self.ctx.bus.publish(CallOnHold(at=self.ctx.clock.utcnow(), attempt_id=call.attempt_id,
                                        campaign_id=call.campaign.id, waited_s=round(waited, 3)))

    async def on_abandon_message_played(self, call: LiveCall) -> None:
        """The abandon message has played: the customer is hung up (the attempt ends abandoned, a callback booked)."""
        if not call.finished and call.call_id is not None and call.forced_cause == ABANDON_MESSAGE_CAUSE:
            with contextlib.suppress(UnknownCall):
                await self.ctx.telephony.hangup(call.call_id, ABANDON_MESSAGE_CAUSE)

    async def on_hold_limit(self, call: LiveCall) -> None:
        """Max hold: a customer still without an operator is hung up."""
        if not call.finished and call.state is A.answered and call.answered_by == "human":
            await self._cut(call, "no operator")

    async def on_duration_limit(self, call: LiveCall) -> None:
        """Max call duration: the conversation is cut (wrap-up as usual)."""
        if not call.finished and call.state is A.connected:
            await self._cut(call, "max duration")

    async def on_offer_timeout(self, target: tuple[OperatorSlot, LiveCall]) -> None:
        """An operator did not pick up an offered call within ``offer_timeout_s``."""
        op, call = target
        if (not call.finished and call.state is A.answered and call.operator is op and op.call is call
                and op.state in (S.reserved, S.ringing)):
            await self._missed_offer(op, call)

