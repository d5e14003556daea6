"""The operator state machine, written as a table (see dialer.core.fsm).

==========  ================  ==========  ============================================================
from        event             to          when
==========  ================  ==========  ============================================================
offline     go_ready          ready       the operator logs in ready to work
offline     pause             paused      logs in but takes a break first (reason: break, lunch, ...)
ready       pause             paused      takes a break
ready       log_out           offline     leaves
ready       reserve           reserved    picked for a call being placed or connected, or for a preview
paused      go_ready          ready       back from the break
paused      pause             paused      another reason (a new period starts: time is accounted per reason)
paused      log_out           offline     leaves from a break
reserved    release           ready       the call ended before it reached him, the preview was skipped,
                                          the campaign stopped
reserved    ring              ringing     his phone rings with an answered call
reserved    answer            in_call     connected straight away (an auto-answering endpoint)
ringing     answer            in_call     he picked up: talking to the customer
ringing     release           ready       the customer hung up first, or his phone did not answer
in_call     hang_up           wrap_up     the conversation ended (either side)
in_call     release           ready       a consultation he took (attended transfer) was called off
wrap_up     complete          ready       he set the completion code
wrap_up     wrap_up_timeout   ready       the strategy's wrap-up time ran out: the default code is applied
==========  ================  ==========  ============================================================

Every other (state, event) pair is illegal and raises :class:`IllegalOperatorTransition`. Forced changes by a
supervisor and "pause after this call" are sequences of these events, composed by the runner (e.g. wrap-up →
``complete`` → ready → ``pause`` → paused), so that the table stays the single source of truth and every period
is recorded. Time in each state is accounted by the runner as one ``operator_state_log`` row per period.
"""

from __future__ import annotations

from enum import StrEnum

from dialer.core.fsm import Machine
from dialer.exceptions import IllegalTransition
from dialer.models.enums import OperatorState as S

__all__ = ["MACHINE", "PAUSE_REASONS", "PHONE_OFFLINE", "TRANSITIONS", "IllegalOperatorTransition", "OperatorEvent",
           "S", "next_state"]


class OperatorEvent(StrEnum):
    go_ready = "go_ready"
    pause = "pause"
    log_out = "log_out"
    reserve = "reserve"
    release = "release"
    ring = "ring"
    answer = "answer"
    hang_up = "hang_up"
    complete = "complete"
    wrap_up_timeout = "wrap_up_timeout"


E = OperatorEvent

TRANSITIONS: dict[tuple[S, OperatorEvent], S] = {
    (S.offline, E.go_ready): S.ready,
    (S.offline, E.pause): S.paused,
    (S.ready, E.pause): S.paused,
    (S.ready, E.log_out): S.offline,
    (S.ready, E.reserve): S.reserved,
    (S.paused, E.go_ready): S.ready,
    (S.paused, E.pause): S.paused,
    (S.paused, E.log_out): S.offline,
    (S.reserved, E.release): S.ready,
    (S.reserved, E.ring): S.ringing,
    (S.reserved, E.answer): S.in_call,
    (S.ringing, E.answer): S.in_call,
    (S.ringing, E.release): S.ready,
    (S.in_call, E.hang_up): S.wrap_up,
    (S.in_call, E.release): S.ready,
    (S.wrap_up, E.complete): S.ready,
    (S.wrap_up, E.wrap_up_timeout): S.ready,
}

#: Reasons offered for a pause (free text is accepted too); the panel shows them as buttons.
PAUSE_REASONS: tuple[str, ...] = ("break", "lunch", "training", "meeting", "technical", "other")

#: The engine's pause of an operator whose phone is unreachable or unregistered; it ends by itself when the phone
#: answers or registers again.
PHONE_OFFLINE = "phone offline"


class IllegalOperatorTransition(IllegalTransition):
    """An event the operator's current state does not allow (409 at the web edge)."""

    def __init__(self, state: S, event: OperatorEvent, allowed: list[OperatorEvent] | None = None) -> None:
        names = ", ".join(e.value for e in (allowed if allowed is not None else MACHINE.allowed(state))) or "none"
        super().__init__(f"an operator who is {state.value.replace('_', '-')} cannot {event.value.replace('_', ' ')} "
                         f"(allowed: {names})",
                         errors=[{"field": "state", "reason": f"is {state.value}"}])
        self.state = state
        self.event = event


MACHINE: Machine[S, OperatorEvent] = Machine("operator", TRANSITIONS, error=IllegalOperatorTransition)


def next_state(state: S, event: OperatorEvent) -> S:
    """The state after ``event``; raises :class:`IllegalOperatorTransition`."""
    return MACHINE.next(state, event)
